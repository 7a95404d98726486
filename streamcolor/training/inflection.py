"""Find the GAN phase's inflection point by measurement, and export the chosen checkpoint.

Every generator snapshot of a GAN run (``ckpt_*.pt``) and the generator it started from are
evaluated on validation photos (luma in, colour out at a fixed render factor):

* PSNR (RGB) against the colour original;
* colourfulness (Hasler & Süsstrunk) and its mean per-image gap to the original's;
* **feature distance**: Fréchet distance (the FID formula) between the distributions of
  ImageNet EfficientNet-Lite0 features (last block, 320-d, global average pooled) of the
  outputs and of the originals.  Not Inception features, so not comparable with FID values;
* **orange drift**: the share of pixels in a saturated orange band (hue 10-40 degrees,
  saturation >= 0.45) in the output minus that share in the original, averaged: NoGAN's
  known failure mode (orange skin) shows up as a rising drift.

The **selection rule** (:func:`select`): among the snapshots whose PSNR is at most
``psnr_tolerance`` dB (default 0.5) below the starting generator's and whose orange drift is
at most ``drift_tolerance`` (default 0.005: half a percent of the pixels more saturated
orange than in the originals), take the lowest feature distance (ties: the earlier snapshot);
if none qualifies, keep the starting generator.  The drift bound is against the ground truth,
not against the starting generator: a stage-1 generator is undersaturated (less orange than
the truth), and what must not happen is *more* orange than the truth.  Results go to
``RUN/inflection.{csv,md,png}``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from streamcolor.color import merge_luma_chroma_u8, rgb_to_luma_u8
from streamcolor.eval.metrics import (
    colorfulness,
    colorfulness_abs,
    feature_stats,
    frechet_distance,
    orange_share,
    psnr,
)
from streamcolor.io.atomic import write_bytes_atomic
from streamcolor.model.colorizer import Colorizer
from streamcolor.model.networks.encoder import build_efficientnet_lite
from streamcolor.training.data import list_images, load_rgb
from streamcolor.training.gan import load_generator_from
from streamcolor.training.pareto import REFERENCE_GAINS

log = logging.getLogger(__name__)


@dataclass
class CheckpointMetrics:
    name: str  # "start" or the snapshot file name
    images: int  # generator images seen in the GAN phase at this snapshot
    psnr: float
    colorfulness: float
    colorfulness_gap: float
    feature_distance: float
    orange_drift: float
    cf_ratio: float = float("nan")  # mean CF(out) / mean CF(truth), absolute form
    margin: float = float("nan")  # PSNR above the reference model's gain curve at cf_ratio


class FeatureExtractor:
    """Pooled ImageNet EfficientNet-Lite0 features (last block, 320-d) of uint8 RGB images."""

    def __init__(self, pretrained: bool = True, size: int = 224) -> None:
        net = build_efficientnet_lite("efficientnet-lite0", pretrained).eval()
        self.net = net
        self.size = size

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        s = self.size / min(h, w)
        img = cv2.resize(rgb, (max(32, round(w * s)), max(32, round(h * s))),
                         interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        x = (x - 127.0) / 128.0
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(x)))
        for b in n._blocks:
            x = b(x)
        return x.mean(dim=(2, 3))[0].numpy().astype(np.float64)


@dataclass
class ValSet:
    rgb: list[np.ndarray]
    luma: list[np.ndarray]
    orange: list[float]
    colorfulness: list[float]
    stats: tuple[np.ndarray, np.ndarray]
    colorfulness_abs: list[float] = field(default_factory=list)


def load_val(folder: str | Path, extractor: FeatureExtractor, limit: int | None = None,
             max_short_side: int = 256) -> ValSet:
    files = list_images(folder)[:limit]
    rgb = [load_rgb(p, max_short_side) for p in files]
    feats = np.stack([extractor(x) for x in rgb])
    return ValSet(rgb, [rgb_to_luma_u8(x) for x in rgb], [orange_share(x) for x in rgb],
                  [colorfulness(x) for x in rgb], feature_stats(feats),
                  [colorfulness_abs(x) for x in rgb])


def evaluate_generator(model: torch.nn.Module, val: ValSet, extractor: FeatureExtractor,
                       render_factor: int = 16, name: str = "", images: int = 0,
                       reference: Sequence[tuple[float, float]] = (),
                       ) -> CheckpointMetrics:
    """A generator's metrics on ``val``; ``reference`` is a (colourfulness ratio, PSNR)
    curve (:func:`streamcolor.training.pareto.curve`) to measure its margin over."""
    col = Colorizer(model, render_factor=render_factor, precision="fp32", batch_size=1,
                    runtime="torch")  # the reference numbers of training
    ps, cf, gap, drift, feats, cf_abs = [], [], [], [], [], []
    for rgb, y, org, cfg in zip(val.rgb, val.luma, val.orange, val.colorfulness, strict=True):
        chroma = col.predict([y])[0]
        full = cv2.resize(chroma, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = merge_luma_chroma_u8(y, full)
        ps.append(psnr(out, rgb))
        c = colorfulness(out)
        cf.append(c)
        gap.append(abs(c - cfg))
        drift.append(orange_share(out) - org)
        feats.append(extractor(out))
        cf_abs.append(colorfulness_abs(out))
    mu, cov = feature_stats(np.stack(feats))
    fd = frechet_distance(mu, cov, *val.stats)
    ratio = float(np.mean(cf_abs) / np.mean(val.colorfulness_abs))
    p = float(np.mean(ps))
    return CheckpointMetrics(name, images, p, float(np.mean(cf)), float(np.mean(gap)), fd,
                             float(np.mean(drift)), ratio, _margin(p, ratio, reference))


def _margin(psnr_db: float, ratio: float, reference: Sequence[tuple[float, float]]) -> float:
    from streamcolor.training.pareto import margin_at

    m = margin_at(psnr_db, ratio, reference)
    return float("nan") if m is None else m


def reference_curve(model: str, val: ValSet, render_factor: int = 16,
                    gains: Sequence[float] = REFERENCE_GAINS) -> list[tuple[float, float]]:
    """(colourfulness ratio, PSNR) of ``model`` times each chroma gain on ``val``: the free
    knob a trained change has to beat (:mod:`streamcolor.training.pareto`)."""
    from streamcolor.training.pareto import ValImages, measure, predict_full

    images = ValImages([""] * len(val.rgb), val.rgb, val.luma,
                       np.array(val.colorfulness_abs), np.array(val.colorfulness),
                       np.array(val.orange), 0.0)
    col = Colorizer(model, render_factor=render_factor, precision="fp32", runtime="torch",
                    saturation=1.0)
    chroma = predict_full(col, images)
    pts = [measure(chroma, images, g) for g in gains]
    return sorted((p["cf_ratio"], p["psnr"]) for p in pts)


def select(rows: Sequence[CheckpointMetrics], start: CheckpointMetrics,
           psnr_tolerance: float = 0.5, drift_tolerance: float = 0.005,
           rule: str = "feature", min_ratio: float = 0.85) -> CheckpointMetrics:
    """The inflection point by the rule in the module docstring: ``feature`` (the lowest
    feature distance within the PSNR and drift tolerances), ``margin`` (the largest margin
    over the reference gain curve within the drift tolerance) or ``target`` (the highest PSNR
    among those at least ``min_ratio`` as colourful as the truth, absolute form, within the
    drift tolerance).  The start competes in the last two; ties go to the earlier one."""
    # max/min give the first of equal ones: ties go to the earlier snapshot
    if rule == "target":
        ok = [r for r in (start, *rows) if r.orange_drift <= drift_tolerance
              and r.cf_ratio >= min_ratio]
        return max(ok, key=lambda r: r.psnr, default=start)
    if rule == "margin":
        ok = [r for r in (start, *rows) if r.orange_drift <= drift_tolerance
              and math.isfinite(r.margin)]
        return max(ok, key=lambda r: r.margin, default=start)
    if rule != "feature":
        raise ValueError(f"unknown selection rule {rule!r} (feature, margin or target)")
    ok = [r for r in rows if r.psnr >= start.psnr - psnr_tolerance
          and r.orange_drift <= drift_tolerance and math.isfinite(r.feature_distance)]
    return min(ok, key=lambda r: r.feature_distance, default=start)


def evaluate_run(run: str | Path, val_dir: str | Path, start: str | None = None,
                 limit: int | None = None, render_factor: int = 16,
                 pretrained_features: bool = True, reference: str | None = None,
                 temperature: float | None = None, class_weight: float | None = None,
                 ) -> list[CheckpointMetrics]:
    """Metrics of the starting generator and every snapshot of a GAN run (cached per
    snapshot in ``RUN/inflection.csv``, so a rerun only evaluates new snapshots); with
    ``reference`` (a model), each one's margin over that model's gain curve too.  A hybrid
    generator is decoded with ``temperature`` and ``class_weight`` (default: its own); each
    set of settings has its own cache (:func:`cache_path`)."""
    run = Path(run)
    config = json.loads((run / "config.json").read_text())
    start = start or config["generator"]
    settings = {"temperature": temperature, "class_weight": class_weight,
                "reference": reference, "render_factor": render_factor}
    table = cache_path(run, settings)
    cache = {r.name: r for r in read_csv(table)}
    extractor = FeatureExtractor(pretrained_features)
    val = load_val(val_dir, extractor, limit)
    ref: list[tuple[float, float]] = []
    if reference:
        ref = reference_curve(reference, val, render_factor)
        write_bytes_atomic(run / "reference.json", json.dumps(
            {"model": reference, "render_factor": render_factor, "gains": REFERENCE_GAINS,
             "curve": ref}, indent=1).encode())
    rows = []
    todo = [("start", Path(start))] + [(p.name, p) for p in sorted(run.glob("ckpt_*.pt"))]
    for name, path in todo:
        if name in cache:
            rows.append(cache[name])
            continue
        model = load_generator_from(path)
        if model.classes is not None:
            model.set_decoding(temperature, class_weight)
        images = int(name[5:13]) if name.startswith("ckpt_") else 0
        row = evaluate_generator(model, val, extractor, render_factor, name, images, ref)
        log.info("%s", row)
        rows.append(row)
        write_csv(table, rows)
    return rows


def cache_path(run: Path, settings: dict[str, Any]) -> Path:
    """``RUN/inflection.csv`` for the plain settings (the model's own decoding, no reference,
    render factor 16), else ``RUN/inflection-HASH.csv`` (its settings beside it as
    ``.json``), so measuring one run several ways never mixes their numbers."""
    if all(v is None for k, v in settings.items() if k != "render_factor") and \
            settings.get("render_factor") == 16:
        return run / "inflection.csv"
    text = json.dumps(settings, sort_keys=True)
    name = f"inflection-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    write_bytes_atomic(run / f"{name}.json", text.encode())
    return run / f"{name}.csv"


def write_csv(path: Path, rows: Sequence[CheckpointMetrics]) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(asdict(rows[0])))
    w.writeheader()
    for r in rows:
        w.writerow(asdict(r))
    write_bytes_atomic(path, buf.getvalue().encode())


def read_csv(path: Path) -> list[CheckpointMetrics]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [CheckpointMetrics(r["name"], int(r["images"]),
                                  *(float(r[k]) for k in ("psnr", "colorfulness",
                                                          "colorfulness_gap",
                                                          "feature_distance",
                                                          "orange_drift")),
                                  *(float(r.get(k) or "nan") for k in ("cf_ratio", "margin")))
                for r in csv.DictReader(f)]


def markdown(rows: Sequence[CheckpointMetrics], chosen: CheckpointMetrics) -> str:
    lines = ["| checkpoint | GAN images | PSNR | colourfulness | \\|Δcolourfulness\\| | "
             "feature distance | orange drift | CF ratio (abs) | above the reference curve |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " **← selected**" if r.name == chosen.name else ""
        ratio = f"{r.cf_ratio:.2f}" if math.isfinite(r.cf_ratio) else ""
        margin = f"{r.margin:+.2f} dB" if math.isfinite(r.margin) else ""
        lines.append(f"| {r.name}{mark} | {r.images} | {r.psnr:.2f} | {r.colorfulness:.1f} | "
                     f"{r.colorfulness_gap:.1f} | {r.feature_distance:.3f} | "
                     f"{100 * r.orange_drift:+.2f} % | {ratio} | {margin} |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[CheckpointMetrics], chosen: CheckpointMetrics, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.images for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True)
    for ax, key, label in zip(axes.flat, ("psnr", "colorfulness_gap", "feature_distance",
                                          "orange_drift", "cf_ratio", "margin"),
                              ("PSNR (dB)", "|Δcolourfulness|", "feature distance (FD)",
                               "orange drift", "colourfulness ratio (abs)",
                               "dB above the reference gain curve"), strict=True):
        ax.plot(x, [getattr(r, key) for r in rows], marker=".")
        ax.axvline(chosen.images, color="tab:red", lw=1, ls="--")
        ax.set_ylabel(label)
    for ax in axes[1]:
        ax.set_xlabel("generator images in the GAN phase")
    fig.suptitle(f"inflection point: {chosen.name}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def report(run: Path, rows: Sequence[CheckpointMetrics], chosen: CheckpointMetrics,
           with_plot: bool = True) -> dict[str, Any]:
    write_bytes_atomic(run / "inflection.md", markdown(rows, chosen).encode())
    if with_plot:
        plot(rows, chosen, run / "inflection.png")
    return {"selected": asdict(chosen), "rows": [asdict(r) for r in rows]}
