"""One live camera: a reader thread that keeps only the newest frame and reconnects forever.

The reader decodes at the camera's rate on its own thread, which also opens and closes the
container (closing from another thread while FFmpeg decodes can crash it).  Only the newest
decoded frame is kept: one the model has not taken when the next arrives is dropped and
counted (``overwritten``), so latency never grows with run time.  A live stream that ends
(PyAV's read loop just ends when a camera is killed), an error, or silence for
``stall_timeout`` seconds (a frozen camera with its socket open) is a loss: the reader waits a
capped, jittered, exponentially growing back-off and connects again, forever.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from streamcolor.engine.stop import StopRequested, StopToken
from streamcolor.errors import StreamcolorError, StreamLostError
from streamcolor.frames import Frame
from streamcolor.io.urls import STREAM_SCHEMES, is_url, redact, url_scheme
from streamcolor.io.video import LIVE_PROBE, device_format
from streamcolor.live.stats import CameraStats

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BACKOFF_START, BACKOFF_CAP = 0.5, 2.0  # seconds; a camera back after ~15 s is live in < 5 s


@dataclass(frozen=True)
class CameraSpec:
    """What to open for one camera: a URL or a device, with the FFmpeg options for it."""

    name: str
    source: str
    input_format: str | None = None  # "v4l2" for /dev/videoN
    options: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return redact(self.source)


def parse_source(text: str, index: int, transport: str = "tcp") -> CameraSpec:
    """``[NAME=]SOURCE`` -> a :class:`CameraSpec` (unnamed sources are cam0, cam1, ...)."""
    name, source = f"cam{index}", text
    head, sep, rest = text.partition("=")
    if sep and "://" not in head and "/" not in head and NAME_RE.match(head):
        name, source = head, rest
    if not source:
        raise StreamcolorError(f"{redact(text)}: empty source")
    options = dict(LIVE_PROBE)
    fmt = None
    if is_url(source):
        scheme = url_scheme(source)
        if scheme not in STREAM_SCHEMES:
            raise StreamcolorError(f"{redact(source)}: unsupported URL scheme {scheme!r} "
                                   f"(supported: {', '.join(sorted(STREAM_SCHEMES))})")
        if scheme.startswith("rtsp"):
            options["rtsp_transport"] = transport
        options["fflags"] = "nobuffer"
    else:
        fmt = device_format(source)
        if fmt is None:
            raise StreamcolorError(f"{source}: not a stream URL or a camera device "
                                   "(/dev/videoN)")
    return CameraSpec(name, source, fmt, options)


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before reconnect ``attempt`` (0, 1, ...): 0.5, 1, 2, 2, ... +-20 %."""
    return min(BACKOFF_CAP, BACKOFF_START * 2 ** attempt) * rng.uniform(0.8, 1.2)


class Camera:
    """A camera's reader thread, its newest frame and its health."""

    def __init__(self, spec: CameraSpec, stall_timeout: float = 5.0,
                 on_frame: Callable[[], None] | None = None,
                 on_lost: Callable[[Camera], None] | None = None, seed: int | None = None,
                 ) -> None:
        self.spec = spec
        self.name = spec.name
        self.stall_timeout = stall_timeout
        self.stats = CameraStats(spec.name, spec.label)
        self.generation = 0  # +1 per connection: the smoother resets when it changes
        self._on_frame = on_frame or (lambda: None)
        self._on_lost = on_lost or (lambda cam: None)
        self._stop = StopToken()
        self._lock = threading.Lock()
        self._newest: Frame | None = None
        self._rng = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name=f"streamcolor-cam-{self.name}",
                                        daemon=True)

    def start(self) -> Camera:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the reader to end; it closes its container itself, within ``stall_timeout``."""
        self._stop.request("stop")

    def join(self, timeout: float | None = None) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def take(self) -> Frame | None:
        """The newest frame not taken yet, or None."""
        with self._lock:
            frame, self._newest = self._newest, None
        return frame

    def _put(self, frame: Frame) -> None:
        frame.extra["generation"] = self.generation  # which connection it came from
        with self._lock:
            replaced = self._newest is not None
            self._newest = frame
        if replaced:
            self.stats.drop("overwritten")
        self.stats.frame_in()
        self._on_frame()

    def _open(self) -> object:
        from streamcolor.io.sources import VideoSource

        spec = self.spec
        return VideoSource(spec.source, live=True, open_timeout=self.stall_timeout,
                           read_timeout=self.stall_timeout, stop=self._stop,
                           stream_id=spec.name, input_format=spec.input_format,
                           options=spec.options, side_streams=False, label=spec.label)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.stats.set_state("connecting")
            source = None
            stalled = False
            try:
                source = self._open()
                self.generation += 1
                self.stats.set_state("live")
                log.info("%s: connected to %s", self.name, self.spec.label)
                for frame in source:  # type: ignore[attr-defined]
                    attempt = 0  # frames came: the next loss starts the back-off afresh
                    self._put(frame)
                    if self._stop.is_set():
                        break
            except StopRequested:
                break
            except StreamLostError as e:
                stalled = "timed out" in str(e)
                self._lost(str(e), stalled)
            except StreamcolorError as e:
                self._lost(str(e), False)
            except Exception as e:  # a decoder surprise must not end the camera for good
                self._lost(f"{type(e).__name__}: {e}", False)
            finally:
                if source is not None:
                    source.close()  # type: ignore[attr-defined]
            if self._stop.is_set():
                break
            delay = backoff_delay(attempt, self._rng)
            attempt += 1
            self.stats.set_state("backoff")
            log.info("%s: reconnecting in %.1f s", self.name, delay)
            if self._stop.wait(delay):
                break
        self.stats.set_state("stopped")

    def _lost(self, reason: str, stalled: bool) -> None:
        was_live = self.stats.state == "live"
        self.stats.set_state("backoff", redact(reason))
        if was_live:
            self.stats.reconnected(stalled)
            log.warning("%s: lost (%s)", self.name, redact(reason))
            self._on_lost(self)
        else:
            log.info("%s: cannot connect (%s)", self.name, redact(reason))

