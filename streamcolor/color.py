"""Colour math as pure functions on numpy arrays.

streamcolor works in **YCbCr** (ITU-R BT.601 coefficients).  The model sees luma only and
predicts the two chroma channels; the output's luma is always the *source's own* luma at
full resolution:

* Still images use JPEG's full-range YCbCr (Y, Cb, Cr in 0..255, chroma centred on 128).
* Video keeps its Y plane byte for byte and only its U/V planes are written; for
  limited-range ("TV", 16..235) video, luma is expanded to full range before it goes into
  the model and the predicted chroma is scaled to 16..240 when written.

Chroma inside the model is a float offset in [-0.5, 0.5] (Cb/255 - 0.5 for full range).
"""

from __future__ import annotations

import numpy as np

# BT.601 luma coefficients (JPEG / JFIF YCbCr).
KR, KG, KB = 0.299, 0.587, 0.114

_RGB_TO_YCBCR = np.array(
    [
        [KR, KG, KB],
        [-0.5 * KR / (1 - KB), -0.5 * KG / (1 - KB), 0.5],
        [0.5, -0.5 * KG / (1 - KR), -0.5 * KB / (1 - KR)],
    ],
    dtype=np.float64,
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] (..., 3) -> Y in [0, 1], Cb/Cr offsets in [-0.5, 0.5]."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return rgb @ _RGB_TO_YCBCR.T.astype(np.float32)


_YCC2RGB_F32 = _YCBCR_TO_RGB.astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; the result is *not* clipped.

    Computed channel by channel with element-wise float32 operations rather than a matrix
    product: a BLAS product's last bit depends on the CPU's kernel (with or without fused
    multiply-add), which moved 16-bit outputs by one step between machines."""
    ycc = np.asarray(ycc, dtype=np.float32)
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    m = _YCC2RGB_F32
    out = np.empty(ycc.shape, np.float32)
    for c in range(3):
        out[..., c] = y * m[c, 0] + cb * m[c, 1] + cr * m[c, 2]
    return out


def rgb_to_luma_u8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 full-range BT.601 luma (H, W), rounded."""
    rgb = np.asarray(rgb)
    y = rgb.astype(np.float32) @ np.array([KR, KG, KB], dtype=np.float32)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def merge_luma_chroma_u8(y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Full-range luma (H, W) uint8 + chroma offsets (H, W, 2) float -> uint8 RGB (H, W, 3)."""
    ycc = np.empty((*y.shape, 3), dtype=np.float32)
    ycc[..., 0] = y.astype(np.float32) / 255.0
    ycc[..., 1:] = chroma
    rgb = ycbcr_to_rgb(ycc)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def merge_luma_chroma(y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Luma in [0, 1] (H, W) + chroma offsets (H, W, 2) -> float RGB in [0, 1], clipped."""
    ycc = np.empty((*y.shape, 3), dtype=np.float32)
    ycc[..., 0] = y
    ycc[..., 1:] = chroma
    return np.clip(ycbcr_to_rgb(ycc), 0.0, 1.0)


def luma_to_unit(y: np.ndarray, full_range: bool = True) -> np.ndarray:
    """Luma samples -> float32 full-range luma in [0, 1], the generator's input scale.

    uint8 is 0..255 (``full_range``) or TV 16..235; uint16 is 0..65535 or TV 4096..60160
    (16..235 in the high byte, which is also where MSB-aligned 10/12-bit video puts it);
    floats are clipped.
    """
    if y.dtype == np.uint8:
        yf = y.astype(np.float32)
        if full_range:
            return yf * np.float32(1.0 / 255.0)
        return np.clip((yf - 16.0) * np.float32(1.0 / 219.0), 0.0, 1.0)
    if y.dtype == np.uint16:
        yf = y.astype(np.float32)
        if full_range:
            return yf * np.float32(1.0 / 65535.0)
        return np.clip((yf - 4096.0) * np.float32(1.0 / 56064.0), 0.0, 1.0)
    return np.clip(y.astype(np.float32), 0.0, 1.0)


def limited_to_full_luma(y: np.ndarray) -> np.ndarray:
    """Expand TV-range luma (16..235) to full range (0..255) as uint8."""
    yf = (y.astype(np.float32) - 16.0) * (255.0 / 219.0)
    return np.clip(np.rint(yf), 0, 255).astype(np.uint8)


def chroma_to_u8(chroma: np.ndarray, limited: bool) -> np.ndarray:
    """Chroma offsets in [-0.5, 0.5] -> uint8 plane values (full 0..255 or TV 16..240)."""
    scale = 224.0 if limited else 255.0
    return np.clip(np.rint(chroma * scale + 128.0), 0, 255).astype(np.uint8)


def chroma_to_plane(chroma: np.ndarray, limited: bool, bits: int = 8) -> np.ndarray:
    """Chroma offsets -> plane values of a ``bits``-deep video (uint8 for 8 bit, else uint16):
    centre 2^(bits-1), scale 224*2^(bits-8) for TV range, 2^bits - 1 for full range."""
    if bits == 8:
        return chroma_to_u8(chroma, limited)
    scale = 224.0 * (1 << (bits - 8)) if limited else float((1 << bits) - 1)
    top = (1 << bits) - 1
    return np.clip(np.rint(chroma * scale + float(1 << (bits - 1))), 0, top).astype(np.uint16)


def u8_to_chroma(plane: np.ndarray, limited: bool) -> np.ndarray:
    """Inverse of :func:`chroma_to_u8` (up to rounding)."""
    scale = 224.0 if limited else 255.0
    return (plane.astype(np.float32) - 128.0) / scale


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M of one uint8/float RGB image in 0..255.

    rg = R - G, yb = (R + G)/2 - B, M = sqrt(std_rg² + std_yb²) + 0.3 sqrt(mean_rg² + mean_yb²).
    """
    x = np.asarray(rgb, dtype=np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(std + 0.3 * mean)


def colorfulness_abs(rgb: np.ndarray) -> float:
    """Colourfulness in the absolute-value form of DDColor's ``calculate_cf`` and CT2:
    rg = |R - G|, yb = |(R + G)/2 - B|, then Hasler & Süsstrunk's
    sqrt(std_rg² + std_yb²) + 0.3 sqrt(mean_rg² + mean_yb²).  Opposite hues that spread
    the signed form's opponent channels agree in this one (the two forms rank differently)."""
    x = np.asarray(rgb, dtype=np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = np.abs(r - g)
    yb = np.abs(0.5 * (r + g) - b)
    std = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(std + 0.3 * mean)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two arrays of the same shape."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(peak * peak / mse))


# Chroma offsets (Cb, Cr) -> (R, G, B) offsets from luma: the chroma columns of the inverse
# BT.601 matrix (R = Y + 1.402 Cr, G = Y - 0.344 Cb - 0.714 Cr, B = Y + 1.772 Cb).
_CHROMA_TO_RGB = _YCBCR_TO_RGB[:, 1:].astype(np.float32)


def luma_preserving_rgb(y: np.ndarray, chroma: np.ndarray, scale: float, low: float,
                        high: float, integer: bool) -> np.ndarray:
    """Luma in data units (H, W) + chroma offsets (H, W, 2) -> (3, H, W) float32 R, G, B in
    data units whose BT.601 luma is ``y``.

    Chroma offsets are in units of the model's luma scale; ``scale`` converts them to data
    units (255 for 8-bit, the stretch's width for stretched data).  Where a channel would leave
    ``low..high`` the pixel's chroma is shrunk just enough to fit (its luma is never changed,
    unlike a per-channel clip).  ``integer``: rounded so that the luma of the rounded R, G, B,
    rounded, is ``y`` itself (R and B rounded, G solved for the luma), for integer ``y`` in
    range."""
    yf = np.asarray(y, np.float32)
    d = (np.asarray(chroma, np.float32) * np.float32(scale)) @ _CHROMA_TO_RGB.T  # (H, W, 3)
    d = np.moveaxis(d, -1, 0)
    t = np.ones(yf.shape, np.float32)
    room_hi = np.float32(high) - yf
    room_lo = np.float32(low) - yf
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in range(3):
            dc = d[c]
            up = np.where(dc > 0, room_hi / dc, np.float32(np.inf))
            down = np.where(dc < 0, room_lo / dc, np.float32(np.inf))
            t = np.minimum(t, np.minimum(up, down))
    t = np.clip(t, 0.0, 1.0)
    rgb = yf[None] + d * t[None]
    if integer:
        r = np.clip(np.rint(rgb[0]), low, high)
        b = np.clip(np.rint(rgb[2]), low, high)
        g = (yf - np.float32(KR) * r - np.float32(KB) * b) / np.float32(KG)
        rgb = np.stack([r, np.clip(np.rint(g), low, high), b])
    return rgb.astype(np.float32, copy=False)
