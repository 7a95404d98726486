"""Frame sources: one image, a folder or glob of frames, a video file, a stream URL.

Each source iterates :class:`~streamcolor.frames.Frame` objects and describes itself with a
:class:`SourceInfo`.  Colour inputs are reduced to their luma, so a colour clip can serve as
its own ground truth.  ``av`` errors are translated into streamcolor errors here, at the edge.
"""

from __future__ import annotations

import glob as globmod
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamcolor.color import rgb_to_luma_u8
from streamcolor.errors import InputNotFoundError, InvalidInputError, UnsupportedURLError
from streamcolor.frames import Frame
from streamcolor.io.urls import STREAM_SCHEMES, is_url, redact, url_scheme

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg",
                            ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".ogv", ".3gp", ".gif"})
# Pixel formats whose first plane is the luma we want, read without any conversion.
_Y_PLANE_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p",
                              "yuvj444p", "yuv411p", "yuv410p", "yuv440p", "yuvj440p", "nv12",
                              "nv21", "gray"})


def natural_key(path: object) -> list[object]:
    """Sort key that puts frame2 before frame10."""
    s = str(path)
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


@dataclass(frozen=True)
class SourceInfo:
    kind: str  # "image" | "folder" | "video" | "stream"
    label: str  # path or redacted URL, for messages
    width: int | None = None
    height: int | None = None
    frame_count: int | None = None  # best estimate, None when unknown (streams)
    rate: Fraction | None = None
    time_base: Fraction | None = None
    path: str | None = None  # the real path/URL (never log it unredacted)
    live: bool = False


class Source:
    info: SourceInfo

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def decode_image_file(path: Path, flags: int) -> np.ndarray:
    """``cv2.imdecode`` of a file, with our errors for a missing or unreadable one."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    if data is None:
        raise InputNotFoundError(f"{path}: no such file")
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise InvalidInputError(f"{path}: not a readable image")
    return img


def read_image_luma(path: Path) -> np.ndarray:
    """Luma of an image file (uint8, or uint16 for 16-bit files); BT.601 for colour images."""
    img = decode_image_file(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    if img.dtype == np.uint16:
        rgb = img[..., ::-1].astype(np.float32)
        y = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.rint(y), 0, 65535).astype(np.uint16)
    if img.dtype != np.uint8:
        raise InvalidInputError(f"{path}: unsupported image sample type {img.dtype}")
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
        return np.ascontiguousarray(img[..., 0])
    return rgb_to_luma_u8(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def image_files(paths: Iterable[Path]) -> list[Path]:
    """The image files among ``paths``, in natural order of their names."""
    return sorted((p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def frame_files(pattern: str | Path) -> tuple[list[Path], str]:
    """(image files in natural order, label) of a folder or glob pattern; errors when the
    folder is missing or holds no images."""
    text = str(pattern)
    if is_glob(text):
        files = [Path(p) for p in globmod.glob(text)]
    else:
        folder = Path(text)
        if not folder.is_dir():
            raise InputNotFoundError(f"{folder}: no such folder")
        files = list(folder.iterdir())
        text = str(folder)
    found = image_files(files)
    if not found:
        raise InvalidInputError(f"{text}: no image files (zero frames)")
    return found, text


class ImageSource(Source):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputNotFoundError(f"{self.path}: no such file")
        self._luma = read_image_luma(self.path)
        h, w = self._luma.shape
        self.info = SourceInfo("image", str(self.path), w, h, 1, path=str(self.path))

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(self._luma, 0, name=self.path.name)


class FolderSource(Source):
    """Image files of a folder (or a glob pattern), in natural order."""

    def __init__(self, pattern: str | Path) -> None:
        self.files, label = frame_files(pattern)
        self.info = SourceInfo("folder", label, frame_count=len(self.files), path=label)

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.files):
            yield Frame(read_image_luma(p), i, name=p.name)


def _translate_av_error(e: Exception, label: str) -> Exception:
    """One streamcolor error for an ``av.error`` raised while opening or decoding ``label``."""
    import av

    reason = redact(getattr(e, "strerror", None) or str(e))  # str(e) may hold the raw URL
    if isinstance(e, av.error.FileNotFoundError) and not is_url(label):
        return InputNotFoundError(f"{label}: no such file")
    if isinstance(e, av.error.PermissionError):
        return InvalidInputError(f"{label}: permission denied")
    if isinstance(e, av.error.InvalidDataError):
        return InvalidInputError(f"{label}: not a readable video (invalid or truncated data)")
    if is_url(label):
        return InvalidInputError(f"{label}: cannot read the stream ({reason})")
    return InvalidInputError(f"{label}: cannot read video ({reason})")


def frame_luma(frame: object) -> tuple[np.ndarray, bool]:
    """(luma plane, full_range) of an ``av.VideoFrame``, reading the Y plane directly when the
    pixel format allows (no colour conversion), otherwise converting via RGB (BT.601)."""
    fmt = frame.format.name  # type: ignore[attr-defined]
    if fmt not in _Y_PLANE_FORMATS:
        if fmt.startswith(("yuv", "yuvj")) and "p" in fmt:
            frame = frame.reformat(format="yuv420p")  # type: ignore[attr-defined]  # 10/12-bit
            fmt = "yuv420p"
        else:
            rgb = frame.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
            return rgb_to_luma_u8(rgb), True
    plane = frame.planes[0]  # type: ignore[attr-defined]
    w, h = frame.width, frame.height  # type: ignore[attr-defined]
    buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
    full = fmt.startswith("yuvj") or fmt == "gray" or int(frame.color_range or 0) == 2  # type: ignore[attr-defined]
    return buf.copy(), full


class VideoSource(Source):
    """Any file or URL FFmpeg reads; frames keep their pts and time base."""

    def __init__(self, path: str, live: bool = False, open_timeout: float = 10.0) -> None:
        import av

        self.path = path
        self.label = redact(path)
        options = {"rtsp_transport": "tcp"} if url_scheme(path).startswith("rtsp") else {}
        try:
            self.container = av.open(path, mode="r", options=options,
                                     timeout=(open_timeout, open_timeout) if is_url(path) else None)
        except av.error.FFmpegError as e:
            raise _translate_av_error(e, self.label) from None
        if not self.container.streams.video:
            self.container.close()
            raise InvalidInputError(f"{self.label}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        rate = self.stream.average_rate or self.stream.guessed_rate
        count = self.stream.frames or None
        if not count and self.stream.duration and rate:
            count = round(float(self.stream.duration * self.stream.time_base * rate))
        if not count and self.container.duration and rate and not live:
            count = round(self.container.duration / 1_000_000 * float(rate))
        self.info = SourceInfo(
            "stream" if live else "video", self.label, cc.width or None, cc.height or None,
            None if live else count, Fraction(rate) if rate else None,
            self.stream.time_base, path=path, live=live,
        )

    def __iter__(self) -> Iterator[Frame]:
        import av

        index = 0
        last_pts: int | None = None
        try:
            for vf in self.container.decode(self.stream):
                luma, full = frame_luma(vf)
                pts = vf.pts
                if pts is None:  # some AVI/raw streams: fall back to the frame counter
                    rate = self.info.rate or Fraction(25)
                    pts = round(index / rate / self.stream.time_base)
                if last_pts is not None and pts <= last_pts:
                    pts = last_pts + 1  # the encoder needs strictly increasing pts
                last_pts = pts
                yield Frame(luma, index, pts, self.stream.time_base, full,
                            extra={"colorspace": vf.colorspace})
                index += 1
        except av.error.FFmpegError as e:
            raise _translate_av_error(e, self.label) from None
        if index == 0:
            raise InvalidInputError(f"{self.label}: contains no decodable video frames")

    def close(self) -> None:
        self.container.close()


def open_source(spec: str | Path) -> Source:
    """Pick the source for an input: image, folder/glob, video file or stream URL."""
    text = str(spec)
    if is_url(text):
        scheme = url_scheme(text)
        if scheme == "file":
            return open_source(text[len("file://"):])
        if scheme not in STREAM_SCHEMES:
            raise UnsupportedURLError(
                f"{redact(text)}: unsupported URL scheme {scheme!r} "
                f"(supported: {', '.join(sorted(STREAM_SCHEMES))})"
            )
        live = scheme not in ("http", "https") or Path(text.split("?")[0]).suffix.lower() \
            not in VIDEO_SUFFIXES
        return VideoSource(text, live=live)
    if is_glob(text):
        return FolderSource(text)
    p = Path(text)
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        return FolderSource(p)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(p)
    if p.stat().st_size == 0:
        raise InvalidInputError(f"{p}: empty file")
    return VideoSource(text)
