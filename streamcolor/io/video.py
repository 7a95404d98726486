"""The PyAV edge for reading: opening a file or stream (with time-outs, and interruptible),
translating ``av.error`` into streamcolor errors, and taking a decoded frame's luma.

Facts this module relies on (PyAV 18, FFmpeg 8): ``av.open`` releases the GIL while it
connects, so another thread can watch for a stop request; a read time-out surfaces as
``ExitError`` ("Immediate exit requested") or as the error of the read it cut short; FFmpeg's
own ``timeout`` option (microseconds) bounds socket I/O of RTSP/HTTP/TCP inputs.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Any

import numpy as np

from streamcolor.color import rgb_to_luma_u8
from streamcolor.engine.stop import StopRequested, StopToken
from streamcolor.errors import InputNotFoundError, InvalidInputError, StreamLostError
from streamcolor.io.urls import is_url, redact, url_scheme

log = logging.getLogger(__name__)

# 8-bit formats whose first plane is the luma, read without any conversion.
Y_PLANE_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p",
                             "yuvj444p", "yuv411p", "yuv410p", "yuv440p", "yuvj440p", "nv12",
                             "nv21", "nv16", "nv24", "nv42", "gray", "yuva420p", "yuva422p",
                             "yuva444p"})
SOCKET_TIMEOUT_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "tcp", "rtmp", "rtmps"})


def translate_av_error(e: Exception, label: str, timeout: float | None = None,
                       elapsed: float | None = None, stream: bool = False) -> Exception:
    """One streamcolor error for an ``av.error`` raised while opening or reading ``label``.

    ``timeout``/``elapsed`` tell a time-out from other failures (FFmpeg reports a time-out as
    "Immediate exit requested" or as the error of the read it cut short); ``stream`` marks a
    live stream, whose failures mid-run are a :class:`StreamLostError`."""
    import av

    reason = redact(getattr(e, "strerror", None) or str(e))  # str(e) may hold the raw URL
    # While a stream is probed, a socket time-out comes back as "invalid data": a stream
    # that goes quiet then has timed out, one that sends garbage fails at once.
    slow = timeout is not None and elapsed is not None and (
        elapsed >= 0.9 * timeout or
        (is_url(label) and isinstance(e, av.error.InvalidDataError) and
         elapsed >= 0.4 * timeout))
    timed_out = isinstance(e, av.error.ExitError) or \
        getattr(e, "errno", None) == errno.ETIMEDOUT or slow
    if timed_out and timeout is not None:
        text = f"{label}: timed out after {timeout:g} s without data"
        return StreamLostError(text) if stream else InvalidInputError(text)
    if isinstance(e, av.error.FileNotFoundError) and not is_url(label):
        return InputNotFoundError(f"{label}: no such file")
    if isinstance(e, av.error.PermissionError):
        return InvalidInputError(f"{label}: permission denied")
    if stream:
        return StreamLostError(f"{label}: stream lost ({reason})")
    if isinstance(e, av.error.InvalidDataError):
        return InvalidInputError(f"{label}: not a readable video (invalid or truncated data)")
    if is_url(label):
        return InvalidInputError(f"{label}: cannot read the stream ({reason})")
    return InvalidInputError(f"{label}: cannot read video ({reason})")


LIVE_PROBE = {"probesize": "500000", "analyzeduration": "1000000"}  # bytes, microseconds
DEVICE_FORMATS = {"linux": "v4l2"}


def device_format(path: str) -> str | None:
    """The FFmpeg input device for a camera device path (``/dev/video0`` -> v4l2)."""
    import os
    import stat
    import sys

    if path.startswith("/dev/video") or (os.path.exists(path) and
                                         stat.S_ISCHR(os.stat(path).st_mode)):
        return DEVICE_FORMATS.get(sys.platform, "v4l2")
    return None


def input_options(path: str, timeout: float | None) -> dict[str, str]:
    """FFmpeg options for opening ``path``: RTSP over TCP, socket time-outs for network
    inputs.  FFmpeg's ``timeout`` is in microseconds and fires after about twice its value
    (measured here on RTSP and TCP), so half the wanted time is asked for."""
    scheme = url_scheme(path) if is_url(path) else ""
    options: dict[str, str] = {}
    if scheme.startswith("rtsp"):
        options["rtsp_transport"] = "tcp"
    if timeout is not None and scheme in SOCKET_TIMEOUT_SCHEMES:
        options["timeout"] = str(int(timeout * 500_000))
    return options


def open_container(path: str, label: str, open_timeout: float | None = None,
                   read_timeout: float | None = None, stop: StopToken | None = None,
                   input_format: str | None = None,
                   extra_options: dict[str, str] | None = None) -> Any:
    """``av.open(path)`` with our errors; a stop request interrupts the wait.

    Opening a stream can block for its whole time-out; with ``stop`` it runs on a helper
    thread while this one watches the token, so Ctrl-C is honoured while connecting (the
    helper closes whatever it opened late)."""
    import av

    url = is_url(path) or input_format is not None  # a device blocks like a stream
    timeout = (open_timeout, read_timeout) if url and open_timeout else None
    options = {**input_options(path, read_timeout if url else None), **(extra_options or {})}

    def do_open() -> Any:
        return av.open(path, mode="r", format=input_format, options=options, timeout=timeout)

    t0 = time.monotonic()
    if stop is None or not url:
        try:
            return do_open()
        except av.error.FFmpegError as e:
            raise translate_av_error(e, label, open_timeout if url else None,
                                     time.monotonic() - t0) from None
    box: dict[str, Any] = {}
    abandoned = threading.Event()

    def run() -> None:
        try:
            box["container"] = do_open()
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e
        if abandoned.is_set() and "container" in box:
            box["container"].close()

    helper = threading.Thread(target=run, name="streamcolor-connect", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.1)
        if stop.is_set():
            abandoned.set()
            raise StopRequested(stop.reason or "stop requested")
    if "error" in box:
        e = box["error"]
        if isinstance(e, av.error.FFmpegError):
            raise translate_av_error(e, label, open_timeout, time.monotonic() - t0) from None
        raise e
    return box["container"]


def rotation_turns(vf: Any) -> int:
    """Quarter turns (counter-clockwise, as ``np.rot90``) that make ``vf`` upright per its
    display matrix (phone videos), as FFmpeg's own autorotation does."""
    try:
        angle = float(vf.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    turns = round(angle / 90.0)
    if abs(angle - 90.0 * turns) > 1.0:
        return -1  # not a quarter turn: left as it is
    return turns % 4


def frame_luma(vf: Any) -> tuple[np.ndarray, bool, int]:
    """(luma plane, full_range, bit depth) of an ``av.VideoFrame``.

    The Y plane is read directly where the pixel format allows (no colour conversion): as
    uint8 for 8-bit video, as uint16 with the samples MSB-aligned (``Y << (16 - depth)``) for
    9-16 bit planar YUV and gray.  Other formats are converted (RGB via BT.601 luma)."""
    fmt = vf.format
    name = fmt.name
    w, h = vf.width, vf.height
    full = name.startswith("yuvj") or name == "gray" or int(vf.color_range or 0) == 2
    if name in Y_PLANE_FORMATS:
        plane = vf.planes[0]
        buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
        return buf.copy(), full, 8
    comps = fmt.components
    depth = comps[0].bits if comps else 8
    little_planar = name.endswith("le") and (name.startswith(("yuv", "yuvj", "gray")))
    if 8 < depth <= 16 and little_planar and comps[0].plane == 0:
        plane = vf.planes[0]
        buf = np.frombuffer(plane, "<u2").reshape(-1, plane.line_size // 2)[:h, :w]
        return (buf.astype(np.uint16) << (16 - depth)), full or name.startswith("gray"), depth
    if name.startswith(("yuv", "nv", "p0", "p2", "p4")) and depth > 8:
        vf = vf.reformat(format="yuv444p16le")  # big-endian or packed high-depth YUV
        plane = vf.planes[0]
        buf = np.frombuffer(plane, "<u2").reshape(-1, plane.line_size // 2)[:h, :w]
        return buf.astype(np.uint16), full, min(depth, 16)
    if name.startswith(("yuv", "yuvj")):
        vf = vf.reformat(format="yuv444p")
        plane = vf.planes[0]
        buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
        return buf.copy(), full, 8
    rgb = vf.to_ndarray(format="rgb24")
    return rgb_to_luma_u8(rgb), True, 8


def upright(luma: np.ndarray, turns: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(luma, turns)) if turns > 0 else luma
