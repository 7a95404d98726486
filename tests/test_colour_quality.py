"""streamcolor.eval.colour_quality against hand-computed and brute-force reference values:
KID, bootstrap intervals, Zhang et al.'s AuC, hue histograms per group, colourfulness."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from streamcolor.color import colorfulness, colorfulness_abs
from streamcolor.eval.colour_quality import (
    AB_BIN_LIMIT,
    AB_BINS_PER_AXIS,
    GROUPS,
    ColorAccuracyAuc,
    HueHistograms,
    _kid,
    _mmd2,
    ab_bin,
    bootstrap_ci,
    colorfulness_stats,
    colorfulness_stats_both,
    frechet_distance_ci,
    group_masks,
    js_divergence,
    kid,
    kid_ci,
    rgb_u8_to_lab,
)
from streamcolor.eval.metrics import feature_stats, frechet_distance

# ------------------------------------------------------------------------------------------
# KID
# ------------------------------------------------------------------------------------------


def _k(u: np.ndarray, v: np.ndarray) -> float:
    d = len(u)
    return (sum(float(p) * float(q) for p, q in zip(u, v, strict=True)) / d + 1.0) ** 3


def _mmd2_loop(x: np.ndarray, y: np.ndarray, skip=None) -> float:
    """Unbiased MMD² by double loops; ``skip(kind, i, j)`` drops a pair."""
    skip = skip or (lambda kind, i, j: False)
    sums = {}
    for kind, u, v, diag in (("xx", x, x, True), ("yy", y, y, True), ("xy", x, y, False)):
        total, count = 0.0, 0
        for i in range(len(u)):
            for j in range(len(v)):
                if (diag and i == j) or skip(kind, i, j):
                    continue
                total += _k(u[i], v[j])
                count += 1
        sums[kind] = total / count
    return sums["xx"] + sums["yy"] - 2.0 * sums["xy"]


def test_kid_full_sets_match_double_loop():
    r = np.random.default_rng(3)
    a = r.integers(-3, 4, size=(5, 3)).astype(np.float64)
    b = r.integers(-2, 5, size=(5, 3)).astype(np.float64)
    mean, std = kid(a, b, subsets=7, subset_size=1000)
    assert mean == pytest.approx(_mmd2_loop(a, b), rel=1e-12)
    assert std == 0.0  # every subset is the full set: one value


def test_kid_subsets_match_double_loop_with_same_draws():
    r = np.random.default_rng(4)
    a = r.normal(size=(7, 3))
    b = r.normal(size=(6, 3)) + 0.5
    mean, std = kid(a, b, subsets=3, subset_size=4, rng=np.random.default_rng(11))
    g = np.random.default_rng(11)
    values = []
    for _ in range(3):  # the documented draw order: a's rows, then b's rows
        sa = g.choice(7, 4, replace=False)
        sb = g.choice(6, 4, replace=False)
        values.append(_mmd2_loop(a[sa], b[sb]))
    assert mean == pytest.approx(np.mean(values), rel=1e-12)
    assert std == pytest.approx(np.std(values), rel=1e-9)


def test_kid_is_unbiased_in_expectation():
    """Two samples of one distribution: the mean over many draws is 0 within its standard
    error, while the biased (V-statistic) form is clearly positive."""
    r = np.random.default_rng(5)
    unbiased, biased = [], []
    for _ in range(400):
        x, y = r.normal(size=(10, 3)), r.normal(size=(10, 3))
        unbiased.append(kid(x, y)[0])
        kxx, kyy, kxy = ((p @ q.T / 3 + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    se = np.std(unbiased) / math.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * se
    assert np.mean(biased) > 10 * se


def test_kid_ignores_row_order_and_grows_with_shift():
    r = np.random.default_rng(6)
    a = r.normal(size=(60, 4))
    b = r.normal(size=(60, 4))
    base = kid(a, b)[0]
    assert kid(a[r.permutation(60)], b[r.permutation(60)])[0] == pytest.approx(base, rel=1e-9)
    shifted = [kid(a, b + s)[0] for s in (0.5, 1.0, 2.0)]
    assert abs(base) < shifted[0] < shifted[1] < shifted[2]


def test_copy_aware_mmd2_matches_double_loop_and_plain_form():
    """A bootstrap resample's MMD² never pairs two different draws of one image."""
    r = np.random.default_rng(7)
    a, b = r.normal(size=(6, 3)), r.normal(size=(6, 3))
    idx = np.array([0, 0, 2, 3, 3, 3])
    pos = np.arange(6)

    def skip(kind: str, i: int, j: int) -> bool:
        return idx[i] == idx[j] and (kind != "xy" or i != j)

    got = _mmd2(a[idx], b[idx], idx, idx, pos, pos)
    assert got == pytest.approx(_mmd2_loop(a[idx], b[idx], skip), rel=1e-12)
    # distinct images: the copy-aware form is the plain estimator
    assert _mmd2(a, b, pos, pos, pos, pos) == pytest.approx(_mmd2(a, b), rel=1e-12)
    assert _kid(a[idx], b[idx], 5, 100, np.random.default_rng(0), ids=idx)[0] == \
        pytest.approx(got, rel=1e-12)


def test_paired_kid_leaves_out_each_images_own_pair():
    r = np.random.default_rng(12)
    a, b = r.normal(size=(7, 3)), r.normal(size=(7, 3))
    own = _mmd2_loop(a, b, lambda kind, i, j: kind == "xy" and i == j)
    assert kid(a, b, paired=True)[0] == pytest.approx(own, rel=1e-12)
    # in a resample with copies: no pair of one image anywhere, the same draw's neither
    idx, pos = np.array([0, 0, 2, 3, 3, 3]), np.arange(6)
    got = _mmd2(a[idx], b[idx], idx, idx, pos, pos, paired=True)
    assert got == pytest.approx(_mmd2_loop(a[idx], b[idx], lambda k, i, j: idx[i] == idx[j]),
                                rel=1e-12)
    # subsets drawn separately: pairs of one image left out wherever the draws meet
    mean, _ = kid(a, b, subsets=3, subset_size=5, rng=np.random.default_rng(4), paired=True)
    g, values = np.random.default_rng(4), []
    for _ in range(3):
        sa, sb = g.choice(7, 5, replace=False), g.choice(7, 5, replace=False)
        values.append(_mmd2_loop(a[sa], b[sb], lambda k, i, j, sa=sa, sb=sb:
                                 k == "xy" and sa[i] == sb[j]))
    assert mean == pytest.approx(np.mean(values), rel=1e-12)


def test_paired_kid_is_unbiased_where_outputs_follow_their_truths():
    """Outputs = truths + noise, drawn from the truths' own distribution: the plain estimator
    counts each output with its own truth and goes well below zero; the paired one does not."""
    r = np.random.default_rng(13)
    plain, paired = [], []
    for _ in range(60):
        t = r.normal(size=(40, 4))
        out = 0.8 * t + 0.6 * r.normal(size=(40, 4))  # same N(0, 1) marginals, correlated
        plain.append(kid(out, t)[0])
        paired.append(kid(out, t, paired=True)[0])
    spread = np.std(paired) / np.sqrt(len(paired))
    assert abs(np.mean(paired)) < 3 * spread
    assert np.mean(plain) < -10 * spread


# ------------------------------------------------------------------------------------------
# Bootstrap
# ------------------------------------------------------------------------------------------


def test_bootstrap_percentiles_of_known_replicates():
    """The statistic returns its call number: point 0, replicates 1..100, whose 2.5 and 97.5
    percentiles (linear interpolation at rank 99 q) are 3.475 and 97.525."""
    calls = iter(range(1000))
    a = np.zeros((5, 2))
    point, low, high = bootstrap_ci(a, a, lambda x, y: float(next(calls)), n_boot=100)
    assert (point, low, high) == (0.0, pytest.approx(3.475), pytest.approx(97.525))
    calls = iter(range(1000))
    _, low, high = bootstrap_ci(a, a, lambda x, y: float(next(calls)), n_boot=100, level=0.5)
    assert (low, high) == (pytest.approx(25.75), pytest.approx(75.25))


def test_bootstrap_constant_and_two_point_distributions():
    const = np.full((8, 3), 2.5)
    assert bootstrap_ci(const, const * 2, lambda x, y: float(y.mean() - x.mean())) == \
        (2.5, 2.5, 2.5)
    # mean of a resample of [0, 1]: 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    a = np.array([[0.0], [1.0]])
    assert bootstrap_ci(a, a, lambda x, y: float(x.mean()), n_boot=400) == (0.5, 0.0, 1.0)


def test_bootstrap_resamples_pairs_jointly_and_is_seeded():
    a = np.arange(10.0)[:, None]
    b = 10.0 * a
    seen = []

    def stat(x: np.ndarray, y: np.ndarray) -> float:
        assert np.array_equal(y, 10.0 * x)  # row i of each belongs to image i
        seen.append(len(np.unique(x)))
        return float(x.mean())

    first = bootstrap_ci(a, b, stat, n_boot=50, rng=np.random.default_rng(1))
    assert min(seen[1:]) < 10  # resampled with replacement
    assert bootstrap_ci(a, b, stat, n_boot=50, rng=np.random.default_rng(1)) == first
    assert bootstrap_ci(a, b, stat, n_boot=50, rng=np.random.default_rng(2)) != first
    with pytest.raises(ValueError):
        bootstrap_ci(a, b[:-1], stat)


def test_frechet_and_kid_intervals():
    r = np.random.default_rng(8)
    a = r.normal(size=(40, 3))
    b = a + r.normal(size=(40, 3)) * 0.5 + 0.3
    point, low, high = frechet_distance_ci(a, b, n_boot=50, rng=np.random.default_rng(0))
    assert point == pytest.approx(frechet_distance(*feature_stats(a), *feature_stats(b)))
    assert low <= high
    assert frechet_distance_ci(a, b, n_boot=50, rng=np.random.default_rng(0)) == \
        (point, low, high)

    point, low, high = kid_ci(a, b, n_boot=50, rng=np.random.default_rng(0))
    assert point == pytest.approx(kid(a, b, paired=True)[0], rel=1e-12)
    assert low < point < high


def test_kid_interval_has_no_copy_bias():
    """Same-distribution sets: the copy-aware interval holds the point estimate; counting
    pairs of copies (the naive bootstrap of kid) shifts the whole interval above it."""
    r = np.random.default_rng(9)
    a, b = r.normal(size=(50, 8)), r.normal(size=(50, 8))
    point, low, high = kid_ci(a, b, n_boot=100)
    assert low < point < high
    _, naive_low, _ = bootstrap_ci(a, b, lambda x, y: kid(x, y)[0], n_boot=100)
    assert naive_low > point


# ------------------------------------------------------------------------------------------
# Zhang et al. AuC
# ------------------------------------------------------------------------------------------


def test_ab_bin_nearest_centre():
    centre = AB_BIN_LIMIT * AB_BINS_PER_AXIS + AB_BIN_LIMIT
    ab = np.array([[0.0, 0.0], [4.9, -5.0], [5.0, 14.9], [-200.0, 200.0]], np.float32)
    assert ab_bin(ab).tolist() == [centre, centre, centre + AB_BINS_PER_AXIS + 1,
                                   AB_BINS_PER_AXIS - 1]


def test_auc_identical_images_is_one():
    img = np.random.default_rng(0).integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    acc = ColorAccuracyAuc()
    acc.update(img, img)
    res = acc.result()
    assert (res.auc, res.auc_rebalanced, res.pixels) == (1.0, 1.0, 16 * 24)
    assert np.all(res.curve == 1.0) and len(res.curve) == 151


@pytest.mark.parametrize(("shift", "ceil_d"), [((3.0, 4.0), 5), ((1.0, 1.0), 2),
                                               ((0.0, 150.0), 150), ((0.0, 151.0), 151)])
def test_auc_constant_shift(shift, ceil_d):
    """Error d everywhere: curve 0 for t < ceil(d), 1 from there; AuC (151 - ceil d) / 151."""
    truth = np.stack(np.meshgrid(np.arange(-40, 40, 7.5), np.arange(-60, 50, 12.5)), -1)
    truth = truth.astype(np.float32)
    acc = ColorAccuracyAuc()
    acc.update_ab(truth + np.float32(shift), truth)
    res = acc.result()
    expected = np.arange(151) >= ceil_d
    assert np.array_equal(res.curve, expected.astype(float))
    assert res.auc == pytest.approx((151 - ceil_d) / 151)
    assert res.auc_rebalanced == pytest.approx((151 - ceil_d) / 151)


def test_auc_constant_colour_shift_from_rgb():
    truth = np.full((4, 6, 3), (120, 150, 90), np.uint8)
    pred = np.full((4, 6, 3), (150, 140, 100), np.uint8)
    lab_t = cv2.cvtColor(truth[:1, :1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0]
    lab_p = cv2.cvtColor(pred[:1, :1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0]
    d = math.hypot(float(lab_p[1] - lab_t[1]), float(lab_p[2] - lab_t[2]))
    assert 0.05 < d - math.floor(d) < 0.95  # safely between integers
    acc = ColorAccuracyAuc()
    acc.update(pred, truth)
    assert acc.result().auc == pytest.approx((151 - math.ceil(d)) / 151)


def test_auc_rebalanced_weights_each_truth_bin_equally():
    """3 pixels of a common bin exact, 1 pixel of a rare bin off by d: plain weights 3:1,
    rebalanced 1:1."""
    truth = np.array([[0, 0], [0, 0], [0, 0], [50, 50]], np.float32)
    wrong = truth.copy()
    wrong[3] = (-60, -60)  # distance 155.6 > 150: never within
    acc = ColorAccuracyAuc()
    acc.update_ab(wrong, truth)
    res = acc.result()
    assert (res.auc, res.auc_rebalanced, res.bins) == (0.75, 0.5, 2)

    near = truth.copy()
    near[3] = (56, 58)  # distance 10: wrong for t = 0..9 only
    acc = ColorAccuracyAuc()
    acc.update_ab(near, truth)
    res = acc.result()
    assert res.auc == pytest.approx((0.75 * 10 + 141) / 151)
    assert res.auc_rebalanced == pytest.approx((0.5 * 10 + 141) / 151)
    assert res.auc - res.auc_rebalanced == pytest.approx(2.5 / 151)


def test_auc_streams_and_handles_empty():
    r = np.random.default_rng(1)
    pred = r.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
    truth = r.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
    whole, parts = ColorAccuracyAuc(), ColorAccuracyAuc()
    whole.update(pred, truth)
    parts.update(pred[:4], truth[:4])
    parts.update(pred[4:], truth[4:])
    assert np.array_equal(whole.hist, parts.hist) and whole.hist.dtype == np.int64
    assert 0.0 < whole.result().auc_rebalanced < 1.0
    assert math.isnan(ColorAccuracyAuc().result().auc)


# ------------------------------------------------------------------------------------------
# Hue histograms
# ------------------------------------------------------------------------------------------


def test_js_divergence_reference_values():
    assert js_divergence([1, 2, 3], [2, 4, 6]) == 0.0  # identical once normalised
    assert js_divergence([1, 0, 0], [0, 2, 5]) == pytest.approx(1.0)
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4): JS = 3/2 - (3/4) log2 3
    assert js_divergence([4, 0], [1, 1]) == pytest.approx(1.5 - 0.75 * math.log2(3))
    assert js_divergence([0, 0], [0, 0]) == 0.0
    assert js_divergence([0, 0], [1, 3]) == 1.0
    with pytest.raises(ValueError):
        js_divergence([-1, 2], [1, 1])


SKIN = [(255, 224, 196), (224, 172, 105), (141, 85, 36)]
SKY = [(135, 206, 235), (70, 130, 180), (200, 220, 240)]
FOLIAGE = [(34, 139, 34), (154, 205, 50), (107, 142, 35), (50, 80, 30)]
NEITHER = [(128, 128, 128), (255, 0, 0), (255, 255, 0), (20, 10, 5)]


def _groups_of(colour, row: int) -> set[str]:
    """Groups of a pixel of ``colour`` in row ``row`` of a 2-row image (row 0 = upper half)."""
    img = np.full((2, 1, 3), 128, np.uint8)
    img[row, 0] = colour
    return {name for name, mask in group_masks(img).items() if mask[row, 0]}


@pytest.mark.parametrize("row", [0, 1])
def test_reference_colours_land_in_their_groups(row):
    for c in SKIN:
        assert _groups_of(c, row) == {"all", "skin"}, c
    for c in SKY:
        assert _groups_of(c, row) == {"all", "sky" if row == 0 else "water"}, c
    for c in FOLIAGE:
        assert _groups_of(c, row) == {"all", "vegetation"}, c
    for c in NEITHER:  # gray, pure red, pure yellow, too dark for skin
        assert _groups_of(c, row) == {"all"}, c
    turquoise, dim_blue = (64, 224, 208), (30, 80, 200)  # water hues, not sky (hue; L*)
    assert _groups_of(turquoise, row) == ({"all"} if row == 0 else {"all", "water"})
    assert _groups_of(dim_blue, row) == ({"all"} if row == 0 else {"all", "water"})


def _lab_px(colour) -> tuple[float, float]:
    """(hue bin, chroma) of one colour, straight from cv2."""
    lab = rgb_u8_to_lab(np.array([[colour]], np.uint8))[0, 0].astype(np.float64)
    hue = math.degrees(math.atan2(lab[2], lab[1])) % 360
    return int(hue // 10), math.hypot(lab[1], lab[2])


def test_hue_histograms_reference_cases():
    green, skin, red = FOLIAGE[0], SKIN[1], (255, 0, 0)
    truth = np.array([[green, green], [skin, skin]], np.uint8)  # 2x2: greens on top
    same = HueHistograms()
    same.update(truth, truth)
    res = same.result()
    assert [res[g].pixels for g in GROUPS] == [4, 2, 0, 0, 2]
    for g in ("all", "skin", "vegetation"):
        assert res[g].js == 0.0 and res[g].pred_hist.sum() == pytest.approx(1.0)
    assert math.isnan(res["sky"].js) and not res["sky"].pred_hist.any()

    gray = HueHistograms()
    gray.update(np.full_like(truth, 128), truth)
    assert gray.result()["vegetation"].js == 1.0  # zero prediction weight: maximal

    # prediction: one green pixel right, the other red: P = (C_g, C_r), Q = (2 C_g, 0)
    pred = truth.copy()
    pred[0, 1] = red
    acc = HueHistograms()
    acc.update(pred, truth)
    veg = acc.result()["vegetation"]
    (bg, cg), (br, cr) = _lab_px(green), _lab_px(red)
    p, q = np.array([cg, cr]) / (cg + cr), np.array([1.0, 0.0])
    m = (p + q) / 2
    expected = 0.5 * sum(pi * math.log2(pi / mi) for pi, mi in zip(p, m, strict=True)) + \
        0.5 * math.log2(1 / m[0])
    assert veg.js == pytest.approx(expected, rel=1e-5)
    assert veg.pred_hist[bg] == pytest.approx(p[0], rel=1e-5)
    assert veg.pred_hist[br] == pytest.approx(p[1], rel=1e-5)
    assert veg.truth_hist[bg] == 1.0
    assert acc.result()["skin"].js == 0.0

    acc.update(pred, truth)  # a second image: counts add up, shares stay
    assert acc.result()["vegetation"].pixels == 4
    assert acc.result()["vegetation"].js == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------------------------
# Colourfulness
# ------------------------------------------------------------------------------------------


def test_colorfulness_stats_hand_values():
    s = colorfulness_stats([10, 20, 30, 40], [12, 18, 35, 30])
    assert (s.n, s.mean_pred, s.mean_truth) == (4, 25.0, 23.75)
    assert s.delta_cf == pytest.approx(1.25)
    assert s.ratio == pytest.approx(20 / 19)
    # |differences| sorted 2, 2, 5, 10: median 3.5, 90th percentile at rank 2.7 -> 8.5
    assert (s.median_abs_diff, s.p90_abs_diff) == (3.5, pytest.approx(8.5))
    assert math.isnan(colorfulness_stats([1, 2], [0, 0]).ratio)
    with pytest.raises(ValueError):
        colorfulness_stats([1, 2], [1])


def test_colorfulness_stats_both_forms_on_images():
    r = np.random.default_rng(2)
    truth = [r.integers(0, 256, size=(8, 8, 3), dtype=np.uint8) for _ in range(3)]
    pred = [np.repeat(t.mean(axis=2, keepdims=True).astype(np.uint8), 3, 2) for t in truth]
    both = colorfulness_stats_both([colorfulness_abs(p) for p in pred],
                                   [colorfulness_abs(t) for t in truth],
                                   [colorfulness(p) for p in pred],
                                   [colorfulness(t) for t in truth])
    for form, fn in (("abs", colorfulness_abs), ("signed", colorfulness)):
        s = both[form]
        assert s.mean_pred == 0.0 and s.ratio == 0.0  # gray predictions
        assert s.delta_cf == pytest.approx(np.mean([fn(t) for t in truth]))


def test_a_gray_output_of_any_luma_has_no_hue():
    """Float Lab gives R = G = B a chroma of ~1e-5 in a random direction; such near-neutral
    pixels weigh nothing, so an all-gray output is maximally far from a coloured truth."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (48, 48, 3)).astype(np.uint8)
    luma = (truth @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    h = HueHistograms()
    h.update(np.repeat(luma[..., None], 3, axis=2), truth)
    res = h.result()
    assert all(res[g].js == 1.0 for g in res if res[g].pixels)
    assert res["all"].pred_hist.sum() == 0.0
