"""The PSNR / colourfulness trade-off of a model's knobs, and whether a change beats a free one.

More chroma buys colourfulness and costs PSNR wherever it is misplaced.  A chroma gain after the
model (``--saturation``) costs no training, so a trained change counts only where it sits
**above** the curve the reference model (``stable``) traces as its gain goes from dull to
vivid: at the same colourfulness ratio, more PSNR.

    python -m streamcolor.training.pareto --val ../shared/data/val --models stable,base,artistic \
        --gains 0.5,0.75,1,1.25,1.5,1.75,2,2.5 --render-factors 12,16,24 \
        --temperatures 0.2,0.3,0.38,0.5 --class-weights 0.5,1 \
        --json docs/model_card/pareto.json --plot docs/model_card/pareto.png

For each model, render factor and (hybrid models only) annealed-mean temperature and class
weight, the chroma is predicted once per validation image (torch, fp32, as the evaluation
does) and every gain is applied to it; each point is the set's mean PSNR, its gain over
returning the gray input, the colourfulness ratio mean CF(pred) / mean CF(truth) in the
absolute form (and the signed one), the median per-image |ΔCF| and the orange drift.
:func:`margin` is a point's PSNR minus the reference curve's at the same colourfulness ratio
(linear between the curve's points; None outside its range).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamcolor.color import merge_luma_chroma_u8, rgb_to_luma_u8
from streamcolor.eval.colour_quality import percentile_bounds
from streamcolor.eval.metrics import colorfulness, colorfulness_abs, orange_share, psnr
from streamcolor.io.atomic import write_bytes_atomic
from streamcolor.training.data import list_images, load_rgb

log = logging.getLogger(__name__)

# The reference model's gains (whatever --gains says): its curve must reach the colourfulness
# of every candidate, so it spans dull to over-coloured.
REFERENCE_GAINS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)


@dataclass(frozen=True)
class Point:
    model: str
    render_factor: int
    temperature: float | None
    class_weight: float | None
    gain: float
    psnr: float
    dpsnr_over_gray: float
    cf_ratio: float  # absolute form
    cf_ratio_signed: float
    median_abs_dcf: float  # absolute form, per image
    orange_drift: float
    # per image, for bootstrap intervals (not written to the JSON)
    image_psnr: tuple[float, ...] = field(default=(), repr=False, compare=False)
    image_cf: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @property
    def series(self) -> str:
        """The curve this point lies on (everything but the gain)."""
        s = f"{self.model} rf{self.render_factor}"
        if self.temperature is not None:
            s += f" T{self.temperature:g} w{self.class_weight:g}"
        return s


@dataclass
class ValImages:
    """Validation photos with what every point needs of the truth, computed once."""

    names: list[str]
    rgb: list[np.ndarray]
    luma: list[np.ndarray]
    cf_abs: np.ndarray
    cf_signed: np.ndarray
    orange: np.ndarray
    gray_psnr: float

    @classmethod
    def load(cls, folder: str | Path, limit: int | None = None) -> ValImages:
        files = list_images(folder)[:limit]
        rgb = [load_rgb(p) for p in files]
        luma = [rgb_to_luma_u8(x) for x in rgb]
        gray = float(np.mean([psnr(np.repeat(y[..., None], 3, 2), x)
                              for y, x in zip(luma, rgb, strict=True)]))
        return cls([p.name for p in files], rgb, luma,
                   np.array([colorfulness_abs(x) for x in rgb]),
                   np.array([colorfulness(x) for x in rgb]),
                   np.array([orange_share(x) for x in rgb]), gray)


def predict_full(colorizer: Any, val: ValImages) -> list[np.ndarray]:
    """Each image's chroma (gain 1), upsampled to its full size."""
    out = []
    for y in val.luma:
        c = colorizer.predict([y])[0]
        out.append(cv2.resize(c, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_LINEAR))
    return out


def measure(chroma: Sequence[np.ndarray], val: ValImages, gain: float) -> dict[str, float]:
    ps, cfa, cfs, orange = [], [], [], []
    for c, y, gt in zip(chroma, val.luma, val.rgb, strict=True):
        out = merge_luma_chroma_u8(y, c * np.float32(gain))
        ps.append(psnr(out, gt))
        cfa.append(colorfulness_abs(out))
        cfs.append(colorfulness(out))
        orange.append(orange_share(out))
    p = float(np.mean(ps))
    return {"psnr": p, "dpsnr_over_gray": p - val.gray_psnr,
            "cf_ratio": float(np.mean(cfa) / np.mean(val.cf_abs)),
            "cf_ratio_signed": float(np.mean(cfs) / np.mean(val.cf_signed)),
            "median_abs_dcf": float(np.median(np.abs(np.array(cfa) - val.cf_abs))),
            "orange_drift": float(np.mean(np.array(orange) - val.orange)),
            "image_psnr": tuple(ps), "image_cf": tuple(cfa)}


def sweep(model: str, val: ValImages, gains: Sequence[float], render_factors: Sequence[int],
          temperatures: Sequence[float] = (), class_weights: Sequence[float] = (),
          ) -> list[Point]:
    """Every (render factor[, temperature, class weight], gain) point of one model; the
    temperature and class-weight axes only for a model with a hybrid head."""
    from streamcolor.model.colorizer import Colorizer

    probe = Colorizer(model, precision="fp32", runtime="torch")
    name = probe.name
    decodings: list[tuple[float | None, float | None]] = [(None, None)]
    if probe.contract.hybrid:
        decodings = [(t, w) for t in (temperatures or [probe.contract.temperature])
                     for w in (class_weights or [probe.contract.class_weight])]
    points = []
    for rf in render_factors:
        for t, w in decodings:
            c = Colorizer(model, render_factor=rf, precision="fp32", runtime="torch",
                          saturation=1.0, temperature=t, class_weight=w)
            chroma = predict_full(c, val)
            for g in gains:
                points.append(Point(name, rf, t, w, float(g), **measure(chroma, val, g)))
            log.info("%s rf %d T %s w %s: %s", name, rf, t, w,
                     [f"{p.psnr:.2f}/{p.cf_ratio:.2f}" for p in points[-len(gains):]])
    return points


def _contract(model: str) -> Any:
    from streamcolor.model.weights import resolve_model

    return resolve_model(model).contract


def reference_series(model: str, render_factor: int) -> str:
    """The series name of ``model`` at ``render_factor`` with its own default decoding."""
    from streamcolor.model.weights import resolve_model

    record = resolve_model(model)
    c = record.contract
    p = Point(record.name, render_factor, c.temperature, c.class_weight, 1.0,
              *(0.0,) * 6)
    return p.series


def curve(points: Sequence[Point], series: str) -> list[tuple[float, float]]:
    """(colourfulness ratio, PSNR) of one series, sorted by the ratio."""
    return sorted((p.cf_ratio, p.psnr) for p in points if p.series == series)


def margin_at(psnr_db: float, ratio: float,
              reference: Sequence[tuple[float, float]]) -> float | None:
    """``psnr_db`` minus the reference curve's PSNR at colourfulness ratio ``ratio`` (linear
    between the curve's points), or None where the curve does not reach that ratio."""
    xs = [x for x, _ in reference]
    if not reference or not xs[0] <= ratio <= xs[-1]:
        return None
    return psnr_db - float(np.interp(ratio, xs, [y for _, y in reference]))


def margin(point: Point, reference: Sequence[tuple[float, float]]) -> float | None:
    """:func:`margin_at` of a point."""
    return margin_at(point.psnr, point.cf_ratio, reference)


def margin_ci(point: Point, reference: Sequence[Point], truth_cf: np.ndarray,
              n_boot: int = 1000, level: float = 0.95, seed: int = 0,
              ) -> tuple[float, float] | None:
    """A percentile bootstrap interval of ``point``'s margin over the curve of the
    ``reference`` points: the validation images are resampled together for the candidate, the
    reference and the truth (paired), the curve and the margin recomputed each time.  None
    where fewer than half the resamples reach the curve."""
    if not point.image_psnr or any(not r.image_psnr for r in reference):
        return None
    rng = np.random.default_rng(seed)
    n = len(truth_cf)
    cand_p, cand_c = np.asarray(point.image_psnr), np.asarray(point.image_cf)
    ref_p = np.array([r.image_psnr for r in reference])
    ref_c = np.array([r.image_cf for r in reference])
    truth = np.asarray(truth_cf)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        t = truth[idx].mean()
        curve = sorted(zip(ref_c[:, idx].mean(1) / t, ref_p[:, idx].mean(1), strict=True))
        m = margin_at(float(cand_p[idx].mean()), float(cand_c[idx].mean() / t), curve)
        if m is not None:
            values.append(m)
    if len(values) < n_boot / 2:
        return None
    return percentile_bounds(np.asarray(values), level)


def table(points: Sequence[Point], reference: Sequence[tuple[float, float]],
          gray_psnr: float, cis: dict[int, tuple[float, float] | None] | None = None) -> str:
    """The full sweep, one row per point; ``cis`` (by ``id(point)``): margin intervals."""
    cis = cis or {}
    lines = ["| model | render factor | temperature | class weight | gain | PSNR | ΔPSNR over "
             "gray | CF ratio (abs) | CF ratio (signed) | \\|ΔCF\\| median | orange drift | "
             "above the reference curve | 95 % CI |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        m, ci = margin(p, reference), cis.get(id(p))
        lines.append(
            f"| {p.model} | {p.render_factor} | "
            f"{'' if p.temperature is None else f'{p.temperature:g}'} | "
            f"{'' if p.class_weight is None else f'{p.class_weight:g}'} | {p.gain:g} | "
            f"{p.psnr:.2f} | {p.dpsnr_over_gray:+.2f} | {p.cf_ratio:.2f} | "
            f"{p.cf_ratio_signed:.2f} | {p.median_abs_dcf:.1f} | {100 * p.orange_drift:+.2f} % |"
            f" {'' if m is None else f'{m:+.2f} dB'} |"
            f" {'' if ci is None else f'{ci[0]:+.2f} … {ci[1]:+.2f}'} |")
    lines.append("")
    lines.append(f"Gray input: {gray_psnr:.2f} dB.")
    return "\n".join(lines)


def point_record(point: Point, reference: Sequence[tuple[float, float]],
                 ci: tuple[float, float] | None = None) -> dict[str, Any]:
    """A point for the JSON: its settings and set-level numbers (not the per-image ones),
    series, margin over the reference curve and that margin's bootstrap interval."""
    record = {k: v for k, v in asdict(point).items() if not k.startswith("image_")}
    return {**record, "series": point.series, "margin": margin(point, reference),
            "margin_ci": None if ci is None else list(ci)}


def compact_table(points: Sequence[Point], reference: Sequence[tuple[float, float]],
                  gains: Sequence[float]) -> str:
    """One row per series, one column per gain: PSNR / colourfulness ratio / margin over the
    reference curve / orange drift (for the model card)."""
    series = list(dict.fromkeys(p.series for p in points))
    lines = ["| model, render factor, decoding | " + " | ".join(f"×{g:g}" for g in gains) + " |",
             "|---|" + "---|" * len(gains)]
    for s in series:
        cells = []
        for g in gains:
            p = next((p for p in points if p.series == s and p.gain == g), None)
            if p is None:
                cells.append("")
                continue
            m = margin(p, reference)
            cells.append(f"{p.psnr:.2f} dB / {p.cf_ratio:.2f} / "
                         f"{'–' if m is None else f'{m:+.2f}'} / {100 * p.orange_drift:+.1f} %")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(points: Sequence[Point], reference_series: str, gray_psnr: float, path: Path,
         target_ratio: float | None = None, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    series = sorted({p.series for p in points}, key=lambda s: (s != reference_series, s))
    for s in series:
        pts = sorted((p for p in points if p.series == s), key=lambda p: p.gain)
        ref = s == reference_series
        ax.plot([p.cf_ratio for p in pts], [p.psnr for p in pts],
                marker="o" if ref else ".", lw=2.5 if ref else 1, ms=5 if ref else 4,
                color="black" if ref else None, label=s + (" (reference)" if ref else ""),
                zorder=3 if ref else 2)
        for p in pts:
            if ref or p.gain == 1.0:
                ax.annotate(f"×{p.gain:g}", (p.cf_ratio, p.psnr), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
    ax.axhline(gray_psnr, color="gray", ls="--", lw=1, label=f"gray input {gray_psnr:.2f} dB")
    ax.axhline(gray_psnr + 1.0, color="gray", ls=":", lw=1, label="gray + 1 dB")
    if target_ratio is not None:
        ax.axvline(target_ratio, color="tab:red", ls=":", lw=1,
                   label=f"colourfulness ratio {target_ratio:g}")
    ax.set_xlabel("colourfulness ratio, mean CF(output) / mean CF(truth) (absolute form)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title or "PSNR against colourfulness; each curve: chroma gain ×s")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--val", required=True)
    ap.add_argument("--models", required=True, help="comma list of models (names or files)")
    ap.add_argument("--reference", default="stable",
                    help="the model whose gain curve (at --reference-rf) is the bar")
    ap.add_argument("--reference-rf", type=int, default=16)
    ap.add_argument("--gains", default="0.5,0.75,1,1.25,1.5,1.75,2,2.5")
    ap.add_argument("--render-factors", default="16")
    ap.add_argument("--temperatures", default="", help="hybrid models: annealing temperatures")
    ap.add_argument("--class-weights", default="", help="hybrid models: class head shares")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--target-ratio", type=float, default=0.85)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--md", type=Path)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--card", type=Path, help="model card whose pareto block gets the compact "
                    "table (between <!-- metrics:pareto:start/end -->)")
    ap.add_argument("--card-gains", default="1,1.25,1.5")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.threads:
        from streamcolor.model.runtime import configure_threads

        configure_threads(a.threads)
    t0 = time.perf_counter()
    val = ValImages.load(a.val, a.limit)
    gains = _floats(a.gains)
    rfs = [int(x) for x in _floats(a.render_factors)]
    points: list[Point] = []
    models = a.models.split(",")
    if a.reference not in models:
        models.insert(0, a.reference)
    for m in models:
        temps, weights = _floats(a.temperatures), _floats(a.class_weights)
        rf, g = rfs, gains
        if m == a.reference:  # its own curve: the default render factor and decoding too,
            rf = sorted({*rfs, a.reference_rf})  # and gains wide enough to reach every ratio
            g = sorted({*gains, *REFERENCE_GAINS})
            contract = _contract(m)
            if contract.hybrid:
                temps = sorted({*temps, contract.temperature})
                weights = sorted({*weights, contract.class_weight})
        points += sweep(m, val, g, rf, temps, weights)
    ref_series = reference_series(a.reference, a.reference_rf)
    ref = curve(points, ref_series)
    ref_points = [p for p in points if p.series == ref_series]
    cis = {id(p): margin_ci(p, ref_points, val.cf_abs)
           for p in points if p.series != ref_series}
    md = table(points, ref, val.gray_psnr, cis)
    print(md)
    meta = {"val": a.val, "images": len(val.names), "reference": ref_series,
            "gray_psnr": val.gray_psnr, "seconds": time.perf_counter() - t0}
    if a.json:
        doc = {"meta": meta, "points": [point_record(p, ref, cis.get(id(p))) for p in points]}
        write_bytes_atomic(a.json, (json.dumps(doc, indent=1) + "\n").encode())
    if a.md:
        write_bytes_atomic(a.md, (md + "\n").encode())
    if a.plot:
        plot(points, ref_series, val.gray_psnr, a.plot, a.target_ratio)
    if a.card:
        from streamcolor.training.evaluate import update_card

        block = (f"On `{a.val}` ({len(val.names)} images; gray input {val.gray_psnr:.2f} dB). "
                 f"Each cell: PSNR / colourfulness ratio (absolute form) / dB above the "
                 f"reference curve ({ref_series} × gain; – where it does not reach that "
                 "ratio) / orange drift.\n\n" +
                 compact_table(points, ref, _floats(a.card_gains)))
        update_card(a.card, "pareto", block)


if __name__ == "__main__":
    main()
