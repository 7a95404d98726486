"""``streamcolor eval``: quality and flicker of colourised video against ground truth.

Full-reference metrics (need the ground-truth colour frames, frame for frame): PSNR and SSIM
on RGB, and the gap between the output's and the truth's colourfulness.  No-reference ones:
colourfulness, CDC and warping error (:mod:`.flicker`).  Several candidates can be measured
in one pass over the frames, sharing the optical flow (computed once, on the input frames).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from streamcolor.color import colorfulness, psnr, rgb_to_luma_u8
from streamcolor.errors import InvalidInputError
from streamcolor.eval.flicker import CDCMeter, FlowPair, FlowPairs, pair_warp_error
from streamcolor.eval.metrics import ssim
from streamcolor.io.atomic import write_bytes_atomic
from streamcolor.io.rgbframes import iter_rgb


@dataclass
class SequenceReport:
    name: str
    frames: int
    colorfulness: float
    cdc: float
    warp_error: float
    cuts: int = 0  # frame pairs across a hard cut or a size change, left out of the warping error
    psnr: float | None = None
    ssim: float | None = None
    colorfulness_gap: float | None = None  # mean |colourfulness - truth's| per frame
    per_frame: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("per_frame")
        return {k: _finite(v) for k, v in d.items()}


def _finite(v: object) -> object:
    return None if isinstance(v, float) and not math.isfinite(v) else v


class SequenceMeter:
    """Accumulates the metrics of one frame sequence, frame by frame."""

    def __init__(self, name: str, with_ssim: bool = True, label: str | None = None,
                 reference_label: str = "the reference") -> None:
        self.name = name
        self.label = label or name
        self.reference_label = reference_label
        self.with_ssim = with_ssim
        self.cdc = CDCMeter()
        self.frames = 0
        self.cuts = 0
        self._prev: np.ndarray | None = None
        self.series: dict[str, list[float]] = {"colorfulness": [], "warp_error": [],
                                               "psnr": [], "ssim": [], "colorfulness_gap": []}

    def add(self, rgb: np.ndarray, pair: FlowPair | None,
            reference: np.ndarray | None = None,
            reference_colorfulness: float | None = None) -> None:
        """One frame; ``reference_colorfulness`` saves recomputing it for each candidate."""
        if reference is not None and reference.shape != rgb.shape:
            raise InvalidInputError(f"{self.label}: frame {self.frames} is "
                                    f"{rgb.shape[1]}x{rgb.shape[0]}, but in "
                                    f"{self.reference_label} it is "
                                    f"{reference.shape[1]}x{reference.shape[0]}")
        cf = colorfulness(rgb)
        self.series["colorfulness"].append(cf)
        self.cdc.add(rgb)
        if pair is not None and self._prev is not None:
            skip = pair.cut or self._prev.shape != rgb.shape or \
                (pair.flow is not None and pair.flow.shape[:2] != rgb.shape[:2])
            self.cuts += skip
            self.series["warp_error"].append(
                float("nan") if skip else pair_warp_error(self._prev, rgb, pair))
        if reference is not None:
            self.series["psnr"].append(psnr(rgb, reference))
            if self.with_ssim:
                self.series["ssim"].append(ssim(rgb, reference))
            ref_cf = colorfulness(reference) if reference_colorfulness is None else \
                reference_colorfulness
            self.series["colorfulness_gap"].append(abs(cf - ref_cf))
        self._prev = rgb
        self.frames += 1

    def report(self) -> SequenceReport:
        s = self.series

        def mean(key: str) -> float | None:
            values = [v for v in s[key] if math.isfinite(v)]
            return float(np.mean(values)) if values else None

        warp = mean("warp_error")
        return SequenceReport(
            self.name, self.frames, mean("colorfulness") or 0.0, self.cdc.value,
            float("nan") if warp is None else warp, self.cuts, _mean_psnr(s["psnr"]),
            mean("ssim"),
            mean("colorfulness_gap"),
            per_frame={"warp_error": s["warp_error"], "cdc_d1": self.cdc.per_frame,
                       "psnr": s["psnr"], "colorfulness": s["colorfulness"]})


def _mean_psnr(values: list[float]) -> float | None:
    """Mean of per-frame PSNR; identical frames (inf) are capped at 100 dB."""
    if not values:
        return None
    return float(np.mean(np.minimum(values, 100.0)))


def evaluate_sequences(candidates: Mapping[str, Iterable[np.ndarray]],
                       reference: Iterable[np.ndarray] | None = None,
                       inputs: Iterable[np.ndarray] | None = None,
                       flow_preset: str = "medium", with_ssim: bool = True,
                       labels: Mapping[str, str] | None = None) -> dict[str, SequenceReport]:
    """Measure each candidate sequence (uint8 RGB frames) in one pass.

    Optical flow for the warping error comes from ``inputs`` (luma or RGB frames), else from
    the reference, else from the first candidate, so every candidate is warped the same way.
    When a reference is given it is also measured as a candidate named "reference".
    """
    labels = dict(labels or {})
    names = list(candidates)
    its: dict[str, Iterator[np.ndarray]] = {n: iter(candidates[n]) for n in names}
    if reference is not None:
        its["reference"] = iter(reference)
    if inputs is not None:
        its["input"] = iter(inputs)
    meters = {n: SequenceMeter(n, with_ssim, labels.get(n),
                               labels.get("reference", "the reference")) for n in names}
    if reference is not None:
        meters["reference"] = SequenceMeter("reference", with_ssim=False)
    pairs = FlowPairs(flow_preset)
    t = 0
    while True:
        got = {k: next(it, None) for k, it in its.items()}
        ended = [k for k, v in got.items() if v is None]
        if len(ended) == len(got):
            break
        if ended:
            raise InvalidInputError(
                f"{', '.join(labels.get(k, k) for k in ended)}: ends after {t} frames while "
                "the other sequences go on (frame counts must match)")
        ref = got.get("reference")
        flow_src = got.get("input", ref if ref is not None else got[names[0]])
        pair = pairs.add(_luma(flow_src, labels.get("input", "input"), t))
        ref_cf = colorfulness(ref) if ref is not None else None
        for n in names:
            meters[n].add(got[n], pair, ref, ref_cf)  # type: ignore[arg-type]
        if ref is not None:
            meters["reference"].add(ref, pair)
        t += 1
    if t == 0:
        raise InvalidInputError("nothing to evaluate: zero frames")
    return {n: m.report() for n, m in meters.items()}


def _luma(frame: np.ndarray, label: str, t: int) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return rgb_to_luma_u8(frame)
    raise InvalidInputError(f"{label}: frame {t} has an unexpected shape {frame.shape}")


def evaluate_paths(output: str | Path, reference: str | Path | None = None,
                   input: str | Path | None = None, flow_preset: str = "medium",
                   with_ssim: bool = True) -> dict[str, SequenceReport]:
    """:func:`evaluate_sequences` on a colourised video/folder and optional truth and input."""
    name = "output"
    labels = {name: str(output), "reference": str(reference), "input": str(input)}
    return evaluate_sequences(
        {name: iter_rgb(output)},
        iter_rgb(reference) if reference is not None else None,
        iter_rgb(input) if input is not None else None,
        flow_preset, with_ssim, labels)


COLUMNS = [("frames", "frames", "{}"), ("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
           ("colorfulness", "colourful.", "{:.1f}"), ("colorfulness_gap", "|Δcolourful.|",
                                                      "{:.1f}"),
           ("cdc", "CDC", "{:.4g}"), ("warp_error", "warp err", "{:.4g}"),
           ("cuts", "pairs skipped", "{}")]


def report_table(reports: Mapping[str, SequenceReport], title: str | None = None) -> object:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("sequence")
    for _, head, _ in COLUMNS:
        table.add_column(head, justify="right")
    for name, r in reports.items():
        values = r.summary()
        table.add_row(name, *["–" if values[k] is None else fmt.format(values[k])
                              for k, _, fmt in COLUMNS])
    return table


def write_json(reports: Mapping[str, SequenceReport], path: str | Path,
               extra: Mapping[str, object] | None = None) -> None:
    doc = {**(extra or {}),
           "metrics": {n: r.summary() for n, r in reports.items()},
           "per_frame": {n: {k: [_finite(v) for v in vs] for k, vs in r.per_frame.items()}
                         for n, r in reports.items()}}
    write_bytes_atomic(Path(path), (json.dumps(doc, indent=2) + "\n").encode())


def plot_flicker(reports: Mapping[str, SequenceReport], path: str | Path,
                 title: str = "") -> None:
    """PNG of per-frame warping error and histogram JS divergence (d = 1) over time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInputError(f"{path}: plotting needs matplotlib "
                                "(pip install 'streamcolor[plot]')") from None
    import io

    fig, axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for name, r in reports.items():
        x = np.arange(1, len(r.per_frame["warp_error"]) + 1)
        axes[0].plot(x, r.per_frame["warp_error"], label=name, lw=1)
        axes[1].plot(np.arange(1, len(r.per_frame["cdc_d1"]) + 1), r.per_frame["cdc_d1"],
                     label=name, lw=1)
    axes[0].set_ylabel("warping error")
    axes[1].set_ylabel("histogram JS, t-1 vs t")
    axes[1].set_xlabel("frame")
    axes[0].legend(loc="upper right", fontsize=8)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(Path(path), buf.getvalue())
