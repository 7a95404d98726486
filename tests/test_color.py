"""Colour math (pure functions) and render sizes against hand-computed reference values."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from streamcolor import color
from streamcolor.frames import Frame
from streamcolor.model.colorizer import render_size


@pytest.mark.parametrize(
    ("rgb", "ycc"),
    [
        ((1.0, 0.0, 0.0), (0.299, -0.168736, 0.5)),
        ((0.0, 1.0, 0.0), (0.587, -0.331264, -0.418688)),
        ((0.0, 0.0, 1.0), (0.114, 0.5, -0.081312)),
        ((1.0, 1.0, 1.0), (1.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((0.5, 0.5, 0.5), (0.5, 0.0, 0.0)),
    ],
)
def test_rgb_to_ycbcr_known_values(rgb, ycc):
    got = color.rgb_to_ycbcr(np.array(rgb))
    np.testing.assert_allclose(got, ycc, atol=2e-6)
    back = color.ycbcr_to_rgb(np.array(ycc))
    np.testing.assert_allclose(back, rgb, atol=2e-5)


def test_ycbcr_round_trip_random(rng):
    rgb = rng.random((7, 5, 3), dtype=np.float32)
    ycc = color.rgb_to_ycbcr(rgb)
    assert ycc.shape == rgb.shape
    assert ycc[..., 0].min() >= -1e-6 and ycc[..., 0].max() <= 1 + 1e-6
    assert np.abs(ycc[..., 1:]).max() <= 0.5 + 1e-6
    np.testing.assert_allclose(color.ycbcr_to_rgb(ycc), rgb, atol=1e-5)


def test_ycbcr_to_rgb_known_and_unclipped():
    # R = Y + 1.402 Cr, G = Y - 0.344136 Cb - 0.714136 Cr, B = Y + 1.772 Cb
    np.testing.assert_allclose(color.ycbcr_to_rgb(np.array([0.5, 0.0, 0.2])),
                               [0.5 + 1.402 * 0.2, 0.5 - 0.714136 * 0.2, 0.5], atol=1e-5)
    np.testing.assert_allclose(color.ycbcr_to_rgb(np.array([0.5, -0.1, 0.0])),
                               [0.5, 0.5 + 0.0344136, 0.5 - 0.1772], atol=1e-5)
    out = color.ycbcr_to_rgb(np.array([1.0, 0.0, 0.5]))
    assert out[0] == pytest.approx(1.701, abs=1e-4)  # not clipped


def test_rgb_to_luma_u8_known_values():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 10, 10]]],
                   dtype=np.uint8)
    # 76.245 -> 76, 149.685 -> 150, 29.07 -> 29
    assert color.rgb_to_luma_u8(rgb).tolist() == [[76, 150, 29, 255, 10]]


def test_merge_luma_chroma_zero_chroma_is_gray_and_clipped():
    y = np.array([[0, 17, 128, 255]], dtype=np.uint8)
    rgb = color.merge_luma_chroma_u8(y, np.zeros((1, 4, 2), np.float32))
    assert rgb.dtype == np.uint8
    assert (rgb == y[..., None]).all()
    # full red chroma on white luma saturates R and is clipped into 0..1 / 0..255
    f = color.merge_luma_chroma(np.array([[1.0]]), np.array([[[0.0, 0.5]]]))
    assert f.max() <= 1.0 and f.min() >= 0.0
    assert f[0, 0, 0] == 1.0 and f[0, 0, 1] < 0.7
    u8 = color.merge_luma_chroma_u8(np.array([[76]], np.uint8),
                                    color.rgb_to_ycbcr(np.array([[[1.0, 0, 0]]]))[..., 1:])
    np.testing.assert_allclose(u8[0, 0], [255, 0, 0], atol=1)


def test_limited_to_full_luma():
    y = np.array([0, 16, 126, 235, 255], dtype=np.uint8)
    assert color.limited_to_full_luma(y).tolist() == [0, 0, 128, 255, 255]


def test_chroma_to_u8_limited_and_full():
    c = np.array([-0.5, -0.25, 0.0, 0.25, 0.5], dtype=np.float32)
    assert color.chroma_to_u8(c, limited=True).tolist() == [16, 72, 128, 184, 240]
    assert color.chroma_to_u8(c, limited=False).tolist() == [0, 64, 128, 192, 255]
    assert color.chroma_to_u8(np.array([2.0, -2.0]), limited=True).tolist() == [255, 0]


def test_u8_to_chroma_limited_and_full_and_round_trip(rng):
    assert color.u8_to_chroma(np.array([16, 128, 240], np.uint8), limited=True).tolist() == \
        pytest.approx([-0.5, 0.0, 0.5])
    np.testing.assert_allclose(color.u8_to_chroma(np.array([0, 128, 255], np.uint8), False),
                               [-128 / 255, 0.0, 127 / 255], atol=1e-7)
    c = rng.uniform(-0.45, 0.45, size=200).astype(np.float32)
    for limited, scale in ((True, 224.0), (False, 255.0)):
        back = color.u8_to_chroma(color.chroma_to_u8(c, limited), limited)
        assert np.abs(back - c).max() <= 0.5 / scale + 1e-6
    planes = np.arange(256, dtype=np.uint8)
    assert (color.chroma_to_u8(color.u8_to_chroma(planes, False), False) == planes).all()


def test_colorfulness_gray_is_zero_and_hand_value(rng):
    gray = np.repeat(rng.integers(0, 256, (9, 11, 1)), 3, axis=2).astype(np.uint8)
    assert color.colorfulness(gray) == 0.0
    two = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    # rg = [255, 0], yb = [127.5, -255]; population std and mean by hand
    expected = math.sqrt(127.5 ** 2 + 191.25 ** 2) + 0.3 * math.sqrt(127.5 ** 2 + 63.75 ** 2)
    assert color.colorfulness(two) == pytest.approx(expected, rel=1e-12)
    assert color.colorfulness(two.astype(np.float32)) == pytest.approx(expected, rel=1e-6)


def test_colorfulness_absolute_form_hand_value():
    """DDColor's calculate_cf form: |R-G| and |(R+G)/2-B| before the statistics."""
    two = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    # |rg| = [255, 0]: mean 127.5, std 127.5; |yb| = [127.5, 255]: mean 191.25, std 63.75
    expected = math.sqrt(127.5 ** 2 + 63.75 ** 2) + 0.3 * math.sqrt(127.5 ** 2 + 191.25 ** 2)
    assert color.colorfulness_abs(two) == pytest.approx(expected, rel=1e-12)
    gray = np.full((4, 4, 3), 77, np.uint8)
    assert color.colorfulness_abs(gray) == 0.0
    # opposite hues: in the signed form they spread (std), in the absolute form they agree
    rc = np.array([[[200, 50, 50], [50, 200, 200]]], dtype=np.uint8)
    assert color.colorfulness_abs(rc) == pytest.approx(0.3 * math.hypot(150, 75), rel=1e-12)


def test_psnr(rng):
    a = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert color.psnr(a, a.copy()) == float("inf")
    z = np.zeros((4, 4), np.uint8)
    b = z.copy()
    b[0, 0] = 16  # mse = 256 / 16 = 16
    assert color.psnr(z, b) == pytest.approx(10 * math.log10(255 ** 2 / 16.0), rel=1e-12)
    assert color.psnr(z, b, peak=1.0) == pytest.approx(10 * math.log10(1 / 16.0), rel=1e-12)
    # uint8 inputs must not wrap around when subtracted
    assert color.psnr(np.array([0], np.uint8), np.array([255], np.uint8)) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("h", "w", "rf", "expected"),
    [
        (480, 640, 16, (224, 288)),
        (640, 480, 16, (288, 224)),
        (256, 256, 16, (256, 256)),
        (1080, 1920, 16, (192, 352)),
        (48, 64, 4, (64, 64)),
        (10, 10000, 16, (32, 8096)),
        (336, 336, 21, (352, 352)),  # 336/32 = 10.5: halves round up, never below DeOldify's
    ],
)
def test_render_size_known(h, w, rf, expected):
    assert render_size(h, w, rf) == expected


@pytest.mark.parametrize("rf", [4, 8, 12, 16, 21, 35])
@pytest.mark.parametrize(("h", "w"), [(480, 640), (49, 65), (1080, 1920), (720, 540), (100, 300)])
def test_render_size_aspect_and_multiple(h, w, rf):
    rh, rw = render_size(h, w, rf)
    assert rh % 32 == 0 and rw % 32 == 0 and rh >= 32 and rw >= 32
    side = rf * 16
    ideal_w, ideal_h = side * math.sqrt(w / h), side / math.sqrt(w / h)
    # nearest multiples of 32 of the aspect-keeping sides of area side²
    assert abs(rw - ideal_w) <= 16 + 1e-9 or rw == 32
    assert abs(rh - ideal_h) <= 16 + 1e-9 or rh == 32
    if min(ideal_w, ideal_h) >= 128:  # large renders: aspect kept to within rounding
        assert rw / rh == pytest.approx(w / h, rel=0.25)


def test_colorizer_render_size_uses_its_render_factor(colorizer):
    assert colorizer.render_factor == 4
    assert colorizer.render_size(480, 640) == render_size(480, 640, 4) == (64, 64)


def test_frame_model_luma_ranges():
    y = np.array([[0, 16, 235, 255]], np.uint8)
    full = Frame(y, 0, full_range=True).model_luma()
    np.testing.assert_allclose(full, [[0, 16 / 255, 235 / 255, 1.0]], atol=1e-7)
    tv = Frame(y, 0, full_range=False).model_luma()
    np.testing.assert_allclose(tv, [[0.0, 0.0, 1.0, 1.0]], atol=1e-7)
    y16 = np.array([[0, 65535]], np.uint16)
    np.testing.assert_allclose(Frame(y16, 0).model_luma(), [[0.0, 1.0]])
    f = Frame(y, 3, pts=1001, time_base=Fraction(1, 30000))
    assert f.time == pytest.approx(1001 / 30000) and (f.height, f.width) == (1, 4)
    assert Frame(y, 0).time is None
