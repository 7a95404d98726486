"""Flicker metrics (CDC, warping error), flow helpers and cut detection against hand-computed
values on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scenes import compose, moving_object, noisy, texture

from streamcolor.eval.flicker import (
    CDCMeter,
    FlowPair,
    FlowPairs,
    cdc,
    channel_histograms,
    js_divergence,
    pair_warp_error,
    warp_error,
)
from streamcolor.temporal.flow import FlowEstimator, occlusion_mask, resize_flow, warp
from streamcolor.temporal.scenecut import SceneCutDetector

LN2 = math.log(2)


def const(v: int | tuple[int, int, int], h: int = 2, w: int = 2) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[...] = v
    return img


def test_js_divergence_hand_values():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(LN2)
    assert js_divergence([0.5, 0.5], [1, 0]) == pytest.approx(0.75 * math.log(4 / 3))
    assert js_divergence([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0)
    # unnormalised inputs are normalised first, like scipy.stats.entropy
    assert js_divergence([2, 0], [0, 7]) == pytest.approx(LN2)


def test_js_divergence_matches_scipy(rng):
    from scipy.spatial.distance import jensenshannon

    p, q = rng.random(256), rng.random(256)
    p[:40] = 0
    assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9)


def test_channel_histograms_normalised_by_pixels():
    img = np.array([[[0, 10, 255], [0, 10, 255]], [[0, 20, 255], [5, 20, 255]]], np.uint8)
    h = channel_histograms(img)
    assert h.shape == (3, 256)
    assert h[0, 0] == 0.75 and h[0, 5] == 0.25
    assert h[1, 10] == 0.5 and h[1, 20] == 0.5
    assert h[2, 255] == 1.0
    np.testing.assert_allclose(h.sum(axis=1), 1.0)


def test_cdc_hand_computed():
    # values 0,0,10,10,10 in every channel: JS is ln 2 between different frames, 0 otherwise.
    frames = [const(v) for v in (0, 0, 10, 10, 10)]
    d1 = LN2 / 4  # pairs (0,0) (0,10) (10,10) (10,10)
    d2 = 2 * LN2 / 3  # (0,10) (0,10) (10,10)
    d4 = LN2  # (0,10)
    assert cdc(frames) == pytest.approx((d1 + d2 + d4) / 3)


def test_cdc_channels_are_averaged():
    # only the red channel changes (every frame): per-channel CDC is (ln2, 0, 0).
    frames = [const((0 if i % 2 else 200, 50, 60)) for i in range(6)]
    # d=1 and d=4... d=1: every pair differs; d=2 and d=4: every pair is equal.
    assert cdc(frames) == pytest.approx((LN2 / 3) / 3)


def test_cdc_matches_a_direct_tcvc_style_computation(rng):
    from scipy.stats import entropy

    frames = [rng.integers(0, 256, (8, 6, 3), dtype=np.uint8) for _ in range(9)]
    hists = [[np.bincount(f[..., c].ravel(), minlength=256) / (8 * 6) for c in range(3)]
             for f in frames]
    per_channel = np.zeros(3)
    for d in (1, 2, 4):
        for c in range(3):
            js = []
            for i in range(len(frames) - d):
                p, q = hists[i][c], hists[i + d][c]
                m = (p + q) / 2
                js.append(0.5 * entropy(p, m) + 0.5 * entropy(q, m))
            per_channel[c] += np.mean(js) / 3
    assert cdc(frames) == pytest.approx(float(np.mean(per_channel)), rel=1e-9)


def test_cdc_needs_more_frames_than_the_largest_dilation():
    meter = CDCMeter()
    for _ in range(4):
        meter.add(const(3))
    assert math.isnan(meter.value)
    meter.add(const(3))
    assert meter.value == 0.0
    assert meter.per_frame == [0.0] * 4


def test_pair_warp_error_hand_computed():
    prev = np.zeros((2, 3, 3), np.float32)
    cur = np.zeros((2, 3, 3), np.float32)
    cur[0, 0] = 0.5  # differs at one pixel, all three channels
    cur[1, 2] = 1.0  # and here, but that pixel is occluded
    valid = np.ones((2, 3), np.float32)
    valid[1, 2] = 0
    pair = FlowPair(np.zeros((2, 3, 2), np.float32), valid)
    # sum over 5 valid pixels x 3 channels of diff^2 = 3 * 0.25, divided by 15
    assert pair_warp_error(prev, cur, pair) == pytest.approx(0.75 / 15)
    # uint8 inputs are scaled to [0, 1]
    assert pair_warp_error((prev * 255).astype(np.uint8), (cur * 255).astype(np.uint8),
                           pair) == pytest.approx(0.75 / 15, rel=1e-2)
    # nothing valid: Lai et al. divide by the number of elements (and the sum is zero)
    assert pair_warp_error(prev, cur, FlowPair(pair.flow, np.zeros_like(valid))) == 0.0


def test_pair_warp_error_follows_the_flow():
    rng = np.random.default_rng(0)
    prev = rng.random((6, 8, 3)).astype(np.float32)
    cur = np.roll(prev, 1, axis=1)  # content moves one pixel right
    flow = np.zeros((6, 8, 2), np.float32)
    flow[..., 0] = 1.0
    valid = np.ones((6, 8), np.float32)
    valid[:, -1] = 0  # the last column maps outside the frame
    assert pair_warp_error(prev, cur, FlowPair(flow, valid)) == pytest.approx(0.0, abs=1e-12)
    assert pair_warp_error(prev, cur, FlowPair(np.zeros_like(flow), valid)) > 0.01


def test_warp_samples_at_x_plus_flow():
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = 1.0
    flow[..., 1] = 0.5
    out = warp(img, flow)
    assert out[0, 0] == pytest.approx((img[0, 1] + img[1, 1]) / 2)
    assert out[1, 3] == pytest.approx((img[1, 3] + img[2, 3]) / 2)  # clamped at the border


def test_occlusion_mask_forward_backward_rule():
    shift = np.zeros((8, 8, 2), np.float32)
    shift[..., 0] = 1.0
    assert not occlusion_mask(shift, -shift).any()  # consistent translation
    assert occlusion_mask(2 * shift, np.zeros_like(shift)).all()  # residual 4 > 0.01*4 + 0.5
    # a residual just under the threshold passes: |0.7|^2 = 0.49 < 0.5 + 0.01 * 0.49
    assert not occlusion_mask(0.7 * shift, np.zeros_like(shift)).any()
    # a motion boundary (flow jumps by 1 px between columns 3 and 4) is masked there
    step = np.zeros((8, 8, 2), np.float32)
    step[:, 4:, 0] = 1.0
    back = np.zeros_like(step)
    back[:, 5:, 0] = -1.0
    mask = occlusion_mask(step, back)
    assert mask[:, 3].all() and not mask[:, 0].any()


def test_resize_flow_scales_vectors():
    f = np.ones((4, 6, 2), np.float32)
    out = resize_flow(f, 8, 12)
    assert out.shape == (8, 12, 2)
    np.testing.assert_allclose(out[..., 0], 2.0)
    np.testing.assert_allclose(out[..., 1], 2.0)


def test_dis_recovers_a_translation():
    a = texture(64, 80, seed=3).astype(np.uint8)
    b = np.roll(a, 3, axis=1)
    flow = FlowEstimator("medium")(a, b)
    assert np.median(flow[8:-8, 8:-8, 0]) == pytest.approx(3.0, abs=0.3)
    assert np.median(np.abs(flow[8:-8, 8:-8, 1])) < 0.3


def test_warp_error_separates_flicker_from_steady_colour():
    scene = moving_object(frames=10)
    steady = [compose(y, c) for y, c in zip(scene.lumas, scene.chroma, strict=True)]
    noisy_chroma = noisy(scene.chroma, 0.05)
    flicker = [compose(y, c) for y, c in zip(scene.lumas, noisy_chroma, strict=True)]
    e_steady = warp_error(steady, scene.lumas)
    e_flicker = warp_error(flicker, scene.lumas)
    assert e_flicker > 3 * e_steady
    assert cdc(flicker) > 2 * cdc(steady)


def test_flow_pairs_flag_cuts_and_skip_them_in_warp_error():
    a = moving_object(frames=4, seed=0)
    b = moving_object(frames=4, seed=9)
    lumas = a.lumas + [np.clip(y.astype(int) // 3, 0, 255).astype(np.uint8) for y in b.lumas]
    pairs = FlowPairs()
    flags = [p.cut for p in (pairs.add(y) for y in lumas) if p is not None]
    assert flags == [False, False, False, True, False, False, False]


def test_scene_cut_detector():
    det = SceneCutDetector()
    base = texture(72, 96, seed=1)
    seq = [base, np.roll(base, 4, axis=1), np.roll(base, 8, axis=1),  # pan: no cut
           base + 12, base + 24,  # fade/flicker: no cut
           texture(72, 96, seed=2, lo=0, hi=90)]  # another, darker shot: cut
    flags = [det.update(np.clip(s, 0, 255).astype(np.uint8)) for s in seq]
    assert flags == [False, False, False, False, False, True]
    det.reset()
    assert det.update(seq[0].astype(np.uint8)) is False
