"""Validation metrics of a generator next to two baselines, for the model card.

    python -m streamcolor.training.evaluate --model base --val ../shared/data/val \
        --train ../shared/data/train --json docs/model_card/metrics_base.json \
        --card docs/model_card/MODEL_CARD.md

Every validation image is converted to its luma, colourised at ``--render-factor`` and
compared with the original colour image (full resolution, RGB 0..255):

* PSNR and SSIM (RGB), mean over images;
* colourfulness (Hasler & Süsstrunk) of outputs and ground truth, and the mean per-image
  |Δcolourfulness|;
* feature distance: Fréchet distance between EfficientNet-Lite0 feature distributions of the
  outputs and of the originals, and the orange drift (:mod:`streamcolor.training.inflection`);
* baselines: *gray* (zero chroma, i.e. the input itself) and *mean chroma* (the training set's
  mean Cb/Cr added to every pixel).

``--card`` rewrites the table between ``<!-- metrics:start -->`` and ``<!-- metrics:end -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from streamcolor.color import merge_luma_chroma_u8, rgb_to_luma_u8, rgb_to_ycbcr
from streamcolor.eval.metrics import (
    colorfulness,
    colorfulness_abs,
    feature_stats,
    frechet_distance,
    orange_share,
    psnr,
    ssim,
)
from streamcolor.model.colorizer import Colorizer
from streamcolor.training.data import list_images, load_rgb

log = logging.getLogger(__name__)


def mean_chroma(folder: str | Path, limit: int = 2000, size: int = 64) -> np.ndarray:
    """Mean (Cb, Cr) offset over (up to ``limit``) training images."""
    import cv2

    acc = []
    for p in list_images(folder)[:limit]:
        rgb = cv2.resize(load_rgb(p), (size, size), interpolation=cv2.INTER_AREA)
        acc.append(rgb_to_ycbcr(rgb.astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2).mean(0))
    return np.mean(acc, axis=0).astype(np.float32)


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def evaluate(colorizer: Colorizer, val: str | Path, chroma_mean: np.ndarray,
             limit: int | None = None) -> dict[str, dict[str, float]]:
    files = list_images(val)[:limit]
    from streamcolor.training.inflection import FeatureExtractor

    extractor = FeatureExtractor()
    per: dict[str, list[dict[str, float]]] = {"model": [], "gray": [], "mean_chroma": []}
    feats: dict[str, list[np.ndarray]] = {k: [] for k in (*per, "truth")}
    gt_cf: list[float] = []
    gt_cf_abs: list[float] = []
    for p in files:
        gt = load_rgb(p)
        y = rgb_to_luma_u8(gt)
        outs = {
            "model": colorizer.colorize(y),
            "gray": np.repeat(y[..., None], 3, axis=2),
            "mean_chroma": merge_luma_chroma_u8(y, np.broadcast_to(chroma_mean, (*y.shape, 2))),
        }
        cf_gt = colorfulness(gt)
        gt_cf.append(cf_gt)
        gt_cf_abs.append(colorfulness_abs(gt))
        orange_gt = orange_share(gt)
        feats["truth"].append(extractor(gt))
        for k, out in outs.items():
            cf = colorfulness(out)
            per[k].append({"psnr": psnr(out, gt), "ssim": ssim(out, gt), "colorfulness": cf,
                           "colorfulness_abs": colorfulness_abs(out),
                           "abs_dcolorfulness": abs(cf - cf_gt),
                           "orange_drift": orange_share(out) - orange_gt})
            feats[k].append(extractor(out))
    result = {k: _summary(v) for k, v in per.items()}
    truth_stats = feature_stats(np.stack(feats["truth"]))
    for k in per:
        result[k]["feature_distance"] = frechet_distance(*feature_stats(np.stack(feats[k])),
                                                         *truth_stats)
    result["ground_truth"] = {"colorfulness": float(np.mean(gt_cf)),
                              "colorfulness_abs": float(np.mean(gt_cf_abs))}
    for k in per:  # set-level: the gain over returning the input, the share of the colour
        result[k]["dpsnr_over_gray"] = result[k]["psnr"] - result["gray"]["psnr"]
        result[k]["colorfulness_ratio_abs"] = (result[k]["colorfulness_abs"]
                                               / result["ground_truth"]["colorfulness_abs"])
    result["images"] = {"count": len(files)}
    return result


def before_after_grid(colorizers: Colorizer | list[Colorizer], files: list[Path], path: Path,
                      height: int = 192, with_truth: bool = True) -> None:
    """Rows of gray | each model's colourisation (| ground truth) at a fixed height (JPEG)."""
    import cv2

    rows = []
    for f in files:
        rgb = cv2.resize(load_rgb(f), (round(1.5 * height), height), interpolation=cv2.INTER_AREA)
        y = rgb_to_luma_u8(rgb)
        models = colorizers if isinstance(colorizers, list) else [colorizers]
        cells = [np.repeat(y[..., None], 3, 2), *(c.colorize(y) for c in models)]
        if with_truth:
            cells.append(rgb)
        rows.append(np.concatenate(cells, axis=1))
    grid = np.concatenate(rows, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown_table(name: str, res: dict[str, dict[str, float]]) -> str:
    gt = res["ground_truth"]["colorfulness"]
    lines = [
        f"Validation: `{res['meta']['val']}`, {res['images']['count']} images, "
        f"render factor {res['meta']['render_factor']}, full resolution, RGB 0..255. "
        f"Ground-truth colourfulness {gt:.1f}.",
        "",
        "| output | PSNR (dB) ↑ | SSIM ↑ | colourfulness | \\|Δcolourfulness\\| ↓ | "
        "feature distance ↓ | orange drift |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, label in (("model", f"**{name}**"), ("gray", "gray (input)"),
                     ("mean_chroma", "mean chroma")):
        r = res[k]
        lines.append(f"| {label} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['colorfulness']:.1f} | "
                     f"{r['abs_dcolorfulness']:.1f} | {r['feature_distance']:.3f} | "
                     f"{100 * r['orange_drift']:+.2f} % |")
    lines.append("")
    lines.append("_Written by `python -m streamcolor.training.evaluate` at commit "
                 f"{res['meta']['commit']} on {res['meta']['date']} "
                 f"({res['meta']['seconds']:.0f} s)._")
    return "\n".join(lines)


def comparison_table(results: dict[str, dict], meta: dict) -> str:
    """Several models on one validation set, with the gray baseline: PSNR and its gain over
    gray, colourfulness in both forms and the absolute form's ratio to the truth."""
    first = next(iter(results.values()))
    gt = first["ground_truth"]
    lines = [
        f"Validation: `{meta['val']}`, {first['images']['count']} images, render factor "
        f"{meta['render_factor']}, full resolution, RGB 0..255. Ground truth colourfulness "
        f"{gt['colorfulness_abs']:.1f} (absolute form, DDColor's `calculate_cf`) / "
        f"{gt['colorfulness']:.1f} (signed, Hasler & Süsstrunk).",
        "",
        "| output | PSNR (dB) ↑ | ΔPSNR over gray | SSIM ↑ | colourfulness (abs) | ratio to "
        r"truth | colourfulness (signed) | \|ΔCF\| per image ↓ | feature distance ↓ | "
        "orange drift |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(f"**{name}**", res["model"]) for name, res in results.items()]
    rows.append(("gray (input)", first["gray"]))
    for label, r in rows:
        lines.append(f"| {label} | {r['psnr']:.2f} | {r['dpsnr_over_gray']:+.2f} | "
                     f"{r['ssim']:.4f} | {r['colorfulness_abs']:.1f} | "
                     f"{r['colorfulness_ratio_abs']:.2f} | {r['colorfulness']:.1f} | "
                     f"{r['abs_dcolorfulness']:.1f} | {r['feature_distance']:.3f} | "
                     f"{100 * r['orange_drift']:+.2f} % |")
    lines.append("")
    lines.append(f"_Written by `python -m streamcolor.training.evaluate` at commit "
                 f"{meta['commit']} on {meta['date']} ({meta['seconds']:.0f} s)._")
    return "\n".join(lines)


def update_card(card: Path, name: str, table: str) -> None:
    start, end = f"<!-- metrics:{name}:start -->", f"<!-- metrics:{name}:end -->"
    text = card.read_text() if card.exists() else ""
    block = f"{start}\n{table}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    card.write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model name or .safetensors path")
    ap.add_argument("--val", required=True)
    ap.add_argument("--train", required=True, help="for the mean-chroma baseline")
    ap.add_argument("--render-factor", type=int, default=None)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--card", type=Path)
    ap.add_argument("--grid", type=Path, help="JPEG of val photos: gray | model | truth")
    ap.add_argument("--old-grid", type=Path, help="JPEG of --old photos: gray | model")
    ap.add_argument("--old", type=Path, help="folder of historical photos for --old-grid")
    ap.add_argument("--compare", default=None,
                    help="comma list of models measured beside --model on the same images; "
                    "the card gets one table of all of them under --card-key")
    ap.add_argument("--card-key", default=None, help="the card section's name (--model's)")
    ap.add_argument("--grid-models", default=None,
                    help="comma list of models side by side in the grids (default: --model)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    colorizer = Colorizer(a.model, render_factor=a.render_factor, precision=a.precision,
                          runtime="torch")
    res = evaluate(colorizer, a.val, mean_chroma(a.train), a.limit)
    res["meta"] = {"model": a.model, "val": a.val, "render_factor": colorizer.render_factor,
                   "precision": a.precision, "commit": _git_commit(),
                   "date": dt.date.today().isoformat(), "machine": platform.machine(),
                   "seconds": time.perf_counter() - t0}
    table = markdown_table(colorizer.name, res)
    if a.compare:
        results = {colorizer.name: res}
        chroma = mean_chroma(a.train)
        for m in a.compare.split(","):
            other = Colorizer(m, render_factor=a.render_factor, precision=a.precision,
                              runtime="torch")
            results[other.name] = evaluate(other, a.val, chroma, a.limit)
        res["compared"] = {k: v for k, v in results.items() if k != colorizer.name}
        res["meta"]["seconds"] = time.perf_counter() - t0
        table = comparison_table(results, res["meta"])
    print(table)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    if a.card:
        update_card(a.card, a.card_key or colorizer.name, table)
    grid_models = [Colorizer(m, render_factor=a.render_factor, precision=a.precision,
                             runtime="torch")
                   for m in a.grid_models.split(",")] if a.grid_models else [colorizer]
    if a.grid:
        before_after_grid(grid_models, list_images(a.val)[::17][:12], a.grid)
    if a.old_grid and a.old:
        old = [p for p in list_images(a.old) if p.name.startswith(("ddcolor_", "msbop_old_w"))]
        before_after_grid(grid_models, old[::3][:6], a.old_grid, with_truth=False)


if __name__ == "__main__":
    main()
