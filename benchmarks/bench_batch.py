"""Batch benchmark: `streamcolor batch` on 256 px 16-bit GeoTIFF tiles with one process,
`--workers 2` and Ray with 2 actors; the cost of a rerun when everything is done; peak memory
and time for one 10k x 10k uint16 GeoTIFF; tiles/s per worker against the model alone.

    python benchmarks/bench_batch.py                 # 10,000 tiles, about 15 minutes here
    python benchmarks/bench_batch.py --files 500 --parallel-files 200 --big 4000   # quick

Every run is the real command in a subprocess (start-up, model load and all); the machine's
other load is reported (Ray's own processes are not this script's children, so they count
as "other").  Writes benchmarks/results/batch.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import NoiseProbe, cpu_model, log, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TILES16 = ROOT.parent / "shared" / "data" / "satellite" / "tiles16"


def make_tiles(folder: Path, n: int) -> None:
    """``n`` distinct 256x256x3 uint16 GeoTIFFs: the real Landsat tiles, rolled and flipped."""
    import rasterio

    sources = sorted(TILES16.glob("*.tif"))
    data, profiles = [], []
    for s in sources:
        with rasterio.open(s) as ds:
            data.append(ds.read())
            profiles.append((ds.profile, ds.tags()))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % len(sources)
        a = np.roll(data[k], (i // len(sources)) % 256, axis=2)
        if (i // len(sources)) % 2:
            a = a[:, ::-1]
        profile, tags = profiles[k]
        sub = folder / f"{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        with rasterio.open(sub / f"tile_{i:05d}.tif", "w", **profile) as ds:
            ds.write(np.ascontiguousarray(a))
            ds.update_tags(**tags)


def make_big(path: Path, side: int) -> None:
    """One ``side`` x ``side`` uint16 GeoTIFF (tiled, DEFLATE), written window by window."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", driver="GTiff", width=side, height=side, count=1,
                       dtype="uint16", crs="EPSG:32621", tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate", predictor=2, nodata=0,
                       transform=Affine(30, 0, 600000, 0, -30, 7000000)) as ds:
        ds.update_tags(AREA_OR_POINT="Point")
        xx = np.arange(side, dtype=np.float32)
        for r in range(0, side, 512):
            h = min(512, side - r)
            yy = np.arange(r, r + h, dtype=np.float32)[:, None]
            block = 6000 + 2500 * np.sin(xx / 180.0) * np.cos(yy / 240.0) + \
                rng.normal(0, 300, (h, side)).astype(np.float32)
            ds.write(block.clip(1, 65535).astype(np.uint16)[None], window=Window(0, r, side, h))


def run_batch_cmd(src: Path, out: Path, *extra: str) -> dict[str, Any]:
    """The real command; wall time and the child's own peak RSS (wait4)."""
    cmd = [sys.executable, "-m", "streamcolor", "batch", str(src), "-o", str(out), "-q", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    manifest = out / "streamcolor-manifest.jsonl"
    recs = [json.loads(x) for x in manifest.read_text().splitlines()] if manifest.exists() else []
    return {"seconds": wall, "peak_rss_mib": usage.ru_maxrss / 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "records": len(recs),
            "tiles": sum(r.get("tiles", 0) for r in recs)}


def model_only(threads: int, seconds: float = 15.0) -> float:
    """Tiles/s of the default model on 256x256 tiles, batched as the job batches them."""
    from streamcolor.model.colorizer import Colorizer
    from streamcolor.model.runtime import configure_threads

    configure_threads(threads)
    c = Colorizer(threads=threads)
    rng = np.random.default_rng(0)
    batch = [rng.random((256, 256), dtype=np.float32) for _ in range(c.batch_size)]
    c.predict(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c.predict(batch)
        n += len(batch)
    return n / (time.perf_counter() - t0)


def markdown(doc: dict[str, Any]) -> str:
    runs, noise = doc["runs"], doc["noise"]
    lines = [
        f"Batch benchmark, `python benchmarks/bench_batch.py` ({doc['finished']}, "
        f"{doc['cpu']}, {doc['cpus']} CPUs; default model `{doc['model']}` on its default "
        f"runtime; other processes used {100 * (noise['other_cpu_share'] or 0):.1f} % of the "
        "CPU, Ray's own processes included). Each row is the real command in a subprocess, "
        "start-up and model load included.",
        "",
        "| target | goal | measured | |",
        "|---|---|---|---|",
    ]
    for t in doc["targets"]:
        lines.append(f"| {t['what']} | {t['goal']} | {t['measured']} | "
                     f"{'pass' if t['ok'] else 'FAIL'} |")
    lines += ["", "| run | files | seconds | files/s | tiles/s per worker | model alone, "
              "tiles/s per worker | peak RSS (MiB) |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {r['files']} | {r['seconds']:.1f} | "
                     f"{r['files_per_s']:.1f} | {r.get('tiles_per_s_per_worker', 0):.1f} | "
                     f"{r.get('model_tiles_per_s_per_worker', 0):.1f} | "
                     f"{r['peak_rss_mib']:.0f} |")
    b = doc.get("big")
    if b:
        lines += ["", f"One {b['side']} x {b['side']} uint16 GeoTIFF ({b['megapixels']:.0f} "
                  f"Mpx, {b['tiles']} tiles): {b['seconds']:.1f} s, peak RSS "
                  f"{b['peak_rss_mib']:.0f} MiB (the raw band alone is "
                  f"{b['raw_mib']:.0f} MiB; as float32 RGB it would be "
                  f"{b['raw_mib'] * 6:.0f} MiB)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10000, help="tiles of the 1-process job")
    ap.add_argument("--parallel-files", type=int, default=1000,
                    help="tiles of the --workers 2 and Ray jobs")
    ap.add_argument("--big", type=int, default=10000, help="side of the big file (0: none)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: tmp)")
    ap.add_argument("--out", default=str(RESULTS / "batch.json"))
    a = ap.parse_args(argv)
    from streamcolor.model.runtime.threads import available_cpus
    from streamcolor.model.weights import DEFAULT_MODEL

    cpus = available_cpus()
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    noise = NoiseProbe()
    try:
        log(f"writing {a.files} tiles into {work}")
        make_tiles(work / "tiles", a.files)
        par = work / "tiles_par"
        make_tiles(par, a.parallel_files)
        log("model alone")
        alone = {1: model_only(1), cpus: model_only(cpus)}
        log(f"  {alone}")
        runs = []

        def record(name: str, files: int, res: dict[str, Any], workers: int,
                   threads: int) -> dict[str, Any]:
            row = {"name": name, "files": files, **res, "workers": workers,
                   "files_per_s": files / res["seconds"],
                   "tiles_per_s_per_worker": res["tiles"] / res["seconds"] / workers,
                   "model_tiles_per_s_per_worker": alone.get(threads, 0.0)}
            runs.append(row)
            log(f"  {name}: {row['files_per_s']:.1f} files/s, {res['seconds']:.1f} s")
            return row

        log(f"1 process, {a.files} files")
        first = record("1 process", a.files,
                       run_batch_cmd(work / "tiles", work / "out1"), 1, cpus)
        log("rerun, everything done")
        rerun = run_batch_cmd(work / "tiles", work / "out1")
        runs.append({"name": "rerun (all done)", "files": a.files, **rerun, "workers": 1,
                     "files_per_s": a.files / rerun["seconds"]})
        log(f"  rerun {rerun['seconds']:.2f} s")
        log(f"1 process, {a.parallel_files} files")
        one_par = record("1 process (same files as below)", a.parallel_files,
                         run_batch_cmd(par, work / "p1"), 1, cpus)
        log("--workers 2")
        w2 = record("--workers 2", a.parallel_files,
                    run_batch_cmd(par, work / "w2", "--workers", "2"), 2, max(1, cpus // 2))
        ray_row = None
        if not a.no_ray:
            log("--engine ray --workers 2")
            ray_row = record("--engine ray, 2 actors", a.parallel_files,
                             run_batch_cmd(par, work / "ray", "--engine", "ray",
                                           "--workers", "2"), 2, max(1, cpus // 2))
        big = None
        if a.big:
            log(f"{a.big} x {a.big} uint16 GeoTIFF")
            make_big(work / "big" / "big.tif", a.big)
            res = run_batch_cmd(work / "big", work / "bigout")
            big = {"side": a.big, "megapixels": a.big * a.big / 1e6,
                   "raw_mib": a.big * a.big * 2 / 2**20, **res}
            log(f"  {res['seconds']:.1f} s, peak {res['peak_rss_mib']:.0f} MiB")
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    doc: dict[str, Any] = {"cpu": cpu_model(), "cpus": cpus, "model": DEFAULT_MODEL,
                           "runs": runs, "big": big, "model_alone_tiles_per_s": alone,
                           "noise": noise.result(), "finished": time.strftime("%Y-%m-%d %H:%M")}
    share = rerun["seconds"] / first["seconds"]
    targets = [{"what": f"rerun of a finished {a.files}-file job", "goal": "< 5 % of the first run",
                "measured": f"{100 * share:.2f} % ({rerun['seconds']:.2f} s of "
                            f"{first['seconds']:.0f} s)", "ok": share < 0.05}]
    if big:
        targets.append({"what": f"peak RSS, one {a.big}x{a.big} uint16 GeoTIFF",
                        "goal": "< 2 GB", "measured": f"{big['peak_rss_mib']:.0f} MiB",
                        "ok": big["peak_rss_mib"] * 2**20 < 2e9})
    targets.append({"what": "--workers 2 vs 1 process (same files)", "goal": "report",
                    "measured": f"{w2['files_per_s'] / one_par['files_per_s']:.2f}x",
                    "ok": True})
    if ray_row:
        targets.append({"what": "Ray, 2 actors vs 1 process (same files)", "goal": "report",
                        "measured": f"{ray_row['files_per_s'] / one_par['files_per_s']:.2f}x",
                        "ok": True})
    doc["targets"] = targets
    write_results(doc, a.out, markdown)


if __name__ == "__main__":
    main()
