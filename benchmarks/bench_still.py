"""Peak memory of colorizing one large still image, per pixel.

    python benchmarks/bench_still.py                 # 2000², 6000², 12000² -> results/still.*
    python benchmarks/bench_still.py --sides 4000

Each size is a gray PNG (a smooth gradient with noise, so it compresses like a photo, not
like a blank page) colourised by ``streamcolor colorize`` in a fresh process; the process's
peak RSS (``ru_maxrss`` of the child) minus that of colourising a 64x64 image (interpreter,
torch, the model) is the cost of the image, reported per pixel.  The issue that asked for
banded composition measured ~46 bytes a pixel (a 12000x12000 PNG peaking at 7.1 GB); the
floor is the luma (1 byte) plus the RGB output (3 bytes) plus what the PNG encoder needs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import NoiseProbe, cpu_model, log

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def make_png(path: Path, side: int) -> None:
    rng = np.random.default_rng(side)
    y = np.linspace(30, 220, side, dtype=np.float32)[:, None]
    x = np.linspace(0, 40, side, dtype=np.float32)[None, :]
    img = np.empty((side, side), np.uint8)
    for r in range(0, side, 1024):  # in bands: the benchmark itself must not be the peak
        band = y[r:r + 1024] + x + rng.normal(0, 6, (min(1024, side - r), side))
        img[r:r + 1024] = np.clip(band, 0, 255)
    assert cv2.imwrite(str(path), img)


def run(image: Path, out: Path, threads: int) -> tuple[float, int]:
    """(seconds, peak RSS bytes) of one colorize in a fresh process.  ``ru_maxrss`` of the
    children is the largest of them all, so sizes run in increasing order."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "streamcolor", "colorize", str(image), "-o",
                        str(out), "--overwrite", "--threads", str(threads), "-q"],
                       capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"colorize failed on {image}: {p.stderr.strip()}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sides", default="2000,6000,12000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "still.json"))
    a = ap.parse_args(argv)
    sides = sorted(int(s) for s in a.sides.split(","))
    noise = NoiseProbe()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_still_") as tmp:
        tmpd = Path(tmp)
        make_png(tmpd / "tiny.png", 64)
        base_s, base_peak = run(tmpd / "tiny.png", tmpd / "tiny_out.png", a.threads)
        log(f"baseline 64x64: peak {base_peak / 2**20:.0f} MiB in {base_s:.1f} s")
        for side in sides:
            img = tmpd / f"in_{side}.png"
            make_png(img, side)
            seconds, peak = run(img, tmpd / f"out_{side}.png", a.threads)
            px = side * side
            rows.append({"side": side, "pixels": px, "input_bytes": img.stat().st_size,
                         "seconds": seconds, "peak_rss": peak,
                         "bytes_per_pixel": (peak - base_peak) / px})
            log(f"{side}x{side}: peak {peak / 2**20:.0f} MiB, "
                f"{rows[-1]['bytes_per_pixel']:.1f} B/px above the baseline, {seconds:.1f} s")
            img.unlink()
    doc = {"cpu": cpu_model(), "threads": a.threads, "baseline_peak_rss": base_peak,
           "rows": rows, "noise": noise.result(),
           "finished": time.strftime("%Y-%m-%d %H:%M")}
    out = Path(a.out)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    n = doc["noise"]
    lines = [f"Still-image memory, `python benchmarks/bench_still.py` ({doc['finished']}, "
             f"{doc['cpu']}, {a.threads} threads; other processes used "
             f"{100 * (n['other_cpu_share'] or 0):.1f} % of the CPU). Peak RSS of a fresh "
             f"`streamcolor colorize` process; baseline (64x64 image): "
             f"{base_peak / 2**20:.0f} MiB.", "",
             "| image | PNG in | peak RSS | above baseline, per pixel | seconds |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['side']}x{r['side']} | {r['input_bytes'] / 2**20:.1f} MiB | "
                     f"{r['peak_rss'] / 2**30:.2f} GiB | {r['bytes_per_pixel']:.1f} B | "
                     f"{r['seconds']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
