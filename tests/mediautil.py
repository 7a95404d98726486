"""Helpers that synthesize tiny test media with PyAV and read it back (no external files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def pattern_frame(i: int, width: int, height: int) -> np.ndarray:
    """Gray uint8 (H, W) frame ``i`` of a moving gradient with a moving bright square."""
    x = np.arange(width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    img = 40.0 + 100.0 * (0.5 + 0.5 * np.sin((x + 3 * i) / max(width, 1) * 2 * np.pi)) \
        + 60.0 * y / max(height - 1, 1)
    s = max(4, min(width, height) // 4)
    x0 = (5 * i) % max(width - s, 1)
    y0 = (3 * i) % max(height - s, 1)
    img[y0:y0 + s, x0:x0 + s] = 220.0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_video(
    path: str | Path,
    width: int = 64,
    height: int = 48,
    frames: int = 8,
    rate: Fraction | int = 25,
    time_base: Fraction | None = None,
    pts: list[int] | None = None,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    audio: str | None = None,
    crf: int = 10,
) -> Path:
    """Write a small clip; ``pts`` (in ``time_base`` units) makes it variable-frame-rate.

    ``audio`` is an audio codec name (``aac``, ``mp3``/``libmp3lame``, ``pcm_s16le``): a 440 Hz
    sine tone as long as the video.
    """
    path = Path(path)
    rate = Fraction(rate)
    if pts is not None:
        frames = len(pts)
    tb = time_base or (1 / rate)
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.time_base = tb
        vs.time_base = tb
        if codec in ("libx264", "libx265"):
            vs.options = {"crf": str(crf), "preset": "ultrafast"}
        aus = None
        if audio:
            aus = out.add_stream(audio, rate=44100)
            aus.layout = "mono"
        frame_pts = pts if pts is not None else [round(i / rate / tb) for i in range(frames)]
        for i, p in enumerate(frame_pts):
            g = pattern_frame(i, width, height)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.repeat(g[..., None], 3, 2)),
                                            format="rgb24")
            vf = vf.reformat(format=pix_fmt)
            vf.pts, vf.time_base = p, tb
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if aus is not None:
            last = float(frame_pts[-1] * tb) + float(1 / rate)
            sr = 44100
            total = round(last * sr)
            t = np.arange(total, dtype=np.float32) / sr
            tone = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
            chunk = aus.codec_context.frame_size or 1024
            res = av.AudioResampler(format=aus.format.name, layout="mono", rate=sr)
            for start in range(0, total, chunk):
                af = av.AudioFrame.from_ndarray(tone[None, start:start + chunk], format="fltp",
                                                layout="mono")
                af.sample_rate = sr
                af.pts = start
                af.time_base = Fraction(1, sr)
                for rf in res.resample(af):
                    for pkt in aus.encode(rf):
                        out.mux(pkt)
            for rf in res.resample(None):
                for pkt in aus.encode(rf):
                    out.mux(pkt)
            for pkt in aus.encode(None):
                out.mux(pkt)
    return path


@dataclass
class VideoInfo:
    width: int
    height: int
    pix_fmt: str
    codec: str
    times: list[float]  # frame pts in seconds, decode order of presentation
    pts: list[int]
    time_base: Fraction
    audio: list[tuple[str, int]] = field(default_factory=list)  # (codec, packet count)

    @property
    def frames(self) -> int:
        return len(self.times)


def probe(path: str | Path) -> VideoInfo:
    """Decode every video frame (so a broken file fails here) and count audio packets."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = vs.time_base
        pts = [f.pts for f in c.decode(vs)]
        info = VideoInfo(vs.codec_context.width, vs.codec_context.height,
                         vs.codec_context.format.name, vs.codec_context.name,
                         [float(p * tb) for p in pts], pts, tb)
    with av.open(str(path)) as c:
        streams = list(c.streams.audio)
        counts = {s.index: 0 for s in streams}
        if streams:
            for pkt in c.demux(*streams):
                if pkt.dts is not None and pkt.size:
                    counts[pkt.stream.index] += 1
        info.audio = [(s.codec_context.name, counts[s.index]) for s in streams]
    return info


def luma_planes(path: str | Path) -> list[np.ndarray]:
    """The decoded Y planes (uint8, H x W) of every frame, read without conversion."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            p = f.planes[0]
            buf = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: f.height, : f.width]
            out.append(buf.copy())
    return out


def chroma_planes(path: str | Path) -> list[np.ndarray]:
    """The decoded U and V planes of every frame as (2, h, w) int arrays."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            planes = []
            for p in f.planes[1:3]:
                buf = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width]
                planes.append(buf.astype(np.int16))
            out.append(np.stack(planes))
    return out


def write_gray_png(path: str | Path, gray: np.ndarray) -> Path:
    path = Path(path)
    assert cv2.imwrite(str(path), gray)
    return path


def read_rgb(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return bgr[..., ::-1].copy()


def bt601_luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def leftovers(folder: str | Path) -> list[str]:
    """Temporary files (``.NAME.tmp-*``) left in ``folder``."""
    return sorted(p.name for p in Path(folder).glob(".*.tmp-*"))


def make_audio_only(path: str | Path, seconds: float = 0.3) -> Path:
    """An .mp4 with one AAC stream and no video."""
    path = Path(path)
    sr = 44100
    with av.open(str(path), mode="w") as out:
        aus = out.add_stream("aac", rate=sr)
        aus.layout = "mono"
        res = av.AudioResampler(format=aus.format.name, layout="mono", rate=sr)
        n = int(seconds * sr)
        tone = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(n) / sr)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = sr, 0, Fraction(1, sr)
        for rf in [*res.resample(af), *res.resample(None)]:
            for pkt in aus.encode(rf):
                out.mux(pkt)
        for pkt in aus.encode(None):
            out.mux(pkt)
    return path


def make_header_only(path: str | Path) -> Path:
    """An .mp4 whose header was written but that holds no frames (no streams survive)."""
    path = Path(path)
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    assert path.stat().st_size > 0
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of every entry under ``folder`` (recursive)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def write_rgb_video(path: str | Path, frames: list[np.ndarray], rate: int = 25) -> Path:
    """Near-lossless H.264 4:4:4 (qp 0) of uint8 RGB frames."""
    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv444p"
        vs.options = {"qp": "0", "preset": "ultrafast"}
        for f in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return path
