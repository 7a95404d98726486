"""The causal temporal chroma smoother: less flicker, objects keep their colour, cuts reset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scenes import BG_CHROMA, OBJ_CHROMA, OBJ_CHROMA_RIGHT, compose, moving_object, noisy, texture

from streamcolor.eval.flicker import cdc, warp_error
from streamcolor.frames import Frame
from streamcolor.temporal.smoother import SmootherSettings, TemporalSmoother, make_chroma_filter


def smooth(lumas, chroma, strength=0.9, **kw):
    s = TemporalSmoother(strength, **kw)
    return [s.step(y, c, i) for i, (y, c) in enumerate(zip(lumas, chroma, strict=True))], s


def test_smoothing_lowers_flicker_and_the_moving_object_keeps_its_colour():
    scene = moving_object(frames=30, step=3, h=128, w=192, size=36)
    model = noisy(scene.chroma, sigma=0.04)
    out, s = smooth(scene.lumas, model)
    assert s.cuts == []
    rgb_model = [compose(y, c) for y, c in zip(scene.lumas, model, strict=True)]
    rgb_out = [compose(y, c) for y, c in zip(scene.lumas, out, strict=True)]
    assert warp_error(rgb_out, scene.lumas) < 0.3 * warp_error(rgb_model, scene.lumas)
    # CDC only sees how many pixels change histogram bin, not by how much, so a few levels of
    # residual change already count nearly fully: it drops less than the warping error.
    assert cdc(rgb_out) < 0.75 * cdc(rgb_model)

    # static background: frame-to-frame chroma change shrinks a lot
    bg = ~np.any(scene.masks, axis=0)
    bg[:4], bg[-4:], bg[:, :4], bg[:, -4:] = False, False, False, False
    jitter_model = np.mean([np.abs(b - a)[bg].mean() for a, b in itertools.pairwise(model[10:])])
    jitter_out = np.mean([np.abs(b - a)[bg].mean() for a, b in itertools.pairwise(out[10:])])
    assert jitter_out < 0.4 * jitter_model

    # the moving object is smoothed too, along its motion (its interior, frame to frame) ...
    def object_jitter(seq: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(seq[t][scene.halves[t][k]] -
                                     seq[t - 1][scene.halves[t - 1][k]]).mean()
                              for t in range(11, len(seq)) for k in (0, 1)]))

    assert object_jitter(out) < 0.5 * object_jitter(model)
    # ... and after moving 87 px both its halves keep their own colours
    left, right = scene.halves[-1]
    np.testing.assert_allclose(out[-1][left].mean(axis=0), OBJ_CHROMA, atol=0.03)
    np.testing.assert_allclose(out[-1][right].mean(axis=0), OBJ_CHROMA_RIGHT, atol=0.03)
    np.testing.assert_allclose(out[-1][bg].mean(axis=0), BG_CHROMA, atol=0.02)


def test_smoothing_does_not_wash_out_colour():
    scene = moving_object(frames=20)
    model = noisy(scene.chroma, sigma=0.03)
    out, _ = smooth(scene.lumas, model)
    sat_model = np.mean([np.abs(c).mean() for c in model[5:]])
    sat_out = np.mean([np.abs(c).mean() for c in out[5:]])
    assert sat_out > 0.9 * sat_model


def test_no_colour_crosses_a_hard_cut():
    a = moving_object(frames=8, seed=0)
    b_luma = [np.clip(texture(64, 96, seed=7, lo=0, hi=80) + i, 0, 255).astype(np.uint8)
              for i in range(6)]
    lumas = a.lumas + b_luma
    red = np.full((64, 96, 2), (-0.1, 0.3), np.float32)
    blue = np.full((64, 96, 2), (0.3, -0.1), np.float32)
    chroma = [red] * 8 + [blue] * 6
    out, s = smooth(lumas, chroma, strength=0.95)
    assert s.cuts == [8]
    np.testing.assert_array_equal(out[8], blue)  # the first frame after the cut is fresh
    for o in out[8:]:
        np.testing.assert_allclose(o, blue, atol=1e-6)


def test_strength_zero_and_first_frame_pass_through(rng):
    scene = moving_object(frames=5)
    model = noisy(scene.chroma, 0.05)
    out, _ = smooth(scene.lumas, model, strength=0.0)
    for o, m in zip(out, model, strict=True):
        np.testing.assert_array_equal(o, m)
    out, _ = smooth(scene.lumas, model, strength=0.9)
    np.testing.assert_array_equal(out[0], model[0])
    assert not np.array_equal(out[3], model[3])
    assert make_chroma_filter(0) is None
    assert isinstance(make_chroma_filter(0.5), TemporalSmoother)


def test_size_change_resets_and_reset_forgets():
    s = TemporalSmoother(0.9)
    y = texture(64, 96, seed=1).astype(np.uint8)
    c1 = np.full((32, 48, 2), 0.2, np.float32)
    s.step(y, c1)
    c2 = np.full((40, 40, 2), -0.2, np.float32)
    np.testing.assert_array_equal(s.step(texture(80, 80, 2).astype(np.uint8), c2), c2)
    s.reset()
    np.testing.assert_array_equal(s.step(y, c1), c1)


def test_chroma_at_render_resolution_luma_at_full_and_16_bit():
    scene = moving_object(frames=6, h=96, w=144)
    small = [np.ascontiguousarray(c[::3, ::3]) for c in noisy(scene.chroma, 0.05)]
    luma16 = [y.astype(np.uint16) * 257 for y in scene.lumas]
    out8, _ = smooth(scene.lumas, small)
    out16, _ = smooth(luma16, small)
    assert out8[-1].shape == small[-1].shape and out8[-1].dtype == np.float32
    np.testing.assert_allclose(out8[-1], out16[-1], atol=1e-6)


def test_update_takes_pipeline_frames():
    scene = moving_object(frames=3)
    s = TemporalSmoother()
    pairs = enumerate(zip(scene.lumas, scene.chroma, strict=True))
    outs = [s.update(Frame(y, i), c) for i, (y, c) in pairs]
    assert len(outs) == 3 and outs[-1].shape == scene.chroma[-1].shape


@pytest.mark.parametrize("kw", [dict(strength=-0.1), dict(strength=1.0),
                                dict(photo_low=5, photo_high=5), dict(flow_scale=0)])
def test_settings_are_validated(kw):
    with pytest.raises(ValueError):
        SmootherSettings(**kw)
