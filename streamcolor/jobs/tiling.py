"""Overlapping tiles whose chroma is blended without seams.

A raster larger than the model's render size is cut into ``tile``-sized windows at native
resolution that overlap by at least ``overlap`` pixels; each tile's chroma is weighted by a
ramp that rises across the overlap (flat where a tile touches the raster's edge) and the
weighted sum is normalised, so every pixel's chroma is a smooth partition-of-unity blend of
the tiles covering it.  :class:`StripBlender` does it a row of tiles at a time, so memory
holds one strip of chroma, never the whole raster.  Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: flush with both ends, spread evenly, overlaps >= overlap."""
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be in 0..{tile - 1}")
    n = math.ceil((length - overlap) / (tile - overlap))
    n = max(n, 2)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def ramp(size: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blend weight of a tile: rises over ``overlap`` px from an inner edge, flat (1) up to
    a raster edge; always > 0."""
    x = np.arange(size, dtype=np.float32) + np.float32(0.5)
    w = np.ones(size, np.float32)
    if overlap > 0:
        if not at_start:
            w = np.minimum(w, x / np.float32(overlap))
        if not at_end:
            w = np.minimum(w, (np.float32(size) - x) / np.float32(overlap))
    return w


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    tile: int
    overlap: int

    @property
    def rows(self) -> list[int]:
        return tile_starts(self.height, self.tile, self.overlap)

    @property
    def cols(self) -> list[int]:
        return tile_starts(self.width, self.tile, self.overlap)

    @property
    def tile_height(self) -> int:
        return min(self.tile, self.height)

    @property
    def tile_width(self) -> int:
        return min(self.tile, self.width)

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)

    def weights(self, row: int, col: int) -> np.ndarray:
        """(th, tw) weight of the tile starting at (row, col)."""
        th, tw = self.tile_height, self.tile_width
        wy = ramp(th, self.overlap, row == 0, row + th >= self.height)
        wx = ramp(tw, self.overlap, col == 0, col + tw >= self.width)
        return wy[:, None] * wx[None, :]


class StripBlender:
    """Blend tile chroma one strip (row of tiles) at a time.

    For each strip in order: :meth:`add` every tile of the strip, then :meth:`finished` gives
    the rows no later strip covers, as ``(row0, chroma)`` with blended (h, W, 2) chroma.
    Memory: two strips' worth of rows."""

    def __init__(self, grid: TileGrid, channels: int = 2) -> None:
        self.grid = grid
        self.channels = channels
        self._rows = grid.rows
        self._strip = -1
        self._base = 0  # raster row of the buffers' first row
        self._acc = np.zeros((0, grid.width, channels), np.float32)
        self._wsum = np.zeros((0, grid.width), np.float32)

    def strips(self) -> Iterator[int]:
        """The strips' first rows; advance the blender as they are iterated."""
        for i, r in enumerate(self._rows):
            self._strip = i
            self._extend(r + self.grid.tile_height)
            yield r

    def _extend(self, end: int) -> None:
        have = self._base + self._acc.shape[0]
        if end > have:
            extra = end - have
            self._acc = np.concatenate(
                [self._acc, np.zeros((extra, self.grid.width, self.channels), np.float32)])
            self._wsum = np.concatenate([self._wsum, np.zeros((extra, self.grid.width),
                                                              np.float32)])

    def add(self, row: int, col: int, chroma: np.ndarray) -> None:
        """Chroma (th, tw, C) of the tile at (row, col) of the current strip."""
        w = self.grid.weights(row, col)
        th, tw = w.shape
        r0 = row - self._base
        self._acc[r0:r0 + th, col:col + tw] += chroma * w[..., None]
        self._wsum[r0:r0 + th, col:col + tw] += w

    def finished(self) -> tuple[int, np.ndarray]:
        """Rows final after the current strip: (first raster row, blended chroma)."""
        last = self._strip == len(self._rows) - 1
        end = self.grid.height if last else self._rows[self._strip + 1]
        n = end - self._base
        out = self._acc[:n] / self._wsum[:n, :, None]
        row0 = self._base
        self._acc = self._acc[n:]
        self._wsum = self._wsum[n:]
        self._base = end
        return row0, out
