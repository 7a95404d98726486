"""Sinks: where colourised frames go (an image file, a folder of images, a video file).

Every sink writes atomically: a temporary file in the output's folder, renamed over the final
name only when complete.  A video interrupted by Ctrl-C, an error or a lost stream is still
finalised (encoder flushed, container closed, so it plays) and kept as ``NAME.partial.EXT``.

A sink receives each frame with its chroma at render resolution and upsamples it itself: to
full resolution for images, straight to the chroma-plane size for 4:2:0 video.  The source's
luma is written untouched (the video's Y plane byte for byte).
"""

from __future__ import annotations

import contextlib
import logging
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamcolor.color import chroma_to_u8, merge_luma_chroma
from streamcolor.errors import OutputError
from streamcolor.frames import Frame

log = logging.getLogger(__name__)

VIDEO_CODECS = {".webm": "libvpx-vp9", ".ogv": "libtheora", ".gif": "gif"}
DEFAULT_VIDEO_CODEC = "libx264"


def temp_path_for(final: Path) -> Path:
    """Hidden temporary name beside ``final`` that keeps its suffix (format guessing)."""
    return final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")


def partial_path_for(final: Path) -> Path:
    return final.with_name(f"{final.stem}.partial{final.suffix}")


def upsample_chroma(chroma: np.ndarray, height: int, width: int) -> np.ndarray:
    if chroma.shape[:2] == (height, width):
        return chroma
    return cv2.resize(chroma, (width, height), interpolation=cv2.INTER_LINEAR)


def compose_rgb(frame: Frame, chroma: np.ndarray) -> np.ndarray:
    """Full-resolution RGB (uint8, or uint16 for 16-bit luma) of a frame and its chroma."""
    full = upsample_chroma(chroma, frame.height, frame.width)
    rgb = merge_luma_chroma(frame.model_luma(), full)
    if frame.luma.dtype == np.uint16:
        return np.rint(rgb * 65535.0).astype(np.uint16)
    return np.rint(rgb * 255.0).astype(np.uint8)


def write_image_atomic(path: Path, rgb: np.ndarray) -> None:
    if rgb.dtype == np.uint16 and path.suffix.lower() not in (".png", ".tif", ".tiff"):
        rgb = (rgb >> 8).astype(np.uint8)  # 8-bit formats (JPEG, WebP, BMP)
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OutputError(f"{path}: cannot encode an image of this type")
    write_bytes_atomic(path, buf.tobytes())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a temporary file beside ``path``, then rename it over ``path``."""
    tmp = temp_path_for(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


class Sink:
    """Receives frames in order; ``close`` finishes, ``abort`` keeps a playable partial."""

    frames_written = 0

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> Path | None:
        raise NotImplementedError


class ImageSink(Sink):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.frames_written = 0

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        write_image_atomic(self.path, compose_rgb(frame, chroma))
        self.frames_written += 1

    def close(self) -> Path:
        return self.path

    def abort(self) -> Path | None:
        return None


class FolderSink(Sink):
    """One image per frame; frames from files keep their file names."""

    def __init__(self, folder: str | Path, suffix: str | None = None) -> None:
        self.folder = Path(folder)
        self.suffix = suffix
        self.frames_written = 0

    def name_for(self, frame: Frame) -> str:
        if frame.name:
            return frame.name if self.suffix is None else Path(frame.name).stem + self.suffix
        return f"frame_{frame.index + 1:06d}{self.suffix or '.png'}"

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        if self.frames_written == 0:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(f"{self.folder}: cannot create folder ({e.strerror})") from None
        write_image_atomic(self.folder / self.name_for(frame), compose_rgb(frame, chroma))
        self.frames_written += 1

    def close(self) -> Path:
        return self.folder

    def abort(self) -> Path | None:
        return self.folder if self.frames_written else None


class AudioPassthrough:
    """Copies the audio of ``source_path`` into ``out``, interleaved with the video by time.

    Packets are remuxed untouched when the output container accepts the codec; otherwise the
    stream is re-encoded to AAC (or dropped, with a warning, if even that is not possible).
    """

    def __init__(self, out: object, source_path: str) -> None:
        import av

        self.out = out
        self.inp = av.open(source_path)
        self.routes: dict[int, tuple[object, object | None, object | None]] = {}
        supported = out.supported_codecs  # type: ignore[attr-defined]
        for s in self.inp.streams.audio:
            name = s.codec_context.name
            if name in supported:
                self.routes[s.index] = (out.add_stream_from_template(s), None, None)  # type: ignore[attr-defined]
            elif "aac" in supported:
                o = out.add_stream("aac", rate=s.codec_context.sample_rate)  # type: ignore[attr-defined]
                o.layout = s.codec_context.layout
                res = av.AudioResampler(format=o.format, layout=o.layout, rate=o.rate)
                self.routes[s.index] = (o, res, s)
                log.warning("audio codec %s does not fit %s: re-encoding it to AAC", name,
                            out.format.name)  # type: ignore[attr-defined]
            else:
                log.warning("audio stream %d (%s) cannot be stored in this container: dropped",
                            s.index, name)
        streams = [s for s in self.inp.streams.audio if s.index in self.routes]
        self._packets = self.inp.demux(*streams) if streams else iter(())
        self._pending: object | None = None
        self._done = not streams

    def _mux(self, packet: object) -> None:
        ostream, resampler, _ = self.routes[packet.stream.index]  # type: ignore[attr-defined]
        if resampler is None:
            if packet.dts is None:  # type: ignore[attr-defined]
                return  # demuxer flush packet
            packet.stream = ostream  # type: ignore[attr-defined]
            self.out.mux(packet)  # type: ignore[attr-defined]
            return
        for frame in packet.decode():  # type: ignore[attr-defined]
            for rf in resampler.resample(frame):  # type: ignore[attr-defined]
                for p in ostream.encode(rf):  # type: ignore[attr-defined]
                    self.out.mux(p)  # type: ignore[attr-defined]

    def write_until(self, t: float | None) -> None:
        """Mux audio packets that start at or before ``t`` seconds (all of them if None)."""
        while not self._done:
            if self._pending is None:
                try:
                    self._pending = next(self._packets)  # type: ignore[call-overload]
                except StopIteration:
                    self._done = True
                    break
            pkt = self._pending
            pts = pkt.pts  # type: ignore[attr-defined]
            if t is not None and pts is not None and float(pts * pkt.time_base) > t:  # type: ignore[attr-defined]
                break
            self._pending = None
            self._mux(pkt)

    def close(self) -> None:
        for ostream, resampler, _ in self.routes.values():
            if resampler is not None:
                for p in ostream.encode(None):  # type: ignore[attr-defined]
                    self.out.mux(p)  # type: ignore[attr-defined]
        self.inp.close()


def _check_encoder(path: Path, codec: str) -> None:
    import av

    try:
        c = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):  # UnknownCodecError is a ValueError
        raise OutputError(f"{path}: unknown video encoder {codec!r}") from None
    if c.type != "video":
        raise OutputError(f"{path}: {codec!r} is not a video encoder")


class VideoSink(Sink):
    """Encodes frames with PyAV, same timestamps as the source, audio passed through."""

    def __init__(self, path: str | Path, rate: Fraction | None = None,
                 audio_from: str | None = None, codec: str | None = None, crf: int = 18,
                 preset: str = "veryfast", options: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.tmp = temp_path_for(self.path)
        self.rate = Fraction(rate) if rate else Fraction(25)
        self.audio_from = audio_from
        self.codec = codec or VIDEO_CODECS.get(self.path.suffix.lower(), DEFAULT_VIDEO_CODEC)
        _check_encoder(self.path, self.codec)
        self.crf = crf
        self.preset = preset
        self.options = dict(options or {})
        self.container: object | None = None
        self.stream: object | None = None
        self.audio: AudioPassthrough | None = None
        self.frames_written = 0
        self._last_time: float | None = None
        self._pix_fmt = "yuv420p"

    def _open(self, frame: Frame) -> None:
        import av

        try:
            self.container = av.open(str(self.tmp), mode="w")
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
        even = frame.width % 2 == 0 and frame.height % 2 == 0
        self._pix_fmt = "yuv420p" if even else "yuv444p"
        if not even:
            log.warning("%s: odd frame size %dx%d, encoding 4:4:4 to keep every pixel",
                        self.path, frame.width, frame.height)
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, self._pix_fmt
        tb = frame.time_base or Fraction(1, 1) / self.rate
        stream.codec_context.time_base = tb
        stream.time_base = tb
        stream.codec_context.color_range = 2 if frame.full_range else 1
        cs = frame.extra.get("colorspace")
        if cs:
            stream.codec_context.colorspace = cs
        opts = dict(self.options)
        if self.codec in ("libx264", "libx265"):
            opts.setdefault("crf", str(self.crf))
            opts.setdefault("preset", self.preset)
        elif self.codec == "libvpx-vp9":
            opts.setdefault("crf", str(max(self.crf, 15) + 12))
            opts.setdefault("b", "0")
        stream.options = opts
        self.stream = stream
        if self.audio_from:
            self.audio = AudioPassthrough(c, self.audio_from)

    def _video_frame(self, frame: Frame, chroma: np.ndarray) -> object:
        import av

        vf = av.VideoFrame(frame.width, frame.height, self._pix_fmt)
        y = frame.luma if frame.luma.dtype == np.uint8 else (frame.luma >> 8).astype(np.uint8)
        planes = vf.planes
        self._fill(planes[0], y)
        ch, cw = planes[1].height, planes[1].width
        uv = chroma_to_u8(upsample_chroma(chroma, ch, cw), limited=not frame.full_range)
        self._fill(planes[1], uv[..., 0])
        self._fill(planes[2], uv[..., 1])
        vf.color_range = 2 if frame.full_range else 1
        if frame.pts is not None and frame.time_base is not None:
            vf.pts, vf.time_base = frame.pts, frame.time_base
        else:
            vf.pts, vf.time_base = frame.index, Fraction(1, 1) / self.rate
        return vf

    @staticmethod
    def _fill(plane: object, data: np.ndarray) -> None:
        h, w = data.shape
        dst = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)  # type: ignore[attr-defined]
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
            if self.audio:
                self.audio.write_until(t)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: writing failed ({e})") from None
        self._last_time = t
        self.frames_written += 1

    def _finalize(self, audio_until: float | None) -> None:
        import av

        try:
            for pkt in self.stream.encode(None):  # type: ignore[attr-defined]
                self.container.mux(pkt)  # type: ignore[attr-defined]
            if self.audio:
                self.audio.write_until(audio_until)
                self.audio.close()
            self.container.close()  # type: ignore[attr-defined]
        except (av.error.FFmpegError, OSError) as e:
            self._discard()
            raise OutputError(f"{self.path}: finishing the video failed ({e})") from None

    def _discard(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):  # already failing: keep the first error
                self.container.close()  # type: ignore[attr-defined]
        self.tmp.unlink(missing_ok=True)

    def close(self) -> Path:
        if self.container is None:
            raise OutputError(f"{self.path}: no frames to write")
        self._finalize(None)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> Path | None:
        """Finalise what was written as NAME.partial.EXT (playable); None if nothing was."""
        if self.container is None:
            return None
        if self.frames_written == 0:
            self._discard()
            return None
        self._finalize(self._last_time)
        partial = partial_path_for(self.path)
        os.replace(self.tmp, partial)
        return partial
