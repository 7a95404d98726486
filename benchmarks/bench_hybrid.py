"""What the hybrid head costs at inference: model-only time of a plain and a hybrid generator.

    python benchmarks/bench_hybrid.py [--plain base] [--hybrid stable] [--repeats 5]

One 640x480 frame (render factor 16: 288x224 into the network) through ``Colorizer.predict``
for each model on OpenVINO at the CPU's best precision (1 and 2 threads) and torch fp32
(2 threads).  The two models are timed alternately, plain then hybrid, in every repeat of every
setting, so both see the same machine; each repeat is the median of 30 calls after 5 warm-up
calls.  Reports milliseconds a frame, the hybrid/plain ratio per repeat (median and range)
and how busy the machine was.  Writes ``results/hybrid.json`` and its ``.md`` twin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import NoiseProbe, cpu_model, log, spread, write_results

RESULTS = Path(__file__).resolve().parent / "results"


def _frame(width: int = 640, height: int = 480) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _time(colorizer: Any, frame: np.ndarray, calls: int = 30, warmup: int = 5) -> float:
    for _ in range(warmup):
        colorizer.predict([frame])
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        colorizer.predict([frame])
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def run(plain: str, hybrid: str, repeats: int) -> dict[str, Any]:
    from streamcolor.model.colorizer import Colorizer

    frame = _frame()
    rows = []
    probe = NoiseProbe()
    import streamcolor

    streamcolor.set_threads(2)  # torch's, process-wide; OpenVINO's are per instance
    for runtime, precision, threads in (("openvino", "auto", 1), ("openvino", "auto", 2),
                                        ("torch", "fp32", 2)):
        models = {name: Colorizer(name, runtime=runtime, precision=precision,
                                  threads=threads if runtime == "openvino" else None,
                                  batch_size=1)
                  for name in (plain, hybrid)}
        ms: dict[str, list[float]] = {plain: [], hybrid: []}
        for _ in range(repeats):
            for name, c in models.items():  # alternately, on the same machine
                ms[name].append(_time(c, frame))
        ratios = [h / p for p, h in zip(ms[plain], ms[hybrid], strict=True)]
        prec = models[hybrid].runtime.precision
        rows.append({"runtime": runtime, "precision": prec, "threads": threads,
                     "plain_ms": spread(ms[plain]), "hybrid_ms": spread(ms[hybrid]),
                     "ratio": spread(ratios)})
        log(f"{runtime} {prec} {threads} thread(s): plain {statistics.median(ms[plain]):.1f} "
            f"ms, hybrid {statistics.median(ms[hybrid]):.1f} ms, ratio "
            f"{statistics.median(ratios):.2f}")
    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
            "plain": plain, "hybrid": hybrid, "frame": [640, 480], "render_factor": 16,
            "repeats": repeats, "rows": rows, "noise": probe.result()}


def markdown(doc: dict[str, Any]) -> str:
    noise = doc["noise"]
    other = noise["other_cpu_share"]
    lines = [f"Hybrid head cost ({doc['date']}, {doc['cpu']}): `{doc['plain']}` (plain) against "
             f"`{doc['hybrid']}` (hybrid), one 640x480 frame, render factor 16, model only "
             f"(`Colorizer.predict`, batch 1), timed alternately, {doc['repeats']} repeats of "
             "the median of 30 calls.", "",
             "| runtime | precision | threads | plain ms | hybrid ms | hybrid / plain |",
             "|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        ratio = r["ratio"]
        lines.append(f"| {r['runtime']} | {r['precision']} | {r['threads']} | "
                     f"{r['plain_ms']['median']:.1f} | {r['hybrid_ms']['median']:.1f} | "
                     f"{ratio['median']:.2f} ({ratio['min']:.2f}–{ratio['max']:.2f}) |")
    lines += ["", f"Noise: other processes took "
              f"{'?' if other is None else f'{100 * other:.1f} %'} of the CPU over the "
              f"{noise['seconds']:.0f} s run (load average {noise['loadavg_before'][0]:.2f} → "
              f"{noise['loadavg_after'][0]:.2f})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plain", default="base")
    ap.add_argument("--hybrid", default="stable")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "hybrid.json"))
    a = ap.parse_args(argv)
    write_results(run(a.plain, a.hybrid, a.repeats), a.out, markdown)


if __name__ == "__main__":
    main()
