"""Frame sources: one image, a folder or glob of frames, a video file, a stream URL.

Each source iterates :class:`~streamcolor.frames.Frame` objects and describes itself with a
:class:`SourceInfo`.  Colour inputs are reduced to their luma, so a colour clip can serve as
its own ground truth.  ``av`` errors are translated into streamcolor errors here, at the edge.

A path that exists is always a path, whatever characters its name holds (``clip [1080p].mp4``);
only a text that names no file is tried as a glob pattern.
"""

from __future__ import annotations

import glob as globmod
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamcolor.engine.stop import StopToken
from streamcolor.errors import (
    InputNotFoundError,
    InputTruncatedError,
    InvalidInputError,
    StreamLostError,
    UnsupportedURLError,
)
from streamcolor.frames import Frame
from streamcolor.io.images import IMAGE_SUFFIXES, read_image_luma
from streamcolor.io.sidestreams import SideStreams
from streamcolor.io.urls import STREAM_SCHEMES, is_url, redact, url_scheme
from streamcolor.io.video import (
    LIVE_PROBE,
    device_format,
    frame_luma,
    open_container,
    rotation_turns,
    translate_av_error,
    upright,
)

log = logging.getLogger(__name__)

# Suffixes taken as video by name alone (a stream URL with one is a file served over HTTP).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg",
                            ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".ogv", ".3gp", ".gif",
                            ".y4m", ".mxf", ".vob"})
STDIN_NAMES = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
MAX_DECODE_ERRORS = 500  # packets that fail to decode before a video is given up on


def natural_key(path: object) -> list[object]:
    """Sort key that puts frame2 before frame10."""
    s = str(path)
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


@dataclass(frozen=True)
class SourceInfo:
    kind: str  # "image" | "folder" | "video" | "stream"
    label: str  # path or redacted URL, for messages
    width: int | None = None  # coded size (a rotated phone video's frames come upright)
    height: int | None = None
    frame_count: int | None = None  # best estimate, None when unknown (streams)
    rate: Fraction | None = None
    time_base: Fraction | None = None
    path: str | None = None  # the real path/URL (never log it unredacted)
    live: bool = False
    duration: float | None = None  # seconds, from the container, when known


class Source:
    """Iterates frames; ``side`` holds the audio/subtitle streams to carry over (video only);
    ``warnings`` collects what the user should hear once (damaged data, dropped streams)."""

    info: SourceInfo
    side: SideStreams | None = None
    warnings: tuple[str, ...] | list[str] = ()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def image_files(paths: Iterable[Path]) -> list[Path]:
    """The image files among ``paths``, in natural order of their names.  Hidden files
    (``.name``, such as macOS's ``._frame.png`` resource forks) are not frames."""
    return sorted((p for p in paths if not p.name.startswith(".") and p.is_file()
                   and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_pattern(text: str) -> bool:
    """A glob pattern: has glob characters and names no existing file or folder."""
    return is_glob(text) and not Path(text).exists()


def frame_files(pattern: str | Path) -> tuple[list[Path], str]:
    """(image files in natural order, label) of a folder or glob pattern; errors when the
    folder is missing or holds no images."""
    text = str(pattern)
    if is_pattern(text):
        files = [Path(p) for p in globmod.glob(text)]
    else:
        folder = Path(text)
        if not folder.is_dir():
            raise InputNotFoundError(f"{folder}: no such folder")
        try:
            files = list(folder.iterdir())
        except PermissionError:
            raise InvalidInputError(f"{folder}: permission denied") from None
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
        yield Frame(self._luma, 0, name=self.path.name, arrived_at=time.time(),
                    bit_depth=8 * self._luma.dtype.itemsize)


class FolderSource(Source):
    """Image files of a folder (or a glob pattern), in natural order."""

    def __init__(self, pattern: str | Path) -> None:
        self.files, label = frame_files(pattern)
        self.info = SourceInfo("folder", label, frame_count=len(self.files), path=label)

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.files):
            luma = read_image_luma(p)
            yield Frame(luma, i, name=p.name, arrived_at=time.time(),
                        bit_depth=8 * luma.dtype.itemsize)


class VideoSource(Source):
    """Any file or URL FFmpeg reads; frames keep their pts and time base.

    The input is demuxed once: video packets are decoded here, audio and subtitle packets go
    to :attr:`side` for the sink.  Damaged packets are skipped (FFmpeg conceals what it can)
    and counted; an input that ends before its container says it should raises
    :class:`InputTruncatedError` after its last frame, and a live stream that stops raises
    :class:`StreamLostError`, so the run keeps a partial output and says why.
    """

    def __init__(self, path: str, live: bool = False, open_timeout: float = 10.0,
                 read_timeout: float = 10.0, stop: StopToken | None = None,
                 stream_id: str = "0", input_format: str | None = None,
                 options: dict[str, str] | None = None, side_streams: bool = True,
                 label: str | None = None) -> None:
        self.path = path
        self.label = label or redact(path)
        self.read_timeout = read_timeout if is_url(path) or input_format else None
        self.stream_id = stream_id
        self.warnings: list[str] = []
        self._keep_side = side_streams
        self.container = open_container(path, self.label, open_timeout, self.read_timeout,
                                         stop, input_format, options)
        try:
            self._setup(live)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, live: bool) -> None:
        c = self.container
        if not c.streams.video:
            raise InvalidInputError(f"{self.label}: has no video stream")
        self.stream = c.streams.video[0]
        # AUTO (frame threads) adds two frames of latency; live streams decode with slices.
        self.stream.thread_type = "SLICE" if live else "AUTO"
        side = [s for s in c.streams if s.type in ("audio", "subtitle")]
        self.side = SideStreams(side if self._keep_side else [])
        for s in c.streams if self._keep_side else ():
            if s is not self.stream and s.type not in ("audio", "subtitle"):
                self._warn(f"{self.label}: {s.type} stream {s.index} "
                           f"({s.codec_context.name if s.codec_context else 'no codec'}) "
                           "is not carried over")
        cc = self.stream.codec_context
        rate = self.stream.average_rate or self.stream.guessed_rate
        count = self.stream.frames or None
        self._exact_count = count is not None
        duration = video_duration(c, self.stream)
        if not count and duration and rate and not live:
            count = round(duration * float(rate))
        self.info = SourceInfo(
            "stream" if live else "video", self.label, cc.width or None, cc.height or None,
            None if live else count, Fraction(rate) if rate else None,
            self.stream.time_base, path=self.path, live=live,
            duration=None if live else duration,
        )

    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        self.warnings.append(text)

    def __iter__(self) -> Iterator[Frame]:
        import av

        index = 0
        last_pts: int | None = None
        errors = 0
        turns_checked = False
        turns = 0
        tb = self.stream.time_base
        rate = self.info.rate or Fraction(25)
        side = self.side
        streams = [self.stream, *(side.streams if side else [])]
        try:
            for packet in self.container.demux(*streams):
                if packet.stream is not self.stream:
                    side.push(packet)  # type: ignore[union-attr]
                    continue
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as e:
                    errors += 1
                    log.debug("%s: damaged packet skipped (%s)", self.label, e)
                    if errors > MAX_DECODE_ERRORS and index == 0:
                        raise InvalidInputError(f"{self.label}: not a readable video (no "
                                                "packet decodes)") from None
                    continue
                for vf in decoded:
                    luma, full, depth = frame_luma(vf)
                    if not turns_checked:
                        turns_checked = True
                        turns = rotation_turns(vf)
                        if turns < 0:
                            self._warn(f"{self.label}: rotation {vf.rotation} is not a quarter "
                                       "turn; frames are kept as stored")
                            turns = 0
                    luma = upright(luma, turns)
                    pts = vf.pts
                    if pts is None:  # some AVI/raw streams: fall back to the frame counter
                        pts = round(index / rate / tb)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1  # the encoder needs strictly increasing pts
                    last_pts = pts
                    yield Frame(luma, index, pts, tb, full,
                                extra={"colorspace": vf.colorspace}, bit_depth=depth,
                                stream_id=self.stream_id, arrived_at=time.time())
                    index += 1
        except av.error.FFmpegError as e:
            # (no elapsed time: this generator waits for its consumer between packets)
            raise translate_av_error(e, self.label, self.read_timeout, None,
                                     self.info.live) from None
        finally:
            if side is not None:
                side.finished = True
        if index == 0:
            raise InvalidInputError(f"{self.label}: contains no decodable video frames")
        if errors:
            total = self.info.frame_count
            of = "" if not total else f" of {total}" if self._exact_count else \
                f" of about {total}"
            self._warn(f"{self.label}: {errors} damaged video packet(s) skipped; "
                       f"{index} frames decoded{of}")
        if self.info.live:
            raise StreamLostError(f"{self.label}: the stream ended after {index} frames")
        self._check_complete(index, last_pts)

    def _check_complete(self, frames: int, last_pts: int | None) -> None:
        """Raise when the input ends clearly before its container says it should."""
        info = self.info
        rate = info.rate
        if info.duration is None or last_pts is None or not rate or info.time_base is None:
            return
        start = self.stream.start_time or 0
        reached = float((last_pts - start) * info.time_base) + 1 / float(rate)
        missing = info.duration - reached
        if missing > max(3 / float(rate), 0.02 * info.duration):
            expected = info.frame_count
            of = (f" of {expected}" if self._exact_count else f" of about {expected}") \
                if expected else ""
            raise InputTruncatedError(
                f"{info.label}: ends after {frames}{of} frames ({reached:.2f} s of "
                f"{info.duration:.2f} s): the file is truncated")

    def close(self) -> None:
        self.container.close()


def _clock(text: str) -> float | None:
    """Seconds of an "HH:MM:SS.fraction" tag (Matroska's per-stream DURATION)."""
    m = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)", text.strip())
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


def video_duration(container: object, stream: object) -> float | None:
    """Seconds the video stream should last: its own duration, Matroska's DURATION tag, or
    the container's when the video is its only stream (otherwise a longer audio track would
    pass for missing video)."""
    if stream.duration and stream.time_base:  # type: ignore[attr-defined]
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    tag = (stream.metadata or {}).get("DURATION")  # type: ignore[attr-defined]
    if tag and _clock(tag):
        return _clock(tag)
    if container.duration and len(container.streams) == 1:  # type: ignore[attr-defined]
        return container.duration / 1_000_000  # type: ignore[attr-defined]
    return None


def open_source(spec: str | Path, stop: StopToken | None = None,
                timeout: float = 10.0) -> Source:
    """Pick the source for an input: image, folder/glob, video file or stream URL.

    ``timeout`` bounds connecting to a stream and every wait for its data (seconds); ``stop``
    interrupts connecting."""
    text = str(spec)
    if text in STDIN_NAMES:
        raise InvalidInputError(f"{text}: reading from standard input is not supported; give a "
                                "file, folder or URL")
    if is_url(text):
        scheme = url_scheme(text)
        if scheme == "file":
            return open_source(text[len("file://"):], stop, timeout)
        if scheme not in STREAM_SCHEMES:
            raise UnsupportedURLError(
                f"{redact(text)}: unsupported URL scheme {scheme!r} "
                f"(supported: {', '.join(sorted(STREAM_SCHEMES))})"
            )
        live = scheme not in ("http", "https") or Path(text.split("?")[0]).suffix.lower() \
            not in VIDEO_SUFFIXES
        return VideoSource(text, live=live, open_timeout=timeout, read_timeout=timeout,
                           stop=stop)
    p = Path(text)
    if is_pattern(text):
        return FolderSource(text)
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file or folder")
    device = device_format(text)
    if device is not None:  # a camera device (/dev/video0): a live source, not an empty file
        return VideoSource(text, live=True, open_timeout=timeout, read_timeout=timeout,
                           stop=stop, input_format=device, options=dict(LIVE_PROBE))
    if p.is_dir():
        return FolderSource(p)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(p)
    if p.stat().st_size == 0:
        raise InvalidInputError(f"{p}: empty file")
    return VideoSource(text, stop=stop)

