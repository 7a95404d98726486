"""Geo and bit depth through one batch file: every field a GeoTIFF carries is written, read
back and compared (on synthetic files and on the real 16-bit Landsat tiles and the int16 CBERS
series of ../shared/data/satellite); the source's luma is kept exactly; nodata, masks and
extra bands survive; PNG and JPEG keep their format and depth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.transform import Affine

from streamcolor.errors import InvalidInputError
from streamcolor.io.rasters import open_raster, pick_luma_bands
from streamcolor.jobs.raster import RasterSettings, colorize_raster, compute_stretch
from streamcolor.jobs.stretch import Stretch

SAT = Path(__file__).resolve().parents[2] / "shared" / "data" / "satellite"


def require_satellite() -> Path:
    if not SAT.is_dir():
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"{SAT} is missing (CI clones ../shared beside the checkout)")
        pytest.skip("needs ../shared/data/satellite beside the checkout")
    return SAT


def _luma(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]


def _write_geotiff(path: Path, data: np.ndarray, **extra) -> Path:
    count = data.shape[0]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=count,
                   dtype=data.dtype.name, crs=CRS.from_epsg(32633),
                   transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0),
                   compress="deflate", tiled=True, blockxsize=128, blockysize=128)
    profile.update(extra.pop("profile", {}))
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        for step in extra.values():
            step(ds)
    return path


def _fields(path: Path) -> dict:
    with rasterio.open(path) as ds:
        return {"crs": ds.crs, "transform": ds.transform, "size": (ds.width, ds.height),
                "dtype": ds.dtypes[0], "nodata": ds.nodata, "tags": ds.tags(),
                "ns": {ns: ds.tags(ns=ns) for ns in ds.tag_namespaces()
                       if ns not in ("IMAGE_STRUCTURE", "DERIVED_SUBDATASETS")},
                "band_tags": [ds.tags(b) for b in ds.indexes],
                "descriptions": ds.descriptions, "colorinterp": ds.colorinterp,
                "scales": ds.scales, "offsets": ds.offsets, "units": ds.units,
                "overviews": ds.overviews(1), "count": ds.count,
                "mask_flags": ds.mask_flag_enums, "compress": ds.compression,
                "data": ds.read(), "mask": ds.dataset_mask()}


@pytest.fixture(scope="module")
def full_geotiff(tmp_path_factory):
    """One gray band + NIR, uint16, with every field set: tags in two namespaces and
    AREA_OR_POINT=Point, per-band tags, descriptions, units, scales/offsets, nodata,
    overviews."""
    d = tmp_path_factory.mktemp("geo")
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:300, 0:420]
    gray = (2000 + 1500 * np.sin(xx / 30.0) * np.cos(yy / 40.0)
            + rng.normal(0, 50, (300, 420))).astype(np.uint16)
    gray[:20, :30] = 0  # nodata corner
    nir = rng.integers(100, 9000, (300, 420)).astype(np.uint16)

    def meta(ds):
        ds.update_tags(AREA_OR_POINT="Point", SENSOR="synthetic", ACQUISITION_DATE="2020-01-02")
        ds.update_tags(ns="CUSTOM_NS", KEY="value")
        ds.update_tags(1, WAVELENGTH="0.45-0.9")
        ds.update_tags(2, WAVELENGTH="0.85")
        ds.set_band_description(1, "panchromatic")
        ds.set_band_description(2, "nir")
        ds.set_band_unit(1, "DN")
        ds.set_band_unit(2, "DN")
        ds.scales = (0.0001, 0.0002)
        ds.offsets = (-0.1, 0.0)
        ds.colorinterp = [ColorInterp.gray, ColorInterp.undefined]
        ds.build_overviews([2, 4], Resampling.average)

    return _write_geotiff(d / "pan_nir.tif", np.stack([gray, nir]), profile={"nodata": 0},
                          meta=meta)


def test_every_geotiff_field_round_trips(full_geotiff, colorizer, tmp_path):
    out = tmp_path / "out" / "pan_nir.tif"
    res = colorize_raster(full_geotiff, out, colorizer, RasterSettings(overlap=16),
                          model_info={"name": "tiny"})
    assert res.tiles > 20  # 300x420 in the tiny model's 64 px tiles
    src, dst = _fields(full_geotiff), _fields(out)
    assert not [p for p in out.parent.iterdir() if p != out], "a side file or temporary left"
    for k in ("crs", "transform", "size", "dtype", "nodata", "compress"):
        assert dst[k] == src[k], k
    assert dst["count"] == 4  # R, G, B + the NIR band passed through
    for k, v in src["tags"].items():  # AREA_OR_POINT=Point included (a copy makes it Area)
        assert dst["tags"][k] == v, k
    assert dst["ns"]["CUSTOM_NS"] == src["ns"]["CUSTOM_NS"]
    assert dst["band_tags"] == [src["band_tags"][0]] * 3 + [src["band_tags"][1]]
    assert dst["descriptions"] == ("panchromatic (red)", "panchromatic (green)",
                                   "panchromatic (blue)", "nir")
    assert dst["colorinterp"] == (ColorInterp.red, ColorInterp.green, ColorInterp.blue,
                                  ColorInterp.undefined)
    assert dst["units"] == ("DN",) * 4
    assert dst["scales"] == (0.0001,) * 3 + (0.0002,)
    assert dst["offsets"] == (-0.1,) * 3 + (0.0,)
    assert dst["overviews"] == src["overviews"] == [2, 4]
    np.testing.assert_array_equal(dst["data"][3], src["data"][1])  # NIR untouched
    stretch = Stretch.from_tag(dst["tags"]["STREAMCOLOR_STRETCH"])
    assert stretch == res.stretch and stretch.scope == "file"
    assert json.loads(dst["tags"]["STREAMCOLOR_MODEL"]) == {"name": "tiny"}


def test_sixteen_bit_luma_is_kept_exactly_and_nodata_stays_nodata(full_geotiff, colorizer,
                                                                  tmp_path):
    out = tmp_path / "o.tif"
    colorize_raster(full_geotiff, out, colorizer, RasterSettings(overlap=16))
    with rasterio.open(full_geotiff) as s, rasterio.open(out) as d:
        gray, rgb = s.read(1), d.read([1, 2, 3])
    valid = gray != 0
    assert np.array_equal(np.rint(_luma(rgb))[valid], gray[valid].astype(np.float64))
    assert (rgb[:, ~valid] == 0).all()  # nodata in every colour band
    assert not (rgb[:, valid] == 0).all(axis=0).any()  # a valid pixel is never nodata
    spread = np.abs(rgb[0].astype(int) - rgb[2].astype(int))[valid]
    assert spread.mean() > 5  # coloured, not gray


def test_internal_mask_is_kept(colorizer, tmp_path, rng):
    data = rng.integers(1000, 3000, (1, 100, 130)).astype(np.uint16)

    def mask(ds):
        m = np.full((100, 130), 255, np.uint8)
        m[40:60, 50:90] = 0
        ds.write_mask(m)

    src = _write_geotiff(tmp_path / "m.tif", data, mask=mask)
    out = tmp_path / "o" / "m.tif"
    colorize_raster(src, out, colorizer, RasterSettings())
    assert np.array_equal(_fields(out)["mask"], _fields(src)["mask"])


@pytest.mark.parametrize("name", ["l8gw_224077_r0000c0000.tif", "l8gw_224077_r0768c1536.tif"])
def test_real_landsat_16_bit_tiles_round_trip(name, colorizer, tmp_path):
    src = require_satellite() / "tiles16" / name
    out = tmp_path / name
    colorize_raster(src, out, colorizer, RasterSettings())
    s, d = _fields(src), _fields(out)
    for k in ("crs", "transform", "size", "dtype", "nodata", "descriptions", "colorinterp",
              "scales", "offsets", "count", "band_tags", "overviews"):
        assert d[k] == s[k], k
    for k, v in s["tags"].items():
        assert d["tags"][k] == v, k
    assert s["tags"]["AREA_OR_POINT"] == "Point"
    # an RGB source: the output's luma is the source's BT.601 luma (to rounding)
    assert np.abs(_luma(d["data"]) - _luma(s["data"])).max() <= 0.3
    assert Stretch.from_tag(d["tags"]["STREAMCOLOR_STRETCH"]).bands == (1, 2, 3)


def test_real_int16_cbers_frame_keeps_nodata_nir_and_signed_type(colorizer, tmp_path):
    seq = require_satellite() / "sequences" / "cbers4_awfi_sits_int16"
    src = sorted(seq.glob("*.tif"))[0]
    # a nodata hole, to check it survives (the shipped frames are all valid)
    holed = tmp_path / "holed.tif"
    with rasterio.open(src) as s:
        profile, data, tags = s.profile, s.read(), s.tags()
        desc, ci = s.descriptions, s.colorinterp
    data[:, 10:15, 20:30] = -9999
    with rasterio.open(holed, "w", **profile) as ds:
        ds.write(data)
        ds.update_tags(**tags)
        for i, t in enumerate(desc, 1):
            ds.set_band_description(i, t)
        ds.colorinterp = ci
    for path in (src, holed):
        out = tmp_path / "out" / path.name
        colorize_raster(path, out, colorizer, RasterSettings())
        s, d = _fields(path), _fields(out)
        for k in ("crs", "transform", "size", "dtype", "nodata", "descriptions", "count"):
            assert d[k] == s[k], k
        assert d["dtype"] == "int16" and d["nodata"] == -9999
        for k, v in s["tags"].items():
            assert d["tags"][k] == v, k
        np.testing.assert_array_equal(d["data"][3], s["data"][3])  # NIR
        valid = (s["data"][:3] != -9999).all(axis=0)
        assert (d["data"][:3, ~valid] == -9999).all()
        assert np.abs(_luma(d["data"]) - _luma(s["data"]))[valid].max() <= 0.3
    assert (~valid).sum() == 50


def test_luma_bands_by_colour_interpretation_or_description():
    assert pick_luma_bands(3, (ColorInterp.red, ColorInterp.green, ColorInterp.blue),
                           (None,) * 3) == (1, 2, 3)
    assert pick_luma_bands(4, (ColorInterp.gray,) + (ColorInterp.undefined,) * 3,
                           ("nir (B16)", "blue (B13)", "green (B14)", "red (B15)")) == (4, 3, 2)
    assert pick_luma_bands(2, (ColorInterp.gray, ColorInterp.undefined), (None, None)) == (1,)


def test_sequence_stretch_is_shared_and_differs_from_per_file(colorizer):
    seq = require_satellite() / "sequences" / "cbers4_awfi_sits_int16"
    frames = sorted(seq.glob("*.tif"))[:6]
    shared = compute_stretch(frames, RasterSettings(), "sequence")
    own = [compute_stretch([f], RasterSettings(), "file") for f in frames]
    assert shared.scope == "sequence" and len({s.low for s in own}) > 1
    # the shared percentiles are those of all frames' valid pixels together
    vals = []
    for f in frames:
        with rasterio.open(f) as ds:
            vals.append(ds.read(1)[ds.read(1) != -9999])
    allv = np.concatenate(vals)
    assert shared.low[0] == np.percentile(allv, 1, method="inverted_cdf")
    assert shared.high[0] == np.percentile(allv, 99, method="inverted_cdf")


def test_sixteen_bit_png_gray_becomes_sixteen_bit_rgb_png(colorizer, tmp_path, rng):
    xx = np.mgrid[0:90, 0:150][1]
    gray = (20000 + 15000 * np.sin(xx / 20.0)).astype(np.uint16)
    src = tmp_path / "g16.png"
    cv2.imwrite(str(src), gray)
    out = tmp_path / "o" / "g16.png"
    colorize_raster(src, out, colorizer, RasterSettings())
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (90, 150, 3)
    rgb = np.moveaxis(back[..., ::-1], -1, 0)
    assert np.array_equal(np.rint(_luma(rgb)), gray.astype(np.float64))


def test_png_alpha_passes_through_and_jpeg_stays_jpeg(colorizer, tmp_path, rng):
    g = rng.integers(0, 256, (40, 60))
    alpha = np.full((40, 60), 255)
    alpha[:10, :10] = 0
    src = tmp_path / "ga.png"  # gray + alpha (OpenCV reads and writes it as BGRA)
    cv2.imwrite(str(src), np.stack([g, g, g, alpha], -1).astype(np.uint8))
    colorize_raster(src, tmp_path / "o" / "ga.png", colorizer, RasterSettings())
    back = cv2.imread(str(tmp_path / "o" / "ga.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (40, 60, 4)
    np.testing.assert_array_equal(back[..., 3], alpha)
    assert np.abs(np.rint(_luma(np.moveaxis(back[..., 2::-1], -1, 0))) - g).max() <= 1
    jpg = tmp_path / "p.jpg"
    cv2.imwrite(str(jpg), rng.integers(0, 256, (50, 70)).astype(np.uint8))
    colorize_raster(jpg, tmp_path / "o" / "p.jpg", colorizer, RasterSettings())
    assert (tmp_path / "o" / "p.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_corrupt_tiff_is_one_line_naming_the_file(tmp_path, colorizer):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + os.urandom(200))
    with pytest.raises(InvalidInputError, match=r"bad\.tif: not a readable raster"):
        open_raster(bad)
    out = tmp_path / "o" / "bad.tif"
    with pytest.raises(InvalidInputError):
        colorize_raster(bad, out, colorizer, RasterSettings())
    assert not out.exists() and not list((tmp_path / "o").glob(".*")) if \
        (tmp_path / "o").exists() else True


class PointwiseRuntime:
    """Chroma a smooth function of each pixel's luma: tiles must then agree exactly."""

    name = "pointwise"
    batch_size = 4

    def __init__(self) -> None:
        from streamcolor.model.contract import ModelContract

        self.contract = ModelContract(render_factor=4)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = batch[..., None].astype(np.float32)
        return np.concatenate([0.3 * (x - 0.5), 0.2 * np.sin(6 * x)], -1)


def test_tiled_output_equals_the_untiled_computation_no_seams(tmp_path):
    """A 500x700 raster in 64 px tiles through a pointwise model: the blended chroma equals
    the model's chroma of the whole image, so no tile border shows."""
    from streamcolor.color import luma_preserving_rgb
    from streamcolor.model.colorizer import Colorizer

    yy, xx = np.mgrid[0:500, 0:700].astype(np.float64)
    gray = (20000 + 18000 * np.sin(xx / 90.0) * np.cos(yy / 70.0)).astype(np.uint16)
    src = _write_geotiff(tmp_path / "smooth.tif", gray[None])
    out = tmp_path / "o" / "smooth.tif"
    res = colorize_raster(src, out, Colorizer(PointwiseRuntime()), RasterSettings(overlap=16))
    assert res.tiles > 100
    got = rasterio.open(out).read().astype(np.float64)
    s = res.stretch
    x = s.apply(gray[None])[..., None]
    chroma = np.concatenate([0.3 * (x - 0.5), 0.2 * np.sin(6 * x)], -1)
    want = luma_preserving_rgb(gray, chroma, s.luma_scale, 0, 65535, integer=True)
    assert np.abs(got - want).max() <= 1
    # and the seams a naive tiler would make are absent: no jump larger than the image's own
    jump = np.abs(np.diff(got[0], axis=1)).max()
    assert jump <= np.abs(np.diff(want[0], axis=1)).max() + 1


def test_float32_reflectance_with_nan_nodata(colorizer, tmp_path, rng):
    xx = np.mgrid[0:80, 0:120][1]
    refl = (0.2 + 0.1 * np.sin(xx / 9.0) + rng.normal(0, 0.01, (80, 120))).astype(np.float32)
    refl[5:9, 5:9] = np.nan
    src = _write_geotiff(tmp_path / "refl.tif", refl[None], profile={"nodata": float("nan")})
    out = tmp_path / "o" / "refl.tif"
    res = colorize_raster(src, out, colorizer, RasterSettings())
    assert 0.05 < res.stretch.low[0] < res.stretch.high[0] < 0.4
    d = _fields(out)
    assert d["dtype"] == "float32" and np.isnan(d["nodata"])
    hole = np.isnan(refl)
    assert np.isnan(d["data"][:3, hole]).all() and not np.isnan(d["data"][:3, ~hole]).any()
    np.testing.assert_allclose(_luma(d["data"])[~hole], refl[~hole], rtol=1e-5, atol=1e-6)
