"""Pure functions of the batch job: the fixed percentile stretch, the tile grid and its
seamless blend, and the luma-preserving composition in data units."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamcolor.color import luma_preserving_rgb
from streamcolor.jobs.stretch import (
    BandHistogram,
    Stretch,
    fixed_8bit_stretch,
    parse_stretch,
    stretch_from_histograms,
)
from streamcolor.jobs.tiling import StripBlender, TileGrid, ramp, tile_starts


@pytest.mark.parametrize("dtype,lo,hi", [(np.uint16, 0, 65535), (np.int16, -9999, 3000),
                                         (np.uint8, 0, 255)])
def test_exact_histogram_percentiles_equal_numpy(dtype, lo, hi, rng):
    values = rng.integers(lo, hi + 1, 20000).astype(dtype)
    h = BandHistogram(np.dtype(dtype))
    for part in np.array_split(values, 7):  # window by window
        h.add(part)
    for q in (0, 1, 2.5, 50, 99, 100):
        assert h.percentile(q) == np.percentile(values, q, method="inverted_cdf")


def test_float_histogram_two_passes_is_close(rng):
    values = rng.normal(0.2, 0.05, 50000).astype(np.float32)
    h = BandHistogram(np.dtype(np.float32))
    assert h.needs_range
    h.add_range(values[:100])
    h.add_range(values[100:])
    h.finish_range()
    h.add(values)
    step = (values.max() - values.min()) / 65535
    for q in (1, 50, 99):
        assert abs(h.percentile(q) - np.percentile(values, q, method="inverted_cdf")) <= step


def test_twelve_bit_data_in_uint16_is_stretched_to_the_full_model_range(rng):
    """12-bit samples (0..4095) stored in uint16 reach the model over 0..1, not 1/16 of it."""
    img = rng.integers(0, 4096, (64, 64)).astype(np.uint16)
    h = BandHistogram(np.dtype(np.uint16))
    h.add(img.ravel())
    s = stretch_from_histograms([h], (1,), (1.0,), (1.0, 99.0), "file", "x.tif")
    p1, p99 = np.percentile(img, [1, 99], method="inverted_cdf")
    assert (s.low, s.high) == ((float(p1),), (float(p99),))
    y = s.apply(img[None])
    assert y.dtype == np.float32 and y.min() == 0.0 and y.max() == 1.0
    assert 0.45 < float(np.median(y)) < 0.55
    assert s.luma_scale == float(p99 - p1)


def test_stretch_tag_round_trips_and_inverts():
    s = Stretch((1, 2, 3), (10.0, 20.0, 30.0), (110.0, 220.0, 330.0), (1.0, 99.0), "sequence",
                (0.299, 0.587, 0.114))
    back = Stretch.from_tag(s.to_tag())
    assert back == s
    bands = np.array([[[60.0]], [[120.0]], [[180.0]]], np.float32)  # half way in each band
    assert s.apply(bands)[0, 0] == pytest.approx(0.5)
    assert s.luma_scale == pytest.approx(0.299 * 100 + 0.587 * 200 + 0.114 * 300)


def test_constant_band_and_all_nodata():
    h = BandHistogram(np.dtype(np.uint16))
    h.add(np.full(100, 7, np.uint16))
    s = stretch_from_histograms([h], (1,), (1.0,), (1.0, 99.0), "file", "c.tif")
    assert s.low == (7.0,) and s.high == (8.0,)
    empty = BandHistogram(np.dtype(np.uint16))
    with pytest.raises(ValueError, match=r"e\.tif: band 1 has no valid pixel"):
        stretch_from_histograms([empty], (1,), (1.0,), (1.0, 99.0), "file", "e.tif")


def test_fixed_8bit_stretch_is_identity_scale():
    s = fixed_8bit_stretch((1,), (1.0,))
    y = np.arange(256, dtype=np.uint8)[None, None]
    assert np.allclose(s.apply(y)[0], np.arange(256) / 255.0)
    assert s.luma_scale == 255.0


@pytest.mark.parametrize("text", ["99,1", "1", "a,b", "-1,50", "1,101"])
def test_parse_stretch_refuses(text):
    with pytest.raises(ValueError, match="--stretch"):
        parse_stretch(text)


# ---------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("length,tile,overlap", [(256, 256, 64), (300, 256, 64),
                                                 (1000, 256, 64), (10000, 256, 64),
                                                 (257, 64, 32)])
def test_tile_starts_cover_flush_with_enough_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    for a, b in itertools.pairwise(starts):
        assert a + tile - b >= overlap  # consecutive tiles overlap by at least `overlap`


def test_ramp_is_positive_and_flat_at_raster_edges():
    w = ramp(64, 16, at_start=True, at_end=False)
    assert w[0] == 1.0 and w[-1] < 0.1 and (w > 0).all()
    assert (ramp(64, 16, False, False)[16:48] == 1.0).all()


def _blend(grid: TileGrid, tile_chroma) -> np.ndarray:
    blender = StripBlender(grid)
    out = np.zeros((grid.height, grid.width, 2), np.float32)
    for row in blender.strips():
        for col in grid.cols:
            blender.add(row, col, tile_chroma(row, col))
        r0, rows = blender.finished()
        out[r0:r0 + rows.shape[0]] = rows
    return out


def test_blend_reproduces_a_smooth_chroma_field_without_steps():
    """Tiles that agree (a model that sees the same smooth field) blend back to that field
    exactly: no step at any tile border."""
    h, w = 300, 460
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.stack([np.sin(xx / 70.0) * 0.2, np.cos(yy / 50.0) * 0.2], -1)
    grid = TileGrid(h, w, 128, 32)
    assert grid.count > 6
    out = _blend(grid, lambda r, c: field[r:r + 128, c:c + 128])
    np.testing.assert_allclose(out, field, atol=1e-6)


def test_blend_turns_disagreeing_tiles_into_gradual_transitions(rng):
    """The worst case: every tile a different constant chroma.  Unblended, a border is a
    step of the full difference; blended, neighbouring pixels differ by about
    difference / overlap at most."""
    h, w, tile, overlap = 256, 400, 96, 32
    grid = TileGrid(h, w, tile, overlap)
    colours = {(r, c): rng.uniform(-0.3, 0.3, 2).astype(np.float32)
               for r in grid.rows for c in grid.cols}
    out = _blend(grid, lambda r, c: np.broadcast_to(colours[(r, c)], (tile, tile, 2)))
    spread = max(np.abs(a - b).max() for a in colours.values() for b in colours.values())
    step_x = np.abs(np.diff(out, axis=1)).max()
    step_y = np.abs(np.diff(out, axis=0)).max()
    assert max(step_x, step_y) <= 1.5 * spread / overlap
    # and the tile interiors keep their own colour
    r, c = grid.rows[0], grid.cols[0]
    np.testing.assert_allclose(out[r + 5, c + 5], colours[(r, c)], atol=1e-6)


def test_strip_blender_holds_two_strips_of_rows_not_the_raster():
    grid = TileGrid(5000, 300, 256, 64)
    blender = StripBlender(grid)
    biggest = 0
    for row in blender.strips():
        for col in grid.cols:
            blender.add(row, col, np.zeros((256, 256, 2), np.float32))
        biggest = max(biggest, blender._acc.shape[0])
        blender.finished()
    assert biggest <= 2 * 256


# ------------------------------------------------------------- luma-preserving composition
def test_luma_preserving_rgb_reference_values():
    """Against the BT.601 inverse by hand: Y=100, Cb=0.1, Cr=-0.05 (in 255 units)."""
    y = np.array([[100.0]], np.float32)
    chroma = np.array([[[0.1, -0.05]]], np.float32)
    rgb = luma_preserving_rgb(y, chroma, 255.0, 0.0, 255.0, integer=False)[:, 0, 0]
    cb, cr = 0.1 * 255, -0.05 * 255
    expect = [100 + 1.402 * cr, 100 - 0.344136 * cb - 0.714136 * cr, 100 + 1.772 * cb]
    np.testing.assert_allclose(rgb, expect, atol=1e-3)


def test_luma_is_kept_exactly_in_16_bit_even_where_a_channel_would_clip(rng):
    y = rng.integers(0, 65536, (200, 200)).astype(np.uint16)
    chroma = rng.uniform(-0.5, 0.5, (200, 200, 2)).astype(np.float32)
    rgb = luma_preserving_rgb(y, chroma, 30000.0, 0.0, 65535.0, integer=True)
    assert rgb.min() >= 0 and rgb.max() <= 65535 and (rgb == np.rint(rgb)).all()
    luma = 0.299 * rgb[0].astype(np.float64) + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert np.array_equal(np.rint(luma).astype(np.int64), y.astype(np.int64))
    # a per-channel clip would have changed the luma of the saturated pixels
    naive = np.clip(y[None] + np.moveaxis(chroma @ np.array(
        [[0, 1.402], [-0.344136, -0.714136], [1.772, 0]]).T * 30000.0, -1, 0), 0, 65535)
    naive_luma = 0.299 * naive[0] + 0.587 * naive[1] + 0.114 * naive[2]
    assert np.abs(naive_luma - y).max() > 1000
