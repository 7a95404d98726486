"""The fixed percentile stretch that brings 8-, 12-, 16-bit, signed or float raster data into
the model's [0, 1] luma input.

It is computed **once per file** (or once per sequence) from exact histograms streamed over the
file's windows, never per tile or per frame (that would make seams and flicker), and stored in
the output's tags so it can be inverted.  Pure functions, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from streamcolor.errors import InvalidInputError

# BT.601 luma weights of (red, green, blue) bands.
RGB_WEIGHTS = (0.299, 0.587, 0.114)
HIST_BINS = 65536  # exact for 8/16-bit integers; min..max in 65,536 bins otherwise


def exact_histogram_dtype(dtype: np.dtype) -> bool:
    """Integer types of at most 16 bits get an exact histogram (one bin per value)."""
    return np.dtype(dtype).kind in "ui" and np.dtype(dtype).itemsize <= 2


class BandHistogram:
    """Histogram of one band's valid values, accumulated window by window.

    8/16-bit integers: one bin per possible value (exact).  Other types: two passes, the
    first (:meth:`add_range`) finds min/max, the second bins into 65,536 equal bins."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.exact = exact_histogram_dtype(self.dtype)
        if self.exact:
            info = np.iinfo(self.dtype)
            self.origin = float(info.min)
            self.width = 1.0
            self.counts = np.zeros(int(info.max) - int(info.min) + 1, np.int64)
        else:
            self.lo, self.hi = np.inf, -np.inf
            self.counts = None  # type: ignore[assignment]

    @property
    def needs_range(self) -> bool:
        return not self.exact and self.counts is None

    def add_range(self, values: np.ndarray) -> None:
        if values.size:
            self.lo = min(self.lo, float(values.min()))
            self.hi = max(self.hi, float(values.max()))

    def finish_range(self) -> None:
        if self.exact or self.counts is not None:
            return
        if not np.isfinite(self.lo):  # no valid value at all
            self.lo, self.hi = 0.0, 1.0
        self.origin = self.lo
        self.width = max(self.hi - self.lo, 1e-12) / (HIST_BINS - 1)
        self.counts = np.zeros(HIST_BINS, np.int64)

    def add(self, values: np.ndarray) -> None:
        """Count the valid values (a 1-D array of this band's type)."""
        if not values.size:
            return
        if self.exact:
            idx = values.astype(np.int64) - int(self.origin)
        else:
            if self.counts is None:
                raise RuntimeError("the range pass must come first for this sample type")
            idx = np.clip(np.rint((values.astype(np.float64) - self.origin) / self.width),
                          0, HIST_BINS - 1).astype(np.int64)
        self.counts += np.bincount(idx, minlength=self.counts.size)

    def merge(self, other: BandHistogram) -> None:
        if not (self.exact and other.exact):
            raise ValueError("only exact histograms merge")
        self.counts += other.counts

    @property
    def total(self) -> int:
        return 0 if self.counts is None else int(self.counts.sum())

    def percentile(self, q: float) -> float:
        """The smallest value whose cumulative share reaches ``q`` % (numpy's
        ``inverted_cdf`` percentile for exact histograms)."""
        if self.total == 0:
            raise ValueError("no valid pixels")
        cdf = np.cumsum(self.counts)
        target = q / 100.0 * cdf[-1]
        i = int(np.searchsorted(cdf, target, side="left"))
        if q <= 0:
            i = int(np.argmax(self.counts > 0))
        return self.origin + min(i, self.counts.size - 1) * self.width


@dataclass(frozen=True)
class Stretch:
    """Per-band linear stretch ``(v - low) / (high - low)`` of the bands that form the luma.

    ``weights`` combine the stretched bands into the model's luma (1 for one band, BT.601 for
    red/green/blue).  ``scope`` is ``file``, ``sequence`` or ``fixed`` (8-bit data taken at its
    full 0..255 range)."""

    bands: tuple[int, ...]  # 1-based band numbers of the source
    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] | None
    scope: str
    weights: tuple[float, ...] = (1.0,)

    @property
    def luma_scale(self) -> float:
        """Data units per unit of model luma (chroma offsets are scaled by it)."""
        return float(sum(w * (h - lo) for w, lo, h in
                         zip(self.weights, self.low, self.high, strict=True)))

    def apply(self, bands: np.ndarray) -> np.ndarray:
        """(n, h, w) source bands -> (h, w) float32 model luma in [0, 1]."""
        out = np.zeros(bands.shape[1:], np.float32)
        for b, w, lo, hi in zip(bands, self.weights, self.low, self.high, strict=True):
            scale = np.float32(w / (hi - lo))
            out += (b.astype(np.float32) - np.float32(lo)) * scale
        return np.clip(out, 0.0, 1.0, out=out)

    def to_tag(self) -> str:
        return json.dumps({"bands": list(self.bands), "low": list(self.low),
                           "high": list(self.high),
                           "percentiles": list(self.percentiles) if self.percentiles else None,
                           "scope": self.scope, "weights": list(self.weights),
                           "model_luma": "sum(weights * (band - low) / (high - low)), "
                                         "clipped to 0..1"}, sort_keys=True)

    @classmethod
    def from_tag(cls, text: str) -> Stretch:
        d = json.loads(text)
        return cls(tuple(d["bands"]), tuple(d["low"]), tuple(d["high"]),
                   tuple(d["percentiles"]) if d["percentiles"] else None, d["scope"],
                   tuple(d["weights"]))

    def key(self) -> dict:
        return {"bands": list(self.bands), "low": list(self.low), "high": list(self.high),
                "scope": self.scope}


def parse_stretch(text: str) -> tuple[float, float]:
    """``LOW,HIGH`` percentiles, 0 <= LOW < HIGH <= 100."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--stretch takes LOW,HIGH percentiles such as 1,99, not {text!r}")\
            from None
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(f"--stretch {text}: need 0 <= LOW < HIGH <= 100")
    return lo, hi


def stretch_from_histograms(hists: list[BandHistogram], bands: tuple[int, ...],
                            weights: tuple[float, ...], percentiles: tuple[float, float],
                            scope: str, where: str) -> Stretch:
    lows, highs = [], []
    for b, h in zip(bands, hists, strict=True):
        if h.total == 0:
            raise InvalidInputError(f"{where}: band {b} has no valid pixel (all nodata)")
        lo, hi = h.percentile(percentiles[0]), h.percentile(percentiles[1])
        if hi <= lo:  # a constant band: keep it mid-gray rather than dividing by zero
            hi = lo + (1.0 if h.exact else max(abs(lo), 1.0) * 1e-6)
        lows.append(float(lo))
        highs.append(float(hi))
    return Stretch(bands, tuple(lows), tuple(highs), percentiles, scope, weights)


def fixed_8bit_stretch(bands: tuple[int, ...], weights: tuple[float, ...]) -> Stretch:
    """8-bit data at its full 0..255 range, as the model was trained (no percentiles)."""
    n = len(bands)
    return Stretch(bands, (0.0,) * n, (255.0,) * n, None, "fixed", weights)
