"""Composing the output: the source's own luma at full resolution plus the model's chroma,
upsampled from render resolution.

:func:`compose_rgb` works in horizontal bands of half a megapixel, so the float temporaries
stay at ~35 MB whatever the image size: a full-resolution frame costs its luma, its output
(3 bytes per pixel for 8-bit, 6 for 16-bit) and one band, not the ~46 bytes per pixel of one
float pass over the whole frame.  The chroma is upsampled exactly as one
``cv2.resize(..., INTER_LINEAR)`` to the full size would: the horizontal pass is OpenCV's,
the vertical one uses OpenCV's coordinate mapping and weights per band.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamcolor.color import luma_to_unit, merge_luma_chroma

BAND_PIXELS = 1 << 19  # pixels per band of float work (~35 MB of temporaries)


def upsample_chroma(chroma: np.ndarray, height: int, width: int) -> np.ndarray:
    """Chroma (h, w, 2) resized to (height, width, 2), bilinear (small planes, video)."""
    if chroma.shape[:2] == (height, width):
        return chroma
    return cv2.resize(chroma, (width, height), interpolation=cv2.INTER_LINEAR)


def _vertical_weights(src_rows: int, dst_rows: int, y0: int, y1: int,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR row mapping for output rows y0..y1: (row, next row, weight)."""
    scale = 1.0 / (dst_rows / src_rows)
    fy = ((np.arange(y0, y1, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    sy = np.floor(fy).astype(np.int64)
    fy = fy - sy.astype(np.float32)
    low = sy < 0
    high = sy >= src_rows - 1
    sy[low], fy[low] = 0, 0.0
    sy[high], fy[high] = src_rows - 1, 0.0
    return sy, np.minimum(sy + 1, src_rows - 1), fy


def compose_rgb(luma: np.ndarray, chroma: np.ndarray, full_range: bool = True,
                bgr: bool = False) -> np.ndarray:
    """Full-resolution RGB of ``luma`` (H, W) and chroma offsets (h, w, 2) at any size.

    uint8 luma gives uint8 RGB, uint16 gives uint16, float luma in [0, 1] gives float32 RGB
    in [0, 1].  ``full_range`` = False reads luma as TV range (16..235).  ``bgr`` gives the
    channels in OpenCV's order (no extra full-size copy for encoding).
    """
    height, width = luma.shape[:2]
    chroma = np.asarray(chroma, np.float32)
    if chroma.shape[1] != width:
        chroma = cv2.resize(chroma, (width, chroma.shape[0]), interpolation=cv2.INTER_LINEAR)
    if luma.dtype == np.uint8:
        out_dtype, peak = np.uint8, 255.0
    elif luma.dtype == np.uint16:
        out_dtype, peak = np.uint16, 65535.0
    else:
        out_dtype, peak = np.float32, None
    out = np.empty((height, width, 3), out_dtype)
    rows = max(1, BAND_PIXELS // max(width, 1))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        if chroma.shape[0] == height:
            band = chroma[y0:y1]
        else:
            r0, r1, w = _vertical_weights(chroma.shape[0], height, y0, y1)
            w = w[:, None, None]
            band = chroma[r0] * (np.float32(1.0) - w) + chroma[r1] * w
        rgb = merge_luma_chroma(luma_to_unit(luma[y0:y1], full_range), band)
        if bgr:
            rgb = rgb[..., ::-1]
        if peak is None:
            out[y0:y1] = rgb
        else:
            out[y0:y1] = np.rint(rgb * np.float32(peak))
    return out
