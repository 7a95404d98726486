"""Validation metrics of a generator next to two baselines, for the model card.

    python -m streamcolor.training.evaluate --model base --val ../shared/data/val \
        --train ../shared/data/train --json docs/model_card/metrics_base.json \
        --card docs/model_card/MODEL_CARD.md

Every validation image is converted to its luma, colourised at ``--render-factor`` and
compared with the original colour image (full resolution, RGB 0..255):

* fidelity: PSNR and SSIM (RGB), mean over images, and **ΔPSNR over gray** on the same
  images (what colour adds over returning the input);
* colourfulness in both forms (Hasler & Süsstrunk's signed opponent channels, and the
  absolute-value form of DDColor's ``calculate_cf``), the set-level ΔCF |mean CF(pred) -
  mean CF(truth)| (DDColor's), the **colourfulness ratio** mean CF(pred) / mean CF(truth),
  and the median and 90th percentile of the per-image |ΔCF| (how far each image's colour
  amount is off, which the set-level gap hides);
* distribution: the Fréchet distance of EfficientNet-Lite0 features (the FID formula, not
  Inception features) and KID (unbiased cubic-kernel MMD²) against the truth's, each with a
  95 % percentile bootstrap interval over images (:mod:`streamcolor.eval.colour_quality`;
  the FD interval shows the resampling spread, not an unbiased interval: FD is biased
  upwards at 197 images);
* colour accuracy: Zhang et al.'s AuC of the per-pixel ab error curve (0..150), plain and
  class-rebalanced (every truth ab bin counts equally);
* colour placement: per coarse group (skin, sky, water, vegetation, defined by the truth's
  pixel colours), the JS divergence between the prediction's and the truth's chroma-weighted
  hue histograms;
* the orange drift (:mod:`streamcolor.training.inflection`);
* each of the per-image measures also per validation subset (file name prefix);
* baselines: *gray* (zero chroma, i.e. the input itself) and *mean chroma* (the training set's
  mean Cb/Cr added to every pixel).

``--card`` rewrites the tables between ``<!-- metrics:NAME:start -->`` and
``<!-- metrics:NAME:end -->``.  The PSNR/colourfulness trade-off of gains, temperatures and
render factors is :mod:`streamcolor.training.pareto`'s.
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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from streamcolor.color import merge_luma_chroma_u8, rgb_to_luma_u8, rgb_to_ycbcr
from streamcolor.eval.colour_quality import (
    ColorAccuracyAuc,
    HueHistograms,
    colorfulness_stats_both,
    frechet_distance_ci,
    kid_ci,
)
from streamcolor.eval.metrics import colorfulness, colorfulness_abs, orange_share, psnr, ssim
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


def subset_of(path: Path) -> str:
    """The validation subset a file belongs to: its name's prefix before the first ``_``
    (``imagenet``, ``bsds500``, ``camvid`` in ``../shared/data/val``), else ``other``."""
    stem = path.name
    return stem.split("_", 1)[0] if "_" in stem else "other"


class OutputStats:
    """Everything measured on one output (the model, gray or mean chroma) over a set of
    images: per-image values kept as lists, the set-level accumulators streaming."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.cf_abs: list[float] = []
        self.cf_signed: list[float] = []
        self.truth_cf_abs: list[float] = []
        self.truth_cf_signed: list[float] = []
        self.auc = ColorAccuracyAuc()
        self.hues = HueHistograms()

    def update(self, out: np.ndarray, gt: np.ndarray, truth: dict[str, float],
               with_ssim: bool = True) -> None:
        cf, cf_abs = colorfulness(out), colorfulness_abs(out)
        row = {"psnr": psnr(out, gt), "colorfulness": cf, "colorfulness_abs": cf_abs,
               "abs_dcolorfulness": abs(cf - truth["colorfulness"]),
               "orange_drift": orange_share(out) - truth["orange"]}
        if with_ssim:
            row["ssim"] = ssim(out, gt)
        self.rows.append(row)
        self.cf_abs.append(cf_abs)
        self.cf_signed.append(cf)
        self.truth_cf_abs.append(truth["colorfulness_abs"])
        self.truth_cf_signed.append(truth["colorfulness"])
        self.auc.update(out, gt)
        self.hues.update(out, gt)

    def summary(self) -> dict[str, Any]:
        keys = self.rows[0].keys()
        res: dict[str, Any] = {k: float(np.mean([r[k] for r in self.rows])) for k in keys}
        stats = colorfulness_stats_both(np.array(self.cf_abs), np.array(self.truth_cf_abs),
                                        np.array(self.cf_signed),
                                        np.array(self.truth_cf_signed))
        res["cf_stats"] = {form: asdict(v) for form, v in stats.items()}
        res["colorfulness_ratio_abs"] = stats["abs"].ratio
        res["delta_cf_abs"] = stats["abs"].delta_cf
        res["median_abs_dcf_abs"] = stats["abs"].median_abs_diff
        res["p90_abs_dcf_abs"] = stats["abs"].p90_abs_diff
        auc = self.auc.result()
        res["auc"], res["auc_rebalanced"] = auc.auc, auc.auc_rebalanced
        hues = self.hues.result()
        res["hue_js"] = {g: h.js for g, h in hues.items()}
        res["hue_pixels"] = {g: h.pixels for g, h in hues.items()}
        return res


def evaluate(colorizer: Colorizer, val: str | Path, chroma_mean: np.ndarray,
             limit: int | None = None, n_boot: int = 200,
             seed: int = 0) -> dict[str, Any]:
    """Every measure of the module docstring, for the model and the two baselines, over the
    whole set (``result[output]``) and per subset (``result["subsets"][name][output]``)."""
    files = list_images(val)[:limit]
    from streamcolor.training.inflection import FeatureExtractor

    extractor = FeatureExtractor()
    outputs = ("model", "gray", "mean_chroma")
    whole = {k: OutputStats() for k in outputs}
    per_subset: dict[str, dict[str, OutputStats]] = {}
    feats: dict[str, list[np.ndarray]] = {k: [] for k in (*outputs, "truth")}
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
        truth = {"colorfulness": colorfulness(gt), "colorfulness_abs": colorfulness_abs(gt),
                 "orange": orange_share(gt)}
        gt_cf.append(truth["colorfulness"])
        gt_cf_abs.append(truth["colorfulness_abs"])
        feats["truth"].append(extractor(gt))
        sub = per_subset.setdefault(subset_of(p), {k: OutputStats() for k in outputs})
        for k, out in outs.items():
            whole[k].update(out, gt, truth)
            sub[k].update(out, gt, truth, with_ssim=False)
            feats[k].append(extractor(out))
    result: dict[str, Any] = {k: v.summary() for k, v in whole.items()}
    truth_feats = np.stack(feats["truth"])
    for k in outputs:
        f = np.stack(feats[k])
        fd, lo, hi = frechet_distance_ci(f, truth_feats, n_boot=n_boot,
                                         rng=np.random.default_rng(seed))
        result[k]["feature_distance"] = fd
        result[k]["feature_distance_ci"] = [lo, hi]
        kid_point, klo, khi = kid_ci(f, truth_feats, n_boot=n_boot,
                                     rng=np.random.default_rng(seed))
        result[k]["kid"] = kid_point
        result[k]["kid_ci"] = [klo, khi]
    result["ground_truth"] = {"colorfulness": float(np.mean(gt_cf)),
                              "colorfulness_abs": float(np.mean(gt_cf_abs))}
    for k in outputs:  # set-level: the gain over returning the input
        result[k]["dpsnr_over_gray"] = result[k]["psnr"] - result["gray"]["psnr"]
    result["subsets"] = {}
    for name, stats in sorted(per_subset.items()):
        sums = {k: v.summary() for k, v in stats.items()}
        for k in outputs:
            sums[k]["dpsnr_over_gray"] = sums[k]["psnr"] - sums["gray"]["psnr"]
        sums["images"] = len(stats["model"].rows)
        result["subsets"][name] = sums
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


def markdown_table(name: str, res: dict[str, Any]) -> str:
    """The tables of one model beside the gray and mean-chroma baselines."""
    return comparison_table({name: res}, res["meta"])


def _ci(v: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    return f"[{v[0] * scale:{fmt}}, {v[1] * scale:{fmt}}]"


def comparison_table(results: dict[str, dict], meta: dict) -> str:
    """Several models on one validation set, with the gray (and mean-chroma) baselines:

    1. fidelity and colour: PSNR and its gain over gray, SSIM, colourfulness in both forms,
       the absolute form's ratio to the truth, the set-level ΔCF and the median and 90th
       percentile of per-image |ΔCF| (absolute form), feature distance and KID with 95 %
       bootstrap intervals, Zhang's AuC plain and rebalanced, the orange drift;
    2. hue: JS divergence of the chroma-weighted hue histograms per coarse group;
    3. per validation subset: PSNR gain over gray, colourfulness ratio, median |ΔCF|, AuC.
    """
    first = next(iter(results.values()))
    gt = first["ground_truth"]
    rows = [(f"**{name}**", res["model"]) for name, res in results.items()]
    rows.append(("gray (input)", first["gray"]))
    if "mean_chroma" in first:
        rows.append(("mean chroma", first["mean_chroma"]))
    lines = [
        f"Validation: `{meta['val']}`, {first['images']['count']} images, render factor "
        f"{meta['render_factor']}, full resolution, RGB 0..255. Ground truth colourfulness "
        f"{gt['colorfulness_abs']:.1f} (absolute form, DDColor's `calculate_cf`) / "
        f"{gt['colorfulness']:.1f} (signed, Hasler & Süsstrunk).",
        "",
        "| output | PSNR (dB) ↑ | ΔPSNR over gray | SSIM ↑ | CF abs | ratio to truth | "
        r"CF signed | ΔCF set ↓ | \|ΔCF\| median ↓ | \|ΔCF\| p90 ↓ | feature distance ↓ "
        "[resampling spread¹] | KID ×10³ ↓ [95 % CI] | AuC ↑ | AuC rebal. ↑ | orange drift |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['psnr']:.2f} | {r['dpsnr_over_gray']:+.2f} | {r['ssim']:.4f} | "
            f"{r['colorfulness_abs']:.1f} | {r['colorfulness_ratio_abs']:.2f} | "
            f"{r['colorfulness']:.1f} | {r['delta_cf_abs']:.1f} | "
            f"{r['median_abs_dcf_abs']:.1f} | {r['p90_abs_dcf_abs']:.1f} | "
            f"{r['feature_distance']:.1f} {_ci(r['feature_distance_ci'])} | "
            f"{1e3 * r['kid']:.1f} {_ci(r['kid_ci'], 1e3)} | {100 * r['auc']:.1f} % | "
            f"{100 * r['auc_rebalanced']:.1f} % | {100 * r['orange_drift']:+.2f} % |")
    groups = list(first["model"]["hue_js"])
    pixels = first["model"]["hue_pixels"]
    lines += ["", "¹ The feature distance (the FID formula on EfficientNet-Lite0 features) is "
              "biased upward at this N, and more in bootstrap resamples (about 63 % distinct "
              "images), so its percentile interval lies above the estimate: it shows the "
              "spread, not a confidence interval. KID is unbiased (each output against the "
              "other images' truths, never its own) and its interval is a 95 % CI."]
    lines += ["", "Hue: Jensen-Shannon divergence (base 2, 0 = the truth's hue distribution) "
              "of chroma-weighted Lab hue histograms (36 bins) on pixel groups defined by "
              "the truth's colour (no segmentation model): " +
              ", ".join(f"{g} {pixels[g] / 1e6:.2f} Mpx" for g in groups) + ".", "",
              "| output | " + " | ".join(groups) + " |",
              "|---|" + "---|" * len(groups)]
    for label, r in rows[:-1] if "mean_chroma" in first else rows:
        lines.append(f"| {label} | " + " | ".join(f"{r['hue_js'][g]:.3f}" for g in groups)
                     + " |")
    subsets = first.get("subsets", {})
    if subsets:
        names = list(subsets)
        lines += ["", "Per validation subset (" + ", ".join(
            f"{n} {subsets[n]['images']}" for n in names) + " images): ΔPSNR over gray / "
            "colourfulness ratio / median per-image |ΔCF| / AuC.", "",
            "| output | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for name, res in results.items():
            cells = []
            for n in names:
                r = res["subsets"][n]["model"]
                cells.append(f"{r['dpsnr_over_gray']:+.2f} / {r['colorfulness_ratio_abs']:.2f} "
                             f"/ {r['median_abs_dcf_abs']:.1f} / {100 * r['auc']:.1f} %")
            lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
        cells = [f"{subsets[n]['gray']['psnr']:.2f} dB / 0 / "
                 f"{subsets[n]['gray']['median_abs_dcf_abs']:.1f} / "
                 f"{100 * subsets[n]['gray']['auc']:.1f} %" for n in names]
        lines.append("| gray (PSNR) | " + " | ".join(cells) + " |")
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
