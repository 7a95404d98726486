"""Quantised chroma for the hybrid (regression + classification) head: pure functions.

Colourisation as classification (Zhang, Isola & Efros, ECCV 2016, "Colorful Image
Colorization") predicts a distribution over quantised colours per pixel instead of one
regressed colour, which averages several plausible colours into a dull one.  streamcolor works
in BT.601 YCbCr, so the bins quantise the chroma offsets (Cb, Cr) in [-0.5, 0.5]:

* **Grid.** Square cells of ``GRID`` = 0.045 (about 11.5 of 255 code values, close to Zhang's
  10 Lab units), centred on multiples of the width: indices -11..11 on each axis.
* **Bins.** The cells whose centre is the nearest grid point of *some* RGB colour: the
  projection of the RGB cube onto the CbCr plane (a hexagon), sampled on a 3-code-value
  lattice.  That is 397 bins, fixed by colour science alone (Zhang's 313 are the in-gamut ab
  cells likewise), so the architecture does not depend on a data set; the training data's
  colours occupy 312 of them (the others keep a near-zero probability).
* **Soft encoding** of a target colour: its ``NEIGHBOURS`` = 5 nearest bins with Gaussian
  weights (sigma = half a cell, Zhang's 5 of 10 units).
* **Class rebalancing** (Zhang eq. 3-4): weight w(q) proportional to
  ((1 - lambda) p~(q) + lambda / Q)^-1 with p~ the smoothed empirical bin prior, normalised so
  that the prior's expected weight is 1; lambda = 0.5.
* **Gamut mask.** A bin is impossible at luma Y when its centre, added to Y, leaves the RGB
  cube: each bin has a luma interval [lo, hi] (:func:`luma_bounds`), widened by ``GAMUT_SLACK``
  so the cells around a valid colour stay available.  The neutral bin is valid at every Y.
* **Annealed mean** (Zhang eq. 5): softmax(logits / T) then the expectation of the bin
  centres; T = 1 is the mean, T -> 0 the mode, Zhang's 0.38 in between.

The numpy functions are the reference; the torch ones (suffix ``_torch``) run in training
and inside the network (so exported models carry the decoding).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from streamcolor.color import _RGB_TO_YCBCR, _YCBCR_TO_RGB

GRID = 0.045
HALF_CELLS = 11  # grid indices -11..11 cover the chroma range [-0.5, 0.5]
SIDE = 2 * HALF_CELLS + 1
NEIGHBOURS = 5
SIGMA = 0.5 * GRID
GAMUT_SLACK = 0.02  # luma slack of the gamut mask (about half a cell's RGB swing)
REBALANCE_LAMBDA = 0.5
PRIOR_SIGMA_CELLS = 0.5  # Zhang smooths the prior with sigma 5 on a grid of 10
# (Cb, Cr) -> (R, G, B) offsets from luma.
_CHROMA_TO_RGB = _YCBCR_TO_RGB[:, 1:]


@functools.lru_cache(maxsize=1)
def _bins() -> tuple[np.ndarray, np.ndarray]:
    v = np.arange(0, 256, 3, dtype=np.float64) / 255.0
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 3)
    cbcr = rgb @ _RGB_TO_YCBCR[1:].T
    idx = np.unique(np.rint(cbcr / GRID).astype(np.int64), axis=0)  # sorted (cb, cr)
    lut = np.full((SIDE, SIDE), -1, np.int64)
    lut[idx[:, 0] + HALF_CELLS, idx[:, 1] + HALF_CELLS] = np.arange(len(idx))
    return idx, lut


def bin_centers() -> np.ndarray:
    """(K, 2) float32 (Cb, Cr) centres of the bins, sorted by Cb then Cr."""
    return (_bins()[0] * GRID).astype(np.float32)


def bin_lut() -> np.ndarray:
    """(23, 23) int64: grid cell (cb + 11, cr + 11) -> bin index, or -1 outside the gamut."""
    return _bins()[1].copy()


def num_bins() -> int:
    return len(_bins()[0])


def neutral_bin() -> int:
    return int(_bins()[1][HALF_CELLS, HALF_CELLS])


def luma_bounds(centers: np.ndarray, slack: float = GAMUT_SLACK) -> tuple[np.ndarray, np.ndarray]:
    """Per bin, the luma interval [lo, hi] in which its centre gives an RGB colour inside
    the cube (widened by ``slack``): Y + d_c in [0, 1] for each channel offset d_c."""
    d = np.asarray(centers, np.float64) @ _CHROMA_TO_RGB.T  # (K, 3)
    lo = np.maximum(0.0, -d.min(axis=1)) - slack
    hi = np.minimum(1.0, 1.0 - d.max(axis=1)) + slack
    return lo.astype(np.float32), hi.astype(np.float32)


def gamut_mask(luma: np.ndarray, centers: np.ndarray, slack: float = GAMUT_SLACK) -> np.ndarray:
    """(..., K) bool: which bins are possible at each luma (reference implementation)."""
    lo, hi = luma_bounds(centers, slack)
    y = np.asarray(luma, np.float32)[..., None]
    return (y >= lo) & (y <= hi)


def soft_encode(chroma: np.ndarray, k: int = NEIGHBOURS, sigma: float = SIGMA,
                ) -> np.ndarray:
    """(..., 2) chroma -> (..., K) soft targets: Gaussian weights on the ``k`` nearest bins
    (reference implementation, brute force over every bin)."""
    centers = bin_centers().astype(np.float64)
    c = np.asarray(chroma, np.float64)[..., None, :]
    d2 = ((c - centers) ** 2).sum(-1)  # (..., K)
    order = np.argsort(d2, axis=-1, kind="stable")[..., :k]
    near = np.take_along_axis(d2, order, -1)
    w = np.exp(-near / (2 * sigma * sigma))
    w /= w.sum(-1, keepdims=True)
    out = np.zeros(d2.shape, np.float64)
    np.put_along_axis(out, order, w, -1)
    return out


def bin_prior(chroma_samples: np.ndarray) -> np.ndarray:
    """(K,) empirical probability of each bin (nearest bin of each (N, 2) sample), smoothed
    with a Gaussian of ``PRIOR_SIGMA_CELLS`` cells over the grid and renormalised."""
    idx, lut = _bins()
    cells = np.clip(np.rint(np.asarray(chroma_samples, np.float64) / GRID).astype(np.int64)
                    + HALF_CELLS, 0, SIDE - 1)
    grid = np.zeros((SIDE, SIDE), np.float64)
    np.add.at(grid, (cells[:, 0], cells[:, 1]), 1.0)
    grid[lut < 0] = 0.0  # a colour outside every bin cannot happen; rounding at the edge
    import cv2

    smooth = cv2.GaussianBlur(grid, (0, 0), PRIOR_SIGMA_CELLS, borderType=cv2.BORDER_CONSTANT)
    p = smooth[idx[:, 0] + HALF_CELLS, idx[:, 1] + HALF_CELLS]
    total = p.sum()
    if total <= 0:
        raise ValueError("no chroma samples to build a bin prior from")
    return (p / total).astype(np.float64)


def rebalance_weights(prior: np.ndarray, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """Zhang's class-rebalancing weights: w ∝ ((1 - lam) p + lam / Q)^-1, E_p[w] = 1."""
    p = np.asarray(prior, np.float64)
    w = 1.0 / ((1.0 - lam) * p + lam / p.size)
    return w / float((p * w).sum())


def annealed_mean(logits: np.ndarray, temperature: float, mask: np.ndarray | None = None,
                  ) -> np.ndarray:
    """(..., K) logits -> (..., 2) chroma: expectation of the bin centres under
    softmax(logits / T), restricted to ``mask`` (reference implementation)."""
    z = np.asarray(logits, np.float64) / temperature
    if mask is not None:
        z = np.where(mask, z, -np.inf)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    return p @ bin_centers().astype(np.float64)


# ----------------------------------------------------------------------------- torch
def luma_bounds_torch(slack: float = GAMUT_SLACK) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = luma_bounds(bin_centers(), slack)
    return torch.from_numpy(lo), torch.from_numpy(hi)


def annealed_mean_torch(logits: torch.Tensor, luma: torch.Tensor, centers: torch.Tensor,
                        lo: torch.Tensor, hi: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, K, h, w) logits and (B, 1, h, w) luma -> (B, 2, h, w) chroma: the annealed mean
    over the bins that are in gamut at each pixel's luma (the neutral bin always is).

    Masked bins get a large negative logit rather than -inf, so a half-precision run and an
    exported graph stay finite."""
    z = logits.float() / temperature
    ok = (luma.float() >= lo.view(1, -1, 1, 1)) & (luma.float() <= hi.view(1, -1, 1, 1))
    p = torch.softmax(z.masked_fill(~ok, -1e4), dim=1)
    return F.conv2d(p, centers.t().reshape(2, -1, 1, 1))  # sum_k p_k * centre_k


def soft_encode_torch(chroma: torch.Tensor, lut: torch.Tensor, k: int = NEIGHBOURS,
                      sigma: float = SIGMA) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, h, w) chroma -> (indices, weights), each (B, k, h, w): the ``k`` nearest bins
    and their normalised Gaussian weights.  The nearest bins of a point on a square grid lie in
    the 3x3 cells around its nearest grid point, so only those 9 are searched."""
    q = chroma.float() / GRID
    n = torch.round(q)
    offs = torch.tensor([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], dtype=q.dtype,
                        device=q.device)  # (9, 2)
    cand = n.unsqueeze(1) + offs.view(1, 9, 2, 1, 1)  # (B, 9, 2, h, w)
    d2 = ((q.unsqueeze(1) - cand) ** 2).sum(2) * (GRID * GRID)  # (B, 9, h, w)
    ci = (cand + HALF_CELLS).long()
    inside = ((ci >= 0) & (ci < SIDE)).all(2)
    ci = ci.clamp(0, SIDE - 1)
    idx = lut.to(q.device)[ci[:, :, 0], ci[:, :, 1]]
    idx = torch.where(inside, idx, torch.full_like(idx, -1))
    d2 = torch.where(idx >= 0, d2, torch.full_like(d2, float("inf")))
    near, order = torch.topk(d2, k, dim=1, largest=False)
    sel = torch.gather(idx, 1, order)
    w = torch.exp(-near / (2 * sigma * sigma))
    w = torch.where(sel >= 0, w, torch.zeros_like(w))
    w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    return sel.clamp_min(0), w


def nearest_bin_torch(chroma: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w) chroma -> (B, h, w) index of its nearest bin (the soft encoding's first)."""
    idx, _ = soft_encode_torch(chroma, lut, k=1)
    return idx[:, 0]


def rebalanced_cross_entropy(logits: torch.Tensor, target_chroma: torch.Tensor,
                             lut: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Zhang's multinomial cross-entropy against soft-encoded targets, each pixel weighted by
    the rebalancing weight of its nearest bin (None: unweighted); mean over pixels.

    ``target_chroma`` is (B, 2, H, W) at the logits' resolution or a multiple of it (then
    area-averaged down)."""
    if target_chroma.shape[-2:] != logits.shape[-2:]:
        target_chroma = F.adaptive_avg_pool2d(target_chroma, logits.shape[-2:])
    idx, w = soft_encode_torch(target_chroma, lut)
    logp = torch.log_softmax(logits.float(), dim=1)
    ce = -(torch.gather(logp, 1, idx) * w).sum(1)  # (B, h, w)
    if weights is not None:
        ce = ce * weights.to(ce.device)[idx[:, 0]]
    return ce.mean()
