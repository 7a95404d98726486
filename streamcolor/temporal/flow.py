"""Optical flow on luma, backward warping and the forward-backward occlusion test.

Conventions (OpenCV's): a flow ``f_ab`` is defined on frame *a*'s pixel grid and
``a(x) ~= b(x + f_ab(x))``.  :func:`warp` samples an image at ``x + flow(x)``, so
``warp(b, f_ab)`` brings *b* onto *a*'s grid.  Flow is estimated with OpenCV's DIS
(Kroeger et al. 2016), which runs in about a millisecond at a few hundred pixels on a CPU
core; it replaces FlowNet2 in the metrics of Lai et al. 2018 (see :mod:`.flicker`).
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_FLOW_SIDE = 16  # DIS asserts on images under 10 px a side; 16 leaves room

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def luma_u8(luma: np.ndarray) -> np.ndarray:
    """Any luma plane (uint8, uint16, or float in [0, 1]) as uint8, what DIS takes."""
    if luma.dtype == np.uint8:
        return luma
    if luma.dtype == np.uint16:
        return (luma >> 8).astype(np.uint8)
    return np.clip(np.rint(np.asarray(luma, np.float32) * 255.0), 0, 255).astype(np.uint8)


class FlowEstimator:
    """Dense flow between two uint8 luma images of one size (DIS, one instance per stream:
    the OpenCV object is not thread-safe).

    OpenCV's presets stop refining at pyramid level 2 (ultrafast, fast) or 1 (medium), i.e. a
    quarter or half of the image size; on the small grids used here that underestimates the
    motion of small objects (the moving-object test of the smoother fails with it).
    ``finest_scale`` overrides it: 0 refines down to full resolution.
    """

    def __init__(self, preset: str = "fast", finest_scale: int | None = None,
                 patch_stride: int | None = None) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown flow preset {preset!r} (one of {', '.join(PRESETS)})")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        if finest_scale is not None:
            self._dis.setFinestScale(int(finest_scale))
        if patch_stride is not None:
            self._dis.setPatchStride(int(patch_stride))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from ``a`` to ``b``: (H, W, 2) float32, x then y, in pixels.

        DIS needs images of at least 10 px a side (OpenCV asserts below that); smaller ones
        are enlarged by an integer factor for the estimate and the flow scaled back."""
        if a.shape != b.shape:
            raise ValueError(f"flow between different sizes: {a.shape} vs {b.shape}")
        a, b = luma_u8(a), luma_u8(b)
        h, w = a.shape[:2]
        k = -(-MIN_FLOW_SIDE // min(h, w))  # ceil
        if k <= 1:
            return self._dis.calc(a, b, None)
        big = (w * k, h * k)
        flow = self._dis.calc(cv2.resize(a, big, interpolation=cv2.INTER_LINEAR),
                              cv2.resize(b, big, interpolation=cv2.INTER_LINEAR), None)
        return resize_flow(flow, h, w)


def sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    gx = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    gy = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return gx, gy


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (bilinear, coordinates clamped to the border,
    like FlowNet2's Resample2d).  ``image`` is (H, W) or (H, W, C) with C <= 4."""
    gx, gy = sample_grid(flow)
    return cv2.remap(image, gx, gy, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def inside(flow: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """Where ``x + flow(x)`` lands inside the image, or at most ``margin`` px outside, where
    border replication still gives the right value (bool (H, W))."""
    h, w = flow.shape[:2]
    gx, gy = sample_grid(flow)
    return (gx >= -margin) & (gx <= w - 1 + margin) & (gy >= -margin) & (gy <= h - 1 + margin)


def flow_gradients(flow: np.ndarray) -> tuple[np.ndarray, ...]:
    """Forward differences of each flow component along x (u) and y (v), zero on the last
    column/row: (fx_du, fx_dv, fy_du, fy_dv), as in Lai et al.'s evaluation code."""
    fx, fy = flow[..., 0], flow[..., 1]
    out = []
    for comp in (fx, fy):
        du = np.zeros_like(comp)
        dv = np.zeros_like(comp)
        du[:, :-1] = comp[:, :-1] - comp[:, 1:]
        dv[:-1, :] = comp[:-1, :] - comp[1:, :]
        out += [du, dv]
    return tuple(out)


def sq_magnitude(flow: np.ndarray) -> np.ndarray:
    """``u^2 + v^2`` per pixel (much faster than a numpy sum over the last axis)."""
    u, v = flow[..., 0], flow[..., 1]
    return u * u + v * v


def fb_inconsistency(flow_ab: np.ndarray, flow_ba: np.ndarray) -> tuple[np.ndarray, ...]:
    """Squared forward-backward residual on *a*'s grid and the two squared magnitudes it is
    compared with: ``|f_ab + f_ba(x + f_ab)|^2``, ``|f_ba(x + f_ab)|^2``, ``|f_ab|^2``."""
    back = warp(flow_ba, flow_ab)
    return sq_magnitude(back + flow_ab), sq_magnitude(back), sq_magnitude(flow_ab)


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a flow field with its vectors rescaled to the new grid."""
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


def occlusion_mask(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """Pixels of frame *a* whose flow to *b* cannot be trusted (bool (H, W)).

    Lai et al. 2018 (``detect_occlusion``, after Ruder et al. 2016): a pixel is occluded when
    the forward-backward residual exceeds ``0.01 (|f_ba(x + f_ab)|^2 + |f_ab|^2) + 0.5``, or
    it lies on a motion boundary, ``|grad f_ab|^2 > 0.01 |f_ab|^2 + 0.002``.
    """
    res, back_mag, mag = fb_inconsistency(flow_ab, flow_ba)
    occluded = res > 0.01 * (back_mag + mag) + 0.5
    fx_du, fx_dv, fy_du, fy_dv = flow_gradients(flow_ab)
    boundary = (fx_du**2 + fx_dv**2 + fy_du**2 + fy_dv**2) > 0.01 * mag + 0.002
    return occluded | boundary
