"""Colour quality of colourised photos against their ground truth (pure numpy/OpenCV, no torch).

Five families of measures, each documented with its source:

* :func:`kid` - Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel
  (Bińkowski et al. 2018, "Demystifying MMD GANs", ICLR), in the subset form of torch-fidelity
  and clean-fid (Parmar et al. 2022, "On Aliased Resizing and Surprising Subtleties in GAN
  Evaluation", CVPR).
* :func:`bootstrap_ci`, :func:`frechet_distance_ci`, :func:`kid_ci` - percentile bootstrap
  confidence intervals over images (Efron & Tibshirani 1993, "An Introduction to the
  Bootstrap", ch. 13), prediction and truth of one image resampled together.
* :class:`ColorAccuracyAuc` - the colour-accuracy AuC of Zhang, Isola & Efros 2016,
  "Colorful Image Colorization" (ECCV), Sec. 3.1 / Table 1, plain and class-rebalanced.
* :class:`HueHistograms` - chroma-weighted CIE Lab hue histograms of coarse pixel groups
  (skin: Chai & Ngan 1999; sky, water, vegetation: hue/lightness/chroma boxes defined here),
  compared with the Jensen-Shannon divergence (Lin 1991, "Divergence measures based on the
  Shannon entropy", IEEE Trans. Inf. Theory 37(1)).
* :func:`colorfulness_stats` - set-level colourfulness (Hasler & Süsstrunk 2003, "Measuring
  colourfulness in natural images", SPIE 5007) and DDColor's ΔCF (Kang et al. 2023, ICCV).

Lab is OpenCV's float conversion of sRGB (D65): ``cv2.cvtColor(rgb.astype(np.float32) / 255,
cv2.COLOR_RGB2Lab)``, L* in 0..100 and a*, b* in CIE units (about -86..98 and -108..95 for
sRGB).  Hue is h_ab = atan2(b*, a*) in degrees 0..360 and chroma C*_ab = sqrt(a*² + b*²).

The accumulators keep only fixed-size numpy count/sum arrays, so memory does not grow with
the number of images; nothing happens at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from streamcolor.color import rgb_to_ycbcr
from streamcolor.eval.metrics import feature_stats, frechet_distance

__all__ = [
    "GROUPS",
    "AucResult",
    "ColorAccuracyAuc",
    "ColorfulnessStats",
    "HueGroupResult",
    "HueHistograms",
    "ab_bin",
    "bootstrap_ci",
    "colorfulness_stats",
    "colorfulness_stats_both",
    "frechet_distance_ci",
    "group_masks",
    "js_divergence",
    "kid",
    "kid_ci",
    "rgb_u8_to_lab",
]


def rgb_u8_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (H, W, 3) -> float32 CIE Lab (H, W, 3) by OpenCV's float conversion:
    L* in 0..100, a* and b* in CIE Lab units."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


# --------------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------------

def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng(0) if rng is None else rng


def _mmd2(x: np.ndarray, y: np.ndarray, ids_x: np.ndarray | None = None,
          ids_y: np.ndarray | None = None, pos_x: np.ndarray | None = None,
          pos_y: np.ndarray | None = None, paired: bool = False) -> float:
    """Unbiased MMD² (Bińkowski et al. 2018; torch-fidelity's ``mmd_est='unbiased'``)
    with k(u, v) = (u·v / D + 1)³:

    ``sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) / (n (n-1))
    - 2 sum_{i,j} k(x_i, y_j) / (m n)``.

    With ``ids_*`` (the image index of each row, for bootstrap resamples) and ``pos_*`` (the
    row's draw in the resample), every sum instead averages over its pairs minus those of two
    *different draws of one image*: a sample of distinct images never holds such a pair, and
    its k(x, x) would bias each replicate up by about (k(x, x) - k(x, x')) / N.  The same
    draw's prediction and truth still pair (as row i of x and y do in the plain estimator).
    With ``ids = pos = arange`` this is the plain estimator.

    ``paired``: x and y hold images' outputs and those same images' truths (row i of each
    from image i, or image ``ids[i]``).  The cross sum then leaves out every pair of one image,
    as Gretton et al.'s MMD²_u does (JMLR 2012, eq. 3): an output is correlated with its own
    truth, so those pairs raise the cross term and push the estimate below zero (by -0.10
    for the shipped model on the 197 validation photos); pairs of different images are
    independent, so the estimate stays unbiased.
    """
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    if ids_x is None or ids_y is None or pos_x is None or pos_y is None:
        m, n = len(x), len(y)
        xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        if paired:
            if m != n:
                raise ValueError(f"paired sets differ in length: {m} vs {n}")
            return float(xx + yy - 2.0 * (kxy.sum() - np.trace(kxy)) / (m * (m - 1)))
        return float(xx + yy - 2.0 * kxy.sum() / (m * n))
    keep_xx = ids_x[:, None] != ids_x[None, :]
    keep_yy = ids_y[:, None] != ids_y[None, :]
    keep_xy = ids_x[:, None] != ids_y[None, :]
    if not paired:
        keep_xy |= pos_x[:, None] == pos_y[None, :]
    return float(kxx[keep_xx].mean() + kyy[keep_yy].mean() - 2.0 * kxy[keep_xy].mean())


def _kid(a: np.ndarray, b: np.ndarray, subsets: int, subset_size: int,
         rng: np.random.Generator, ids: np.ndarray | None = None,
         paired: bool = False) -> tuple[float, float]:
    """:func:`kid`; with ``ids`` (a and b are the paired rows of a bootstrap resample, ``ids``
    their image indices) the copy-aware estimator of :func:`_mmd2`; ``paired`` as there."""
    na, nb = len(a), len(b)
    m = min(subset_size, na, nb)
    if m < 2:
        raise ValueError(f"KID needs at least 2 rows per set (got {na} and {nb})")

    def one(sa: np.ndarray, sb: np.ndarray) -> float:
        if ids is None and not paired:
            return _mmd2(a[sa], b[sb])
        image = np.arange(na) if ids is None else ids
        return _mmd2(a[sa], b[sb], image[sa], image[sb], sa, sb, paired=paired)

    if m == na == nb:  # every subset is the whole of both sets: one value, no spread
        full = np.arange(m)
        return one(full, full), 0.0
    values = []
    for _ in range(subsets):
        sa = rng.choice(na, m, replace=False)
        sb = rng.choice(nb, m, replace=False)
        values.append(one(sa, sb))
    return float(np.mean(values)), float(np.std(values))


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        rng: np.random.Generator | None = None, paired: bool = False) -> tuple[float, float]:
    """Kernel Inception Distance between (N_a, D) and (N_b, D) feature arrays -> (mean, std).

    Bińkowski et al. 2018 ("Demystifying MMD GANs"), as torch-fidelity and clean-fid compute
    it: ``subsets`` times, draw m = min(subset_size, N_a, N_b) rows of ``a`` then of ``b``
    without replacement (``rng.choice(N, m, replace=False)``), take the unbiased MMD² with the
    polynomial kernel k(x, y) = (x·y / D + 1)³ (see :func:`_mmd2`), and return the mean and
    the population std (ddof 0) over subsets.  When m equals both N_a and N_b every subset is
    the full set, so it is computed once and the std is 0.  Units: squared feature units
    (cubed kernel); it can be slightly negative (unbiased).  ``rng`` None means
    ``np.random.default_rng(0)``.  Cost: 3 m² D multiply-adds per subset.

    ``paired``: row i of ``a`` and of ``b`` come from one image (outputs against their own
    truths): pairs of one image are left out of the cross term (see :func:`_mmd2`).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) arrays of one D, got {a.shape} and {b.shape}")
    if paired and len(a) != len(b):
        raise ValueError(f"paired arrays differ in length: {len(a)} vs {len(b)}")
    return _kid(a, b, subsets, subset_size, _rng(rng), paired=paired)


# --------------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# --------------------------------------------------------------------------------------------

def percentile_bounds(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The (1 - level)/2 and (1 + level)/2 percentiles of bootstrap replicates."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def _bootstrap(n: int, replicate: Callable[[np.ndarray], float], n_boot: int, level: float,
               rng: np.random.Generator) -> tuple[float, float]:
    if n < 1 or n_boot < 1:
        raise ValueError(f"need at least one image and one resample (got {n}, {n_boot})")
    reps = np.empty(n_boot, np.float64)
    for i in range(n_boot):
        reps[i] = replicate(rng.integers(0, n, n))
    return percentile_bounds(reps, level)


def bootstrap_ci(a: np.ndarray, b: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], float],
                 n_boot: int = 200, level: float = 0.95,
                 rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """Percentile bootstrap CI of ``statistic(a, b)`` over images -> (point, low, high).

    ``a`` and ``b`` are paired per-image arrays (row i of each belongs to image i).  Each of
    ``n_boot`` resamples draws N image indices with replacement (``rng.integers(0, N, N)``,
    one call per resample) and evaluates ``statistic(a[idx], b[idx])`` (the two sets are
    resampled jointly).  ``low``/``high`` are the (1 - level)/2 and (1 + level)/2 percentiles
    of the replicates (``np.percentile``, linear interpolation; Efron & Tibshirani 1993,
    ch. 13); ``point`` is ``statistic(a, b)`` on the original sets.  A NaN replicate makes the
    bounds NaN.  ``rng`` None means ``np.random.default_rng(0)``.

    A statistic with a small-sample bias has its replicates shifted by about that bias (a
    resample holds only about 63 % distinct images), so its interval can lie beside the point
    estimate: see :func:`frechet_distance_ci`.  To compare two models, bootstrap their
    difference on the same resamples, e.g. ``a = np.hstack([feats_1, feats_2])``, ``b`` the
    truth's features, and a statistic that splits ``a`` (the shared bias then mostly cancels).
    """
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        raise ValueError(f"paired arrays differ in length: {len(a)} vs {len(b)}")
    point = float(statistic(a, b))
    low, high = _bootstrap(len(a), lambda idx: float(statistic(a[idx], b[idx])), n_boot, level,
                           _rng(rng))
    return point, low, high


def frechet_distance_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 200, level: float = 0.95,
                        rng: np.random.Generator | None = None,
                        eps: float = 1e-6) -> tuple[float, float, float]:
    """Fréchet distance of the Gaussian fits of paired (N, D) features with a percentile
    bootstrap CI -> (point, low, high), via :func:`bootstrap_ci` and
    ``streamcolor.eval.metrics.frechet_distance`` / ``feature_stats`` (the FID formula,
    Heusel et al. 2017).  Units: squared feature units.  About 13 ms per resample at
    N = 197, D = 320 on one core.

    Caution: the Fréchet distance of sample Gaussians is biased upward, by a lot when N is
    not much larger than D (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception
    Score and where to find them", CVPR), and the replicates, with fewer distinct images, more
    so: with N = 197, D = 320 the percentile interval measured here lay wholly above the
    point estimate (point 15.1, interval 17.6..18.4).  The interval's width describes the
    resampling spread; it is not a confidence interval for the population distance.  KID
    (:func:`kid_ci`) is unbiased and has no such shift.
    """

    def fd(x: np.ndarray, y: np.ndarray) -> float:
        return frechet_distance(*feature_stats(x), *feature_stats(y), eps=eps)

    return bootstrap_ci(np.asarray(a, np.float64), np.asarray(b, np.float64), fd, n_boot,
                        level, rng)


def kid_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 200, level: float = 0.95,
           subsets: int = 100, subset_size: int = 1000,
           rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """KID (the mean over subsets, :func:`kid`) of paired (N, D) features with a percentile
    bootstrap CI -> (point, low, high).

    The sets are paired (row i of each from image i), so the estimator leaves out the pairs
    of one image (``kid(..., paired=True)``, see :func:`_mmd2`).  Resampling as in
    :func:`bootstrap_ci` (same ``rng`` stream, which also draws the KID subsets; point
    estimate first).  Each replicate is the KID of the resampled sets in which
    two different draws of one image are never paired (see :func:`_mmd2`): counted, such
    pairs would shift every replicate by several times a typical KID at N of a few hundred.
    Cost: ``n_boot`` x (``subsets`` or 1 when N <= subset_size) x 3 m² D multiply-adds.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected paired (N, D) arrays, got {a.shape} and {b.shape}")
    gen = _rng(rng)
    point = _kid(a, b, subsets, subset_size, gen, paired=True)[0]

    def replicate(idx: np.ndarray) -> float:
        return _kid(a[idx], b[idx], subsets, subset_size, gen, ids=idx, paired=True)[0]

    low, high = _bootstrap(len(a), replicate, n_boot, level, gen)
    return point, low, high


# --------------------------------------------------------------------------------------------
# Zhang et al. 2016 colour-accuracy AuC
# --------------------------------------------------------------------------------------------

AB_GRID = 10.0  # Zhang's ab quantisation: bins centred on multiples of 10 (nearest centre)
AB_BIN_LIMIT = 11  # centres -110..110 (sRGB's a*, b* lie in about -108..98)
AB_BINS_PER_AXIS = 2 * AB_BIN_LIMIT + 1
AUC_MAX_T = 150  # thresholds t = 0, 1, ..., 150 (ab units)
_BUCKETS = AUC_MAX_T + 2  # ceil(distance) 0..150, and 151 for "beyond 150"


def ab_bin(ab: np.ndarray) -> np.ndarray:
    """Flat index of the 10-wide ab bin of (..., 2) a*, b* values: each axis' nearest centre
    k·10, k = round(v / 10) (halves round up) clipped to -11..11, index (ka + 11) * 23 +
    (kb + 11) in 0..528."""
    ab = np.asarray(ab, np.float32)
    k = np.clip(np.floor(ab / np.float32(AB_GRID) + np.float32(0.5)), -AB_BIN_LIMIT,
                AB_BIN_LIMIT).astype(np.int64) + AB_BIN_LIMIT
    return k[..., 0] * AB_BINS_PER_AXIS + k[..., 1]


@dataclass(frozen=True)
class AucResult:
    """Output of :meth:`ColorAccuracyAuc.result`.

    ``curve[t]``: share of pixels whose ab error is <= t, t = 0..150; ``curve_rebalanced[t]``:
    the mean over ground-truth ab bins present of each bin's share; ``auc`` and
    ``auc_rebalanced``: the means of those 151 values (0..1, 1 = every pixel exact).
    ``pixels``: pixels seen; ``bins``: ab bins present in the truth.
    """

    auc: float
    auc_rebalanced: float
    curve: np.ndarray
    curve_rebalanced: np.ndarray
    pixels: int
    bins: int


class ColorAccuracyAuc:
    """Streaming colour-accuracy AuC of Zhang, Isola & Efros 2016 ("Colorful Image
    Colorization", ECCV, Sec. 3.1, Table 1 "AuC"), plain and class-rebalanced.

    Per pixel the error is the L2 distance between predicted and true (a*, b*) in CIE Lab
    (ab units).  The accuracy curve at threshold t is the share of pixels with error <= t,
    for t = 0, 1, ..., 150; AuC is the mean of those 151 values, in 0..1.  A constant error
    d in (0, 150] therefore scores (151 - ceil(d)) / 151, and an error of 0 scores 1.

    The rebalanced variant weights each pixel by 1 / p(bin), p the frequency of its
    ground-truth ab bin (10-wide grid, :func:`ab_bin`), so each ab bin present in the truth
    counts equally: the curve is the mean over those bins of the per-bin curves.  The prior
    p is the evaluated set's own ground truth over every pixel seen (Zhang weighted by a prior
    without saying which set; their training-loss smoothing is not applied here).

    State: an int64 histogram [truth ab bin (529), ceil(error) clipped to 151 (152)], so the
    result is independent of how the pixels were split into updates.
    """

    def __init__(self) -> None:
        self.hist = np.zeros((AB_BINS_PER_AXIS**2, _BUCKETS), np.int64)

    def update(self, pred_rgb: np.ndarray, truth_rgb: np.ndarray) -> None:
        """Add one image pair: uint8 RGB (H, W, 3) prediction and ground truth."""
        pred_rgb, truth_rgb = np.asarray(pred_rgb), np.asarray(truth_rgb)
        if pred_rgb.shape != truth_rgb.shape:
            raise ValueError(f"shapes differ: {pred_rgb.shape} vs {truth_rgb.shape}")
        self.update_ab(rgb_u8_to_lab(pred_rgb)[..., 1:], rgb_u8_to_lab(truth_rgb)[..., 1:])

    def update_ab(self, pred_ab: np.ndarray, truth_ab: np.ndarray) -> None:
        """Add pixels given as (..., 2) float a*, b* arrays of prediction and truth."""
        pred_ab = np.asarray(pred_ab, np.float32)
        truth_ab = np.asarray(truth_ab, np.float32)
        if pred_ab.shape != truth_ab.shape or pred_ab.shape[-1] != 2:
            raise ValueError(f"expected two (..., 2) ab arrays, got {pred_ab.shape} and "
                             f"{truth_ab.shape}")
        diff = pred_ab - truth_ab
        dist = np.hypot(diff[..., 0], diff[..., 1])
        bucket = np.minimum(np.ceil(dist), AUC_MAX_T + 1).astype(np.int64)
        flat = (ab_bin(truth_ab) * _BUCKETS + bucket).ravel()
        self.hist += np.bincount(flat, minlength=self.hist.size).reshape(self.hist.shape)

    def result(self) -> AucResult:
        """AuCs and curves over every pixel seen (NaN with no pixels)."""
        per_bin = self.hist.sum(axis=1)
        total = int(per_bin.sum())
        present = per_bin > 0
        if total == 0:
            nan = np.full(AUC_MAX_T + 1, np.nan)
            return AucResult(float("nan"), float("nan"), nan, nan.copy(), 0, 0)
        within = np.cumsum(self.hist[:, : AUC_MAX_T + 1], axis=1)  # error <= t, per bin
        curve = within.sum(axis=0) / total
        curve_rb = (within[present] / per_bin[present, None]).mean(axis=0)
        return AucResult(float(curve.mean()), float(curve_rb.mean()), curve, curve_rb, total,
                         int(present.sum()))


# --------------------------------------------------------------------------------------------
# Hue histograms per coarse group
# --------------------------------------------------------------------------------------------

HUE_BINS = 36  # 10 degrees each, bin k covers [10k, 10k + 10)
HUE_MIN_CHROMA = 1.0  # C*ab below this is neutral: no hue, no weight in the histograms
GROUPS = ("all", "skin", "sky", "water", "vegetation")

# Chai & Ngan 1999 ("Face segmentation using skin-color map in videophone applications",
# IEEE TCSVT 9(4)): 77 <= Cb <= 127, 133 <= Cr <= 173 on 8-bit full-range BT.601, plus a
# floor on luma so near-black pixels (noisy hue) are left out.
SKIN_CB = (77.0, 127.0)
SKIN_CR = (133.0, 173.0)
SKIN_MIN_Y = 40.0
# Lab boxes chosen here (hue h_ab in degrees, [low, high); lightness L*; chroma C*_ab).
MIN_CHROMA = 5.0  # sky, water, vegetation: below this the hue is too unstable to use
SKY_HUE = (200.0, 300.0)  # cyan-blue to blue: clear sky 235..265 (sky blue, steel blue)
SKY_MIN_L = 50.0
WATER_HUE = (180.0, 300.0)  # cyan/turquoise (185..196) to blue and navy (up to ~290)
VEGETATION_HUE = (105.0, 165.0)  # yellow-green (~120) to green (~138) and sea green (~153)


def _hue_chroma(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = lab[..., 1], lab[..., 2]
    hue = np.degrees(np.arctan2(b, a)) % np.float32(360.0)
    return hue, np.hypot(a, b)


def _hue_bin(hue: np.ndarray) -> np.ndarray:
    return np.minimum((hue // np.float32(360.0 / HUE_BINS)).astype(np.int64), HUE_BINS - 1)


def group_masks(truth_rgb: np.ndarray, truth_lab: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Boolean (H, W) masks of the coarse groups, from the ground truth's own pixels.

    No segmentation model is available, so the groups are colour boxes (coarse: sand, wood
    and brown hair pass the skin box; a blue car in the lower half counts as water):

    * ``all``: every pixel.
    * ``skin``: Chai & Ngan 1999's YCbCr box on 8-bit full-range BT.601 (unrounded):
      77 <= Cb <= 127, 133 <= Cr <= 173, and luma Y >= 40.
    * ``sky``: upper half (rows y < H // 2), h_ab in [200, 300), L* >= 50, C*_ab >= 5.
    * ``water``: lower half (rows y >= H // 2), h_ab in [180, 300), C*_ab >= 5.
    * ``vegetation``: h_ab in [105, 165), C*_ab >= 5 (anywhere).

    ``truth_lab`` is :func:`rgb_u8_to_lab` of ``truth_rgb`` when the caller already has it.
    """
    truth_rgb = np.asarray(truth_rgb)
    lab = rgb_u8_to_lab(truth_rgb) if truth_lab is None else truth_lab
    h = truth_rgb.shape[0]
    hue, chroma = _hue_chroma(lab)
    ycc = rgb_to_ycbcr(truth_rgb.astype(np.float32) / 255.0) * np.float32(255.0)
    y, cb, cr = ycc[..., 0], ycc[..., 1] + 128.0, ycc[..., 2] + 128.0
    upper = np.zeros(truth_rgb.shape[:2], bool)
    upper[: h // 2] = True
    coloured = chroma >= MIN_CHROMA

    def in_hue(box: tuple[float, float]) -> np.ndarray:
        return (hue >= box[0]) & (hue < box[1]) & coloured

    return {
        "all": np.ones(truth_rgb.shape[:2], bool),
        "skin": (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1]) & (cr >= SKIN_CR[0])
        & (cr <= SKIN_CR[1]) & (y >= SKIN_MIN_Y),
        "sky": upper & in_hue(SKY_HUE) & (lab[..., 0] >= SKY_MIN_L),
        "water": ~upper & in_hue(WATER_HUE),
        "vegetation": in_hue(VEGETATION_HUE),
    }


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (Lin 1991) of two nonnegative weight vectors, base 2, in
    [0, 1]: with P, Q the normalised vectors and M = (P + Q) / 2,
    ``JS = KL(P || M) / 2 + KL(Q || M) / 2`` (0 log 0 = 0).

    A vector of zero total weight (no colour at all) is its own point: JS is 0 when both are
    zero and 1.0 (maximal) when only one is.
    """
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"shapes differ: {p.shape} vs {q.shape}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("weights must be nonnegative")
    sp, sq = p.sum(), q.sum()
    if sp == 0 or sq == 0:
        return 0.0 if sp == sq else 1.0
    p, q = p / sp, q / sq
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return float(np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0))


@dataclass(frozen=True)
class HueGroupResult:
    """One group of :meth:`HueHistograms.result`: ``pixels`` in the group over the set;
    ``js`` the base-2 JS divergence of the two hue histograms (NaN when ``pixels`` is 0);
    ``pred_hist`` and ``truth_hist`` the (36,) chroma-weighted hue histograms normalised to
    sum 1 (all zeros when their weight is 0)."""

    pixels: int
    js: float
    pred_hist: np.ndarray
    truth_hist: np.ndarray


class HueHistograms:
    """Chroma-weighted CIE Lab hue histograms of prediction and truth per coarse group,
    accumulated over a set, compared by the Jensen-Shannon divergence.

    Each pixel of a group (:func:`group_masks`, defined on the *truth*) adds its chroma
    C*_ab to the bin of its hue h_ab (36 bins of 10°) - the prediction's hue and chroma to
    the prediction histogram, the truth's to the truth histogram - so gray pixels count for
    nothing (C*ab under ``HUE_MIN_CHROMA`` = 1 counts as neutral).  A prediction with zero
    weight on a group where the truth has some (an all-gray output) has JS 1.0 (maximally
    different); a group with no pixels has JS NaN.

    State: per group a pixel count (int64) and two (36,) float64 weight sums.
    """

    def __init__(self) -> None:
        self.pixels = np.zeros(len(GROUPS), np.int64)
        self.pred = np.zeros((len(GROUPS), HUE_BINS), np.float64)
        self.truth = np.zeros((len(GROUPS), HUE_BINS), np.float64)

    def update(self, pred_rgb: np.ndarray, truth_rgb: np.ndarray) -> None:
        """Add one image pair: uint8 RGB (H, W, 3) prediction and ground truth."""
        pred_rgb, truth_rgb = np.asarray(pred_rgb), np.asarray(truth_rgb)
        if pred_rgb.shape != truth_rgb.shape:
            raise ValueError(f"shapes differ: {pred_rgb.shape} vs {truth_rgb.shape}")
        truth_lab = rgb_u8_to_lab(truth_rgb)
        p_hue, p_chroma = _hue_chroma(rgb_u8_to_lab(pred_rgb))
        t_hue, t_chroma = _hue_chroma(truth_lab)
        p_bin, t_bin = _hue_bin(p_hue), _hue_bin(t_hue)
        # near-neutral pixels have no hue (float Lab gives gray a chroma of ~1e-5 in a
        # random direction): they weigh nothing
        p_chroma = np.where(p_chroma >= HUE_MIN_CHROMA, p_chroma, 0.0)
        t_chroma = np.where(t_chroma >= HUE_MIN_CHROMA, t_chroma, 0.0)
        masks = group_masks(truth_rgb, truth_lab)
        for g, name in enumerate(GROUPS):
            mask = masks[name]
            self.pixels[g] += int(np.count_nonzero(mask))
            self.pred[g] += np.bincount(p_bin[mask], p_chroma[mask], minlength=HUE_BINS)
            self.truth[g] += np.bincount(t_bin[mask], t_chroma[mask], minlength=HUE_BINS)

    def result(self) -> dict[str, HueGroupResult]:
        """Per group name (:data:`GROUPS`): pixel count, JS divergence, both histograms."""

        def norm(h: np.ndarray) -> np.ndarray:
            s = h.sum()
            return h / s if s > 0 else np.zeros_like(h)

        out = {}
        for g, name in enumerate(GROUPS):
            n = int(self.pixels[g])
            js = js_divergence(self.pred[g], self.truth[g]) if n else float("nan")
            out[name] = HueGroupResult(n, js, norm(self.pred[g]), norm(self.truth[g]))
        return out


# --------------------------------------------------------------------------------------------
# Colourfulness statistics
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColorfulnessStats:
    """Set-level colourfulness of one form (units: colourfulness on 0..255 RGB).

    ``mean_pred``/``mean_truth``: means of the per-image values; ``delta_cf``:
    |mean_pred - mean_truth| (DDColor's ΔCF); ``ratio``: mean_pred / mean_truth (NaN when
    mean_truth is 0); ``median_abs_diff``/``p90_abs_diff``: median and 90th percentile
    (``np.percentile``, linear) of per-image |CF(pred) - CF(truth)|; ``n``: images.
    """

    n: int
    mean_pred: float
    mean_truth: float
    delta_cf: float
    ratio: float
    median_abs_diff: float
    p90_abs_diff: float


def colorfulness_stats(pred_cf: np.ndarray, truth_cf: np.ndarray) -> ColorfulnessStats:
    """:class:`ColorfulnessStats` from paired per-image colourfulness values (element i of
    each belongs to image i), of one form: ``streamcolor.color.colorfulness`` (signed,
    Hasler & Süsstrunk 2003) or ``colorfulness_abs`` (DDColor's ``calculate_cf``)."""
    p = np.asarray(pred_cf, np.float64).ravel()
    t = np.asarray(truth_cf, np.float64).ravel()
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"expected two non-empty paired lists, got {p.size} and {t.size}")
    mp, mt = float(p.mean()), float(t.mean())
    diff = np.abs(p - t)
    return ColorfulnessStats(
        n=int(p.size),
        mean_pred=mp,
        mean_truth=mt,
        delta_cf=abs(mp - mt),
        ratio=mp / mt if mt != 0 else float("nan"),
        median_abs_diff=float(np.median(diff)),
        p90_abs_diff=float(np.percentile(diff, 90)),
    )


def colorfulness_stats_both(pred_abs: np.ndarray, truth_abs: np.ndarray,
                            pred_signed: np.ndarray, truth_signed: np.ndarray
                            ) -> dict[str, ColorfulnessStats]:
    """:func:`colorfulness_stats` of both forms -> ``{"abs": ..., "signed": ...}``."""
    return {"abs": colorfulness_stats(pred_abs, truth_abs),
            "signed": colorfulness_stats(pred_signed, truth_signed)}
