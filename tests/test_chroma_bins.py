"""Quantised chroma of the hybrid head: bins, soft encoding, rebalancing, gamut mask, annealed
mean and the rebalanced cross-entropy, each against a direct computation or hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from streamcolor.color import rgb_to_ycbcr, ycbcr_to_rgb
from streamcolor.model.networks import chroma_bins as cb


def _in_gamut_chroma(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) Y, Cb, Cr of random RGB colours."""
    return rgb_to_ycbcr(rng.random((n, 3)).astype(np.float32))


def test_bins_are_the_projection_of_the_rgb_cube(rng):
    centers, lut = cb.bin_centers(), cb.bin_lut()
    assert centers.shape == (cb.num_bins(), 2) == (397, 2)
    assert np.all(np.abs(centers) <= 0.5)
    np.testing.assert_array_equal(centers[cb.neutral_bin()], [0.0, 0.0])
    # the look-up table and the centres agree
    ij = np.argwhere(lut >= 0)
    np.testing.assert_allclose(centers[lut[ij[:, 0], ij[:, 1]]], (ij - cb.HALF_CELLS) * cb.GRID,
                               atol=1e-6)
    # every colour's nearest grid point is a bin (also off the lattice the bins were made on)
    ycc = _in_gamut_chroma(rng, 20000)
    cells = np.rint(ycc[:, 1:] / cb.GRID).astype(int) + cb.HALF_CELLS
    assert np.all(lut[cells[:, 0], cells[:, 1]] >= 0)
    # and a grid corner no colour reaches is not (pure Cb = Cr = +0.5 does not exist)
    assert lut[-1, -1] == -1


def test_soft_encoding_matches_the_brute_force_reference_and_round_trips(rng):
    chroma = _in_gamut_chroma(rng, 500)[:, 1:]
    ref = cb.soft_encode(chroma)  # (500, K), brute force over every bin
    x = torch.from_numpy(chroma.T.copy()).reshape(1, 2, 20, 25)
    idx, w = cb.soft_encode_torch(x, torch.from_numpy(cb.bin_lut()))
    dense = torch.zeros(1, cb.num_bins(), 20, 25, dtype=torch.float64)
    dense.scatter_add_(1, idx, w.double())
    got = dense.reshape(cb.num_bins(), -1).T.numpy()
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert np.allclose(got.sum(1), 1.0)
    # decoding the soft target by its expectation lands near the colour (Gaussian weights of
    # half a cell around it): within a quarter of a cell on average, half a cell at worst
    back = got @ cb.bin_centers().astype(np.float64)
    err = np.linalg.norm(back - chroma, axis=1)
    assert err.mean() < 0.25 * cb.GRID and err.max() < 0.5 * cb.GRID
    # the first index is the nearest bin
    nearest = cb.nearest_bin_torch(x, torch.from_numpy(cb.bin_lut())).reshape(-1).numpy()
    d = np.linalg.norm(chroma[:, None] - cb.bin_centers()[None], axis=2)
    np.testing.assert_array_equal(nearest, d.argmin(1))


def test_soft_encoding_of_a_bin_centre_by_hand():
    """At a bin centre the 5 nearest are the centre and its 4 edge neighbours (distance one
    cell, weight exp(-1/(2*0.5^2)) = exp(-2) relative to the centre's)."""
    enc = cb.soft_encode(np.array([[0.0, 0.0]]))[0]
    lut = cb.bin_lut()
    c = cb.HALF_CELLS
    centre, side = 1 / (1 + 4 * math.exp(-2)), math.exp(-2) / (1 + 4 * math.exp(-2))
    assert enc[lut[c, c]] == pytest.approx(centre)
    for i, j in ((c + 1, c), (c - 1, c), (c, c + 1), (c, c - 1)):
        assert enc[lut[i, j]] == pytest.approx(side)
    assert np.count_nonzero(enc) == 5


def test_rebalancing_weights_on_hand_built_distributions():
    q = 4
    # a uniform prior needs no rebalancing
    np.testing.assert_allclose(cb.rebalance_weights(np.full(q, 1 / q)), np.ones(q))
    # lambda = 1: uniform weights whatever the prior
    p = np.array([0.7, 0.2, 0.1, 0.0])
    np.testing.assert_allclose(cb.rebalance_weights(p, lam=1.0), np.ones(q))
    # lambda = 0.5 (Zhang): w ∝ 1 / (0.5 p + 0.125), normalised so that sum p w = 1
    raw = 1 / (0.5 * p + 0.5 / q)
    expect = raw / (p * raw).sum()
    w = cb.rebalance_weights(p)
    np.testing.assert_allclose(w, expect)
    assert (p * w).sum() == pytest.approx(1.0)
    assert w[3] > w[2] > w[1] > w[0]  # rarer colours weigh more
    assert w[3] / w[0] == pytest.approx((0.5 * 0.7 + 0.125) / 0.125)
    # lambda = 0: pure inverse frequency on the support
    w0 = cb.rebalance_weights(np.array([0.75, 0.25]), lam=0.0)
    np.testing.assert_allclose(w0, [2 / 3, 2.0])


def test_prior_counts_nearest_bins_and_smooths_by_half_a_cell():
    lut, c = cb.bin_lut(), cb.HALF_CELLS
    samples = np.zeros((100, 2))  # all neutral
    p = cb.bin_prior(samples)
    assert p.sum() == pytest.approx(1.0) and p.argmax() == lut[c, c]
    # a Gaussian of sigma 0.5 cells: an edge neighbour gets exp(-2) of the centre
    assert p[lut[c + 1, c]] / p[lut[c, c]] == pytest.approx(math.exp(-2), rel=1e-6)
    assert p[lut[c + 1, c + 1]] / p[lut[c, c]] == pytest.approx(math.exp(-4), rel=1e-6)


def test_gamut_mask_against_explicit_rgb(rng):
    centers = cb.bin_centers()
    y = rng.random(300).astype(np.float32)
    mask = cb.gamut_mask(y, centers, slack=0.0)  # (300, K)
    ycc = np.concatenate([np.repeat(y[:, None, None], len(centers), 1),
                          np.broadcast_to(centers, (300, *centers.shape))], axis=2)
    rgb = ycbcr_to_rgb(ycc)
    explicit = np.all((rgb >= -1e-6) & (rgb <= 1 + 1e-6), axis=2)
    np.testing.assert_array_equal(mask, explicit)
    assert mask[:, cb.neutral_bin()].all()  # gray is possible at every luma
    # at white and black only gray is; mid-gray allows the most colours
    edge = cb.gamut_mask(np.array([0.0, 1.0, 0.5], np.float32), centers, slack=0.0)
    assert edge[0].sum() == edge[1].sum() == 1 and edge[2].sum() > 100
    # the torch bounds are the numpy ones, slack included
    lo, hi = cb.luma_bounds_torch()
    nlo, nhi = cb.luma_bounds(centers)
    np.testing.assert_allclose(lo.numpy(), nlo)
    np.testing.assert_allclose(hi.numpy(), nhi)
    assert np.all(nlo < cb.luma_bounds(centers, 0.0)[0])


@pytest.mark.parametrize("t", [1.0, 0.38, 0.1])
def test_annealed_mean_against_a_direct_computation(rng, t):
    k = cb.num_bins()
    logits = rng.normal(0, 2, (2, k, 3, 4)).astype(np.float32)
    luma = rng.random((2, 1, 3, 4)).astype(np.float32)
    lo, hi = cb.luma_bounds_torch()
    got = cb.annealed_mean_torch(torch.from_numpy(logits), torch.from_numpy(luma),
                                 torch.from_numpy(cb.bin_centers()), lo, hi, t).numpy()
    # direct: per pixel, softmax(z/T) over the bins allowed at its luma, expectation of centres
    centers = cb.bin_centers().astype(np.float64)
    allowed = cb.gamut_mask(luma[:, 0], centers)  # (2, 3, 4, K)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                z = logits[b, :, i, j].astype(np.float64) / t
                z = np.where(allowed[b, i, j], z, -np.inf)
                p = np.exp(z - z.max())
                p /= p.sum()
                np.testing.assert_allclose(got[b, :, i, j], p @ centers, atol=1e-5)
    ref = cb.annealed_mean(logits.transpose(0, 2, 3, 1), t, allowed)
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1), ref, atol=1e-5)


def test_annealing_moves_from_the_mean_to_the_mode():
    """Two colours, 60/40 at T = 1: the mean lies between them; T -> 0 gives the mode."""
    lut, c = cb.bin_lut(), cb.HALF_CELLS
    a, b = lut[c + 4, c - 2], lut[c - 3, c + 3]
    logits = np.full(cb.num_bins(), -50.0)
    logits[a], logits[b] = math.log(0.6), math.log(0.4)
    centers = cb.bin_centers().astype(np.float64)
    mean = cb.annealed_mean(logits, 1.0)
    np.testing.assert_allclose(mean, 0.6 * centers[a] + 0.4 * centers[b], atol=1e-9)
    np.testing.assert_allclose(cb.annealed_mean(logits, 0.02), centers[a], atol=1e-6)
    # Zhang's 0.38 is in between, nearer the mode
    mid = cb.annealed_mean(logits, 0.38)
    assert np.linalg.norm(mid - centers[a]) < np.linalg.norm(mean - centers[a])
    # more saturated than the mean: annealing restores the colour averaging takes away
    assert np.linalg.norm(mid) > np.linalg.norm(mean)


def test_rebalanced_cross_entropy_against_the_dense_formula(rng):
    k = cb.num_bins()
    logits = torch.from_numpy(rng.normal(0, 1, (2, k, 4, 5)).astype(np.float32))
    target = torch.from_numpy(_in_gamut_chroma(rng, 2 * 8 * 10)[:, 1:].T.copy()
                              ).reshape(2, 2, 8, 10)
    prior = cb.bin_prior(rng.normal(0, 0.08, (5000, 2)))
    weights = torch.from_numpy(cb.rebalance_weights(prior)).float()
    lut = torch.from_numpy(cb.bin_lut())
    got = cb.rebalanced_cross_entropy(logits, target, lut, weights)
    # dense: soft targets of the 2x2-averaged truth, -sum t log p, times w(nearest bin)
    small = torch.nn.functional.avg_pool2d(target, 2).numpy()
    t = cb.soft_encode(small.transpose(0, 2, 3, 1))  # (2, 4, 5, K)
    logp = torch.log_softmax(logits.double(), 1).numpy().transpose(0, 2, 3, 1)
    ce = -(t * logp).sum(-1)
    near = t.argmax(-1)
    expect = (ce * weights.double().numpy()[near]).mean()
    assert float(got) == pytest.approx(expect, rel=1e-5)
    assert float(cb.rebalanced_cross_entropy(logits, target, lut, None)) == \
        pytest.approx(ce.mean(), rel=1e-5)
