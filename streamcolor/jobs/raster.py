"""One raster in, one colourised raster out: the per-file function every batch engine runs.

source (windowed reads) → stretch (fixed per file or sequence) → overlapping tiles → model →
optional per-tile temporal smoother (sequences) → seamless blend → the source's own luma in
data units + the model's chroma → windowed writes → atomic rename.

Memory is bounded for any size: one strip of tiles (tile rows × width) of float work, plus
the streamed histograms of the stretch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamcolor.color import luma_preserving_rgb
from streamcolor.engine.stop import StopRequested, StopToken
from streamcolor.errors import InvalidInputError
from streamcolor.io.rasters import (
    OutputLayout,
    RasterInfo,
    RasterWriter,
    gdal_env,
    open_raster,
)
from streamcolor.jobs.stretch import (
    BandHistogram,
    Stretch,
    fixed_8bit_stretch,
    stretch_from_histograms,
)
from streamcolor.jobs.tiling import StripBlender, TileGrid

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the same settings would give different outputs
WINDOW_PIXELS = 1 << 21  # pixels per window of reading, histograms and composition


@dataclass(frozen=True)
class RasterSettings:
    """What decides a batch output besides the model (the manifest's key holds all of it)."""

    percentiles: tuple[float, float] = (1.0, 99.0)
    stretch_8bit: bool = False  # 8-bit data stretched too (else taken at 0..255, as trained)
    overlap: int = 64  # px of overlap between tiles, at least
    temporal_strength: float = 0.0  # sequences only

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "format_version": FORMAT_VERSION}


def _row_windows(info: RasterInfo) -> list[tuple[int, int, int, int]]:
    rows = max(1, WINDOW_PIXELS // max(info.width, 1))
    return [(r, min(info.height, r + rows), 0, info.width) for r in range(0, info.height, rows)]


def valid_mask(bands: np.ndarray, nodata: float | None, mask: np.ndarray | None) -> np.ndarray:
    """Pixels that are data: no luma band equals nodata (or is NaN), and the file's mask."""
    valid = np.ones(bands.shape[1:], bool)
    if nodata is not None:
        if np.isnan(nodata):
            valid &= ~np.isnan(bands).any(axis=0)
        else:
            valid &= ~(bands == np.asarray(nodata, bands.dtype)).any(axis=0)
    if bands.dtype.kind == "f":
        valid &= np.isfinite(bands).all(axis=0)
    if mask is not None:
        valid &= mask
    return valid


@contextlib.contextmanager
def _opened(path: Path, reader: Any) -> Iterator[Any]:
    """``reader`` where it is ``path``'s (left open), else ``path`` opened and closed."""
    if reader is not None and Path(reader.path) == path:
        yield reader
        return
    with open_raster(path) as r:
        yield r


def compute_stretch(paths: Sequence[Path], settings: RasterSettings, scope: str,
                    reader: Any = None) -> Stretch:
    """The stretch of one file (``scope`` "file") or of a whole sequence, streamed window by
    window; 8-bit data keeps its 0..255 range unless ``settings.stretch_8bit``.  ``reader``:
    one of the files already open."""
    hists: list[BandHistogram] | None = None
    bands: tuple[int, ...] = (1,)
    weights: tuple[float, ...] = (1.0,)
    for p in paths:
        with _opened(p, reader) as r:
            info = r.info
            if hists is None:
                bands, weights = info.luma_bands, info.luma_weights
                if info.dtype == np.uint8 and not settings.stretch_8bit:
                    return fixed_8bit_stretch(bands, weights)
                hists = [BandHistogram(info.dtype) for _ in bands]
            elif info.luma_bands != bands or hists[0].dtype != info.dtype:
                raise InvalidInputError(f"{p}: its bands or sample type differ from the "
                                        f"sequence's first file {paths[0].name}")
            if hists[0].needs_range:
                for w in _row_windows(info):
                    data = r.read(bands, w)
                    ok = valid_mask(data, info.nodata, r.read_mask(w))
                    for h, b in zip(hists, data, strict=True):
                        h.add_range(b[ok])
    assert hists is not None
    if hists[0].needs_range:  # float or 32-bit: second pass into min..max bins
        for h in hists:
            h.finish_range()
    for p in paths:
        with _opened(p, reader) as r:
            info = r.info
            for w in _row_windows(info):
                data = r.read(bands, w)
                ok = valid_mask(data, info.nodata, r.read_mask(w))
                for h, b in zip(hists, data, strict=True):
                    h.add(b[ok])
    where = str(paths[0]) if len(paths) == 1 else f"{paths[0].parent} (sequence)"
    return stretch_from_histograms(hists, bands, weights, settings.percentiles, scope, where)


def _sample_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind in "ui":
        i = np.iinfo(dtype)
        return float(i.min), float(i.max)
    return float("-inf"), float("inf")


def compose_window(data: np.ndarray, chroma: np.ndarray, info: RasterInfo, stretch: Stretch,
                   valid: np.ndarray, nodata_px: np.ndarray | None = None) -> np.ndarray:
    """Source luma bands (n, h, w) + blended chroma (h, w, 2) -> (3, h, w) R, G, B in the
    source's sample type whose luma is the source's.  ``nodata_px`` (default: the pixels
    not ``valid``) are nodata in every band; other invalid pixels (masked) keep their luma
    and get no colour."""
    if nodata_px is None:
        nodata_px = ~valid
    if data.shape[0] == 1:
        y = data[0].astype(np.float32)
    else:
        y = np.zeros(data.shape[1:], np.float32)
        for b, w in zip(data, stretch.weights, strict=True):
            y += b.astype(np.float32) * np.float32(w)
    lo, hi = _sample_range(info.dtype)
    integer = info.dtype.kind in "ui"
    y = np.where(nodata_px, np.float32(max(lo, 0.0) if np.isfinite(lo) else 0.0), y)
    if integer:
        y = np.clip(y, lo, hi)
    chroma = np.where(valid[..., None], chroma, np.float32(0.0))
    rgb = luma_preserving_rgb(y, chroma, stretch.luma_scale, lo, hi, integer)
    out = rgb.astype(info.dtype)
    if info.nodata is not None and not np.isnan(info.nodata):
        nd = np.asarray(info.nodata).astype(info.dtype)
        hit = (out == nd) & ~nodata_px[None]  # a colour that happens to equal nodata
        if hit.any():
            nudge = 1 if (not integer or nd < hi) else -1
            out[hit] = nd + np.asarray(nudge).astype(info.dtype)
        out[:, nodata_px] = nd
    elif info.nodata is not None:
        out[:, nodata_px] = np.nan
    return out


class TileSmoothers:
    """One temporal smoother per tile position of a sequence (frames of one size)."""

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self._by_tile: dict[tuple[int, int, int, int], Any] = {}

    def step(self, key: tuple[int, int, int, int], luma: np.ndarray,
             chroma: np.ndarray) -> np.ndarray:
        from streamcolor.temporal.smoother import TemporalSmoother

        s = self._by_tile.get(key)
        if s is None:
            # co-registered frames of one place: no optical flow (it only finds noise here)
            s = self._by_tile[key] = TemporalSmoother(self.strength, motion=False)
        return s.step(luma, chroma)


@dataclass
class RasterResult:
    tiles: int
    pixels: int
    seconds: float
    stretch: Stretch


def output_tags(stretch: Stretch, model: dict[str, Any], settings: RasterSettings
                ) -> dict[str, str]:
    return {"STREAMCOLOR_STRETCH": stretch.to_tag(),
            "STREAMCOLOR_MODEL": json.dumps(model, sort_keys=True),
            "STREAMCOLOR_SETTINGS": json.dumps(settings.key(), sort_keys=True),
            "STREAMCOLOR_LUMA": "BT.601 luma of bands 1-3 is the source's luma "
                                "(its one band, or BT.601 of its red/green/blue)"}


def colorize_raster(src: Path, dst: Path, colorizer: Any, settings: RasterSettings,
                    stretch: Stretch | None = None, smoothers: TileSmoothers | None = None,
                    model_info: dict[str, Any] | None = None,
                    stop: StopToken | None = None,
                    on_tiles: Callable[[str, int, int], None] | None = None) -> RasterResult:
    """Colourise ``src`` into ``dst`` (written atomically; on any error or stop nothing is
    left under either name).  ``stretch`` None computes the file's own.  ``on_tiles(name,
    done, total)`` follows a raster of more than one strip of tiles."""
    t0 = time.perf_counter()
    tiles = 0
    with gdal_env(), open_raster(src) as r:
        info = r.info
        if stretch is None:
            stretch = compute_stretch([src], settings, "file", reader=r)
        if stretch.bands != info.luma_bands:
            raise InvalidInputError(f"{src}: its luma bands {info.luma_bands} differ from the "
                                    f"stretch's {stretch.bands}")
        side = colorizer.render_size(1, 1)[0]  # the render side of a square: tiles 1:1
        overlap = min(settings.overlap, side // 2)
        grid = TileGrid(info.height, info.width, side, overlap)
        blender = StripBlender(grid)
        layout = OutputLayout(info, info.extra_bands,
                              output_tags(stretch, model_info or {}, settings))
        dst.parent.mkdir(parents=True, exist_ok=True)
        with RasterWriter(dst, layout) as writer:
            for row in blender.strips():
                if stop is not None and stop.is_set():
                    raise StopRequested(stop.reason or "stop")
                th = grid.tile_height
                window = (row, row + th, 0, info.width)
                data = r.read(info.luma_bands, window)
                ok = valid_mask(data, info.nodata, r.read_mask(window))
                model_luma = stretch.apply(data)
                model_luma[~ok] = 0.0
                starts = grid.cols
                crops = [np.ascontiguousarray(model_luma[:, c:c + grid.tile_width])
                         for c in starts]
                bs = max(1, int(getattr(colorizer, "batch_size", 4)))
                for i in range(0, len(crops), bs):
                    chunk = crops[i:i + bs]
                    chroma = colorizer.predict(chunk)
                    for j, (crop, ch) in enumerate(zip(chunk, chroma, strict=True)):
                        col = starts[i + j]
                        if smoothers is not None:
                            key = (info.height, info.width, row, col)
                            ch = smoothers.step(key, np.rint(crop * 255).astype(np.uint8), ch)
                        if ch.shape[:2] != crop.shape:
                            ch = cv2.resize(ch, (crop.shape[1], crop.shape[0]),
                                            interpolation=cv2.INTER_LINEAR)
                        blender.add(row, col, ch)
                        tiles += 1
                row0, chroma_rows = blender.finished()
                _write_rows(r, writer, info, stretch, row0, chroma_rows)
                if on_tiles is not None and len(grid.rows) > 1:
                    on_tiles(src.name, tiles, grid.count)
            if stop is not None and stop.is_set():
                raise StopRequested(stop.reason or "stop")
            writer.commit()
    return RasterResult(tiles, info.width * info.height, time.perf_counter() - t0, stretch)


def _write_rows(reader: Any, writer: RasterWriter, info: RasterInfo, stretch: Stretch,
                row0: int, chroma: np.ndarray) -> None:
    rows_per = max(1, WINDOW_PIXELS // 2 // max(info.width, 1))
    for a in range(0, chroma.shape[0], rows_per):
        b = min(chroma.shape[0], a + rows_per)
        window = (row0 + a, row0 + b, 0, info.width)
        data = reader.read(info.luma_bands, window)
        mask = reader.read_mask(window)
        ok = valid_mask(data, info.nodata, mask)
        nodata_px = ~valid_mask(data, info.nodata, None) if info.nodata is not None else \
            np.zeros(ok.shape, bool)
        rgb = compose_window(data, chroma[a:b], info, stretch, ok, nodata_px)
        extra = info.extra_bands
        if extra:
            rgb = np.concatenate([rgb, reader.read(extra, window)])
        writer.write(rgb, window)
        if mask is not None:
            writer.write_mask(mask, window)
