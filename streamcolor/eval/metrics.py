"""Image quality metrics used by evaluation and benchmarks (pure numpy/OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

from streamcolor.color import colorfulness, colorfulness_abs, psnr

__all__ = ["colorfulness", "colorfulness_abs", "feature_stats", "frechet_distance",
           "orange_share", "psnr", "ssim"]


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03),
    averaged over channels for colour images."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], peak) for c in range(a.shape[2])]))
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return float(np.mean(num / den))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians (the formula behind FID):
    ``|mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))``.

    ``Tr((C1 C2)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix ``C1^(1/2) C2 C1^(1/2)`` (same spectrum), with ``eps`` added to the
    diagonals so rank-deficient sample covariances stay well defined.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1 = np.atleast_2d(np.asarray(cov1, np.float64)) + eps * np.eye(mu1.size)
    c2 = np.atleast_2d(np.asarray(cov2, np.float64)) + eps * np.eye(mu2.size)
    w, v = np.linalg.eigh(c1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ c2 @ root1)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(inner, 0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance of (N, D) features."""
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


# Orange band for the drift indicator: hue 10-40 degrees, saturation >= 0.45, value >= 0.25
# (saturated orange: over-coloured skin, not the pale skin tones of real photos).
ORANGE_HUE = (10.0, 40.0)
ORANGE_MIN_SAT = 0.45
ORANGE_MIN_VAL = 0.25


def orange_share(rgb: np.ndarray) -> float:
    """Share of pixels of a uint8 RGB image whose HSV colour falls in the saturated orange
    band (the NoGAN failure mode: orange skin)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2HSV_FULL)
    hue = hsv[..., 0].astype(np.float32) * (360.0 / 256.0)
    sat = hsv[..., 1].astype(np.float32) / 255.0
    val = hsv[..., 2].astype(np.float32) / 255.0
    band = (hue >= ORANGE_HUE[0]) & (hue <= ORANGE_HUE[1]) & (sat >= ORANGE_MIN_SAT) & \
        (val >= ORANGE_MIN_VAL)
    return float(band.mean())
