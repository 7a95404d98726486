"""Sinks: where colourised frames go (an image file, a folder of images, a video file).

Every sink writes atomically: a hidden temporary file (or folder) beside the output, renamed
to the final name only when complete.  A sink stopped by an error, Ctrl-C or a lost stream is
still finalised (encoder flushed, container closed, so it plays) and kept as
``NAME.partial.EXT``, under a free name: an existing file is never replaced by a partial.
Sinks are context managers: leaving the block normally closes them, an exception aborts them.

A sink receives each frame with its chroma at render resolution and upsamples it itself: to
full resolution for images (in bands, see :mod:`streamcolor.compose`), straight to the
chroma-plane size for 4:2:0 video.  The source's luma is written untouched (the video's Y
plane byte for byte, 10-bit video kept 10-bit where the codec allows).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamcolor.color import chroma_to_plane
from streamcolor.compose import compose_rgb, upsample_chroma
from streamcolor.errors import OutputError, ResourceError
from streamcolor.frames import Frame
from streamcolor.io.atomic import rename_no_replace, temp_path_for
from streamcolor.io.images import write_image_atomic
from streamcolor.io.sidestreams import SideMuxer, SideStreams

log = logging.getLogger(__name__)

# Output suffixes and their default encoder (libx264 for the rest).  .gif and .ogv are read but
# not written: this FFmpeg has no Theora encoder, and GIF's 256 colours would undo the work.
VIDEO_OUTPUT_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".ts",
                                   ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".3gp"})
VIDEO_CODECS = {".webm": "libvpx-vp9", ".mpg": "mpeg2video", ".mpeg": "mpeg2video"}
DEFAULT_VIDEO_CODEC = "libx264"
HIGH_DEPTHS = (10, 12)  # kept when the source has them and the encoder takes them
X26X = frozenset({"libx264", "libx265"})
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")  # checked here: x264 prints its own error
CONSTANT_RATE_CODECS = frozenset({"mpeg1video", "mpeg2video"})
MPEG_RATES = frozenset(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30",
                                             "50", "60000/1001", "60"))


def compose_bgr(frame: Frame, chroma: np.ndarray) -> np.ndarray:
    """Full-resolution BGR (OpenCV's order; uint8, or uint16 for 16-bit luma) of a frame."""
    try:
        return compose_rgb(frame.luma, chroma, frame.full_range, bgr=True)
    except MemoryError:
        raise ResourceError(f"not enough memory to compose a {frame.width}x{frame.height} "
                            "frame") from None


class Sink:
    """Receives frames in order; ``close`` finishes, ``abort`` keeps a playable partial."""

    frames_written = 0
    warnings: tuple[str, ...] | list[str] = ()

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> Path | None:
        raise NotImplementedError

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ImageSink(Sink):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.frames_written = 0

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        write_image_atomic(self.path, compose_bgr(frame, chroma))
        self.frames_written += 1

    def close(self) -> Path:
        if not self.frames_written:
            raise OutputError(f"{self.path}: no frame to write")
        return self.path

    def abort(self) -> Path | None:
        return None


class FolderSink(Sink):
    """One image per frame; frames from files keep their file names.

    Frames go into a hidden temporary folder beside the output, renamed into place when the
    run completes: an existing output folder (``overwrite``) is replaced whole, so no stale
    frame of an earlier run survives, and it is left untouched until then."""

    def __init__(self, folder: str | Path, suffix: str | None = None,
                 overwrite: bool = False) -> None:
        self.folder = Path(folder)
        self.suffix = suffix
        self.overwrite = overwrite
        self.tmp = temp_path_for(self.folder)
        self.frames_written = 0
        self._names: set[str] = set()

    def name_for(self, frame: Frame) -> str:
        if frame.name:
            return frame.name if self.suffix is None else Path(frame.name).stem + self.suffix
        return f"frame_{frame.index + 1:06d}{self.suffix or '.png'}"

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        if self.frames_written == 0:
            try:
                self.tmp.mkdir(parents=True)
            except OSError as e:
                raise OutputError(f"{self.folder}: cannot create folder ({e.strerror})") from None
        name = self.name_for(frame)
        if name in self._names:
            raise OutputError(f"{self.folder}: two frames are both named {name!r} (frames from "
                              "several folders?); write a video instead")
        self._names.add(name)
        write_image_atomic(self.tmp / name, compose_bgr(frame, chroma))
        self.frames_written += 1

    def close(self) -> Path:
        if not self.frames_written:
            raise OutputError(f"{self.folder}: no frames to write")
        old = None
        if self.folder.exists():
            if any(self.folder.iterdir()) and not self.overwrite:
                raise OutputError(f"{self.folder}: already exists (use --overwrite)")
            old = self.folder.with_name(f".{self.folder.name}.old-{os.getpid()}")
            os.rename(self.folder, old)
        try:
            os.rename(self.tmp, self.folder)
        except OSError as e:
            if old is not None:
                os.rename(old, self.folder)  # put the earlier output back
            raise OutputError(f"{self.folder}: cannot finish the folder ({e.strerror})") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.folder

    def abort(self) -> Path | None:
        if not self.tmp.exists():
            return None
        if not self.frames_written:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return None
        return rename_no_replace(self.tmp, self.folder)


def check_encoder(path: Path, codec: str) -> None:
    import av

    try:
        c = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):  # UnknownCodecError is a ValueError
        raise OutputError(f"{path}: unknown video encoder {codec!r}") from None
    if c.type != "video":
        raise OutputError(f"{path}: {codec!r} is not a video encoder")


def _codec_formats(codec: str) -> frozenset[str]:
    import av

    return frozenset(f.name for f in (av.codec.Codec(codec, "w").video_formats or []))


class VideoSink(Sink):
    """Encodes frames with PyAV, same timestamps as the source, side streams passed through."""

    def __init__(self, path: str | Path, rate: Fraction | None = None,
                 side: SideStreams | None = None, codec: str | None = None, crf: int = 18,
                 preset: str = "veryfast", options: dict[str, str] | None = None,
                 container_format: str | None = None) -> None:
        self.path = Path(path)
        # With an explicit format the temporary name need not keep the suffix: a recording
        # folder then holds no unfinished file that looks like a video (".NAME.tmp-PID.part").
        self.container_format = container_format
        self.tmp = temp_path_for(self.path)
        if container_format:
            self.tmp = self.tmp.with_suffix(".part")
        self.rate = Fraction(rate) if rate else Fraction(25)
        self.side = side if side else None
        self.codec = codec or VIDEO_CODECS.get(self.path.suffix.lower(), DEFAULT_VIDEO_CODEC)
        check_encoder(self.path, self.codec)
        if self.codec in X26X and preset not in X26X_PRESETS:
            raise OutputError(f"{self.path}: unknown {self.codec} preset {preset!r} "
                              f"({', '.join(X26X_PRESETS)})")
        if self.codec in X26X and not 0 <= crf <= 51:
            raise OutputError(f"{self.path}: {self.codec} takes crf 0..51, not {crf}")
        self.crf = crf
        self.preset = preset
        self.options = dict(options or {})
        self.container: object | None = None
        self.stream: object | None = None
        self.muxer: SideMuxer | None = None
        self.frames_written = 0
        self.warnings: list[str] = []
        self._last_time: float | None = None
        self._pix_fmt = "yuv420p"
        self._bits = 8
        self._size: tuple[int, int] = (0, 0)
        self._time_base: Fraction | None = None
        self._last_pts: int | None = None
        self._resized_warned = False

    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        self.warnings.append(text)

    def _pick_format(self, frame: Frame) -> str:
        formats = _codec_formats(self.codec)
        even = frame.width % 2 == 0 and frame.height % 2 == 0
        layout = "yuv420p" if even else "yuv444p"
        if not even and not ({"yuv444p", "yuv444p10le"} & formats) and formats:
            raise OutputError(f"{self.path}: odd frame size {frame.width}x{frame.height} cannot "
                              f"be encoded with {self.codec} (needs 4:4:4); use .mp4 or .mkv")
        if not even:
            self._warn(f"{self.path}: odd frame size {frame.width}x{frame.height}, encoding "
                       "4:4:4 to keep every pixel")
        self._bits = 8
        if frame.bit_depth > 8:
            for bits in sorted((b for b in HIGH_DEPTHS if b <= frame.bit_depth), reverse=True):
                if f"{layout}{bits}le" in formats:
                    self._bits = bits
                    return f"{layout}{bits}le"
            self._warn(f"{self.path}: {frame.bit_depth}-bit input written as 8-bit "
                       f"({self.codec} has no {frame.bit_depth}-bit {layout} mode)")
        return layout

    def _open(self, frame: Frame) -> None:
        import av

        self._pix_fmt = self._pick_format(frame)
        try:
            self.container = av.open(str(self.tmp), mode="w", format=self.container_format)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise OutputError(f"{self.path}: cannot create video ({e})") from None
        c = self.container
        try:
            stream = c.add_stream(self.codec, rate=self.rate)  # type: ignore[attr-defined]
        except (av.error.FFmpegError, ValueError) as e:
            self._discard()
            raise OutputError(
                f"{self.path}: cannot encode with codec {self.codec!r} ({e})"
            ) from None
        self._size = (frame.width, frame.height)
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, self._pix_fmt
        tb = frame.time_base or Fraction(1, 1) / self.rate
        if self.codec in CONSTANT_RATE_CODECS:
            if self.rate not in MPEG_RATES:
                self._discard()
                raise OutputError(f"{self.path}: {self.codec} cannot store {self.rate} fps "
                                  "(MPEG-1/2 rates only); write .mp4 or .mkv instead")
            tb = 1 / self.rate  # these encoders take only their frame rate as time base
        self._time_base = tb
        stream.codec_context.time_base = tb
        stream.time_base = tb
        stream.codec_context.color_range = 2 if frame.full_range else 1
        cs = frame.extra.get("colorspace")
        if cs:
            stream.codec_context.colorspace = cs
        opts = dict(self.options)
        if self.codec in ("libx264", "libx265"):
            if "qp" not in opts:  # a constant quantiser (qp 0: lossless) replaces crf
                opts.setdefault("crf", str(self.crf))
            opts.setdefault("preset", self.preset)
        if self.codec == "libx265":
            opts.setdefault("x265-params", "log-level=none")  # x265 prints to stderr itself
        elif self.codec == "libvpx-vp9":
            opts.setdefault("crf", str(max(self.crf, 15) + 12))
            opts.setdefault("b", "0")
        elif self.codec in ("mpeg2video", "mpeg1video", "mpeg4"):
            opts.setdefault("qscale", "3")
        stream.options = opts
        self.stream = stream
        if self.side is not None:
            self.muxer = SideMuxer(c, self.side, str(self.path))
            self.warnings.extend(self.muxer.warnings)

    def _fit(self, frame: Frame) -> np.ndarray:
        """The frame's luma at the video's size (a size change mid-stream is scaled, once
        said)."""
        w, h = self._size
        if (frame.width, frame.height) == (w, h):
            return frame.luma
        if not self._resized_warned:
            self._resized_warned = True
            self._warn(f"{self.path}: frame {frame.index} is {frame.width}x{frame.height} but "
                       f"the video is {w}x{h}: frames of another size are scaled to fit")
        shrink = frame.width * frame.height > w * h
        return cv2.resize(frame.luma, (w, h),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def _video_frame(self, frame: Frame, chroma: np.ndarray) -> object:
        import av

        w, h = self._size
        luma = self._fit(frame)
        vf = av.VideoFrame(w, h, self._pix_fmt)
        bits = self._bits
        if bits == 8:
            y = luma if luma.dtype == np.uint8 else (luma >> 8).astype(np.uint8)
        else:
            y = (luma >> (16 - bits)) if luma.dtype == np.uint16 else \
                luma.astype(np.uint16) << (bits - 8)
        planes = vf.planes
        self._fill(planes[0], y)
        ch, cw = planes[1].height, planes[1].width
        uv = chroma_to_plane(upsample_chroma(chroma, ch, cw), not frame.full_range, bits)
        self._fill(planes[1], uv[..., 0])
        self._fill(planes[2], uv[..., 1])
        vf.color_range = 2 if frame.full_range else 1
        if frame.pts is None or frame.time_base is None:
            vf.pts, vf.time_base = frame.index, Fraction(1, 1) / self.rate
        elif frame.time_base != self._time_base:  # constant-rate codecs: frame numbers
            pts = round(frame.pts * frame.time_base / self._time_base)
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1
            vf.pts, vf.time_base = pts, self._time_base
        else:
            vf.pts, vf.time_base = frame.pts, frame.time_base
        self._last_pts = vf.pts
        return vf

    @staticmethod
    def _fill(plane: object, data: np.ndarray) -> None:
        h, w = data.shape
        dtype = np.dtype(np.uint8) if data.dtype == np.uint8 else np.dtype("<u2")
        dst = np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype.itemsize)  # type: ignore[attr-defined]
        dst[:h, :w] = data

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        import av

        if self.container is None:
            self._open(frame)
        vf = self._video_frame(frame, chroma)
        try:
            for pkt in self.stream.encode(vf):  # type: ignore[attr-defined]
                self.container.mux(pkt)  # type: ignore[attr-defined]
            t = float(vf.pts * vf.time_base)  # type: ignore[attr-defined]
            if self.muxer:
                self.muxer.write_until(t)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: writing failed ({_reason(e)})") from None
        self._last_time = t
        self.frames_written += 1

    def _finalize(self, side_until: float | None) -> None:
        import av

        try:
            for pkt in self.stream.encode(None):  # type: ignore[attr-defined]
                self.container.mux(pkt)  # type: ignore[attr-defined]
            if self.muxer:
                self.muxer.write_until(side_until)
                self.muxer.close()
            self.container.close()  # type: ignore[attr-defined]
        except (av.error.FFmpegError, OSError) as e:
            self._discard()
            raise OutputError(f"{self.path}: finishing the video failed ({_reason(e)})") from None

    def _discard(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):  # already failing: keep the first error
                self.container.close()  # type: ignore[attr-defined]
        self.tmp.unlink(missing_ok=True)

    def close(self) -> Path:
        if self.container is None:
            raise OutputError(f"{self.path}: no frames to write")
        self._finalize(None)
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: cannot finish the video ({e.strerror})") from None
        return self.path

    def abort(self) -> Path | None:
        """Finalise what was written as NAME.partial.EXT (playable); None if nothing was."""
        if self.container is None:
            return None
        if self.frames_written == 0:
            self._discard()
            return None
        self._finalize(self._last_time)
        return rename_no_replace(self.tmp, self.path)


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e)

