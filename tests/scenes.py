"""Synthetic scenes for temporal tests: textured luma that optical flow can track, known
per-region chroma, and a moving object."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BG_CHROMA = (0.10, -0.06)
OBJ_CHROMA = (-0.12, 0.14)  # left half of the moving object
OBJ_CHROMA_RIGHT = (0.15, 0.12)  # right half


def texture(h: int, w: int, seed: int, lo: float = 40.0, hi: float = 200.0) -> np.ndarray:
    """Smooth random texture (float32) with strong gradients at every scale DIS uses."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    t = (t - t.min()) / (t.max() - t.min())
    return lo + (hi - lo) * t


@dataclass
class Scene:
    lumas: list[np.ndarray]  # uint8 (H, W)
    chroma: list[np.ndarray]  # float32 (H, W, 2): the true chroma of each frame
    masks: list[np.ndarray]  # bool (H, W): the moving object
    halves: list[tuple[np.ndarray, np.ndarray]]  # its left and right halves, 4 px inside


def moving_object(frames: int = 24, h: int = 64, w: int = 96, size: int = 18, step: int = 2,
                  seed: int = 0) -> Scene:
    """A static textured background with a brighter textured square moving right, whose
    left and right halves have different colours."""
    bg = texture(h, w, seed)
    obj = texture(size, size, seed + 1, 150.0, 250.0)
    lumas, chroma, masks, halves = [], [], [], []
    half = size // 2
    y0 = (h - size) // 2
    for i in range(frames):
        x0 = 4 + step * i
        img = bg.copy()
        img[y0:y0 + size, x0:x0 + size] = obj
        mask = np.zeros((h, w), bool)
        mask[y0:y0 + size, x0:x0 + size] = True
        c = np.empty((h, w, 2), np.float32)
        c[...] = BG_CHROMA
        c[y0:y0 + size, x0:x0 + half] = OBJ_CHROMA
        c[y0:y0 + size, x0 + half:x0 + size] = OBJ_CHROMA_RIGHT
        left = np.zeros((h, w), bool)
        right = np.zeros((h, w), bool)
        left[y0 + 4:y0 + size - 4, x0 + 4:x0 + half - 4] = True
        right[y0 + 4:y0 + size - 4, x0 + half + 4:x0 + size - 4] = True
        halves.append((left, right))
        lumas.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        chroma.append(c)
        masks.append(mask)
    return Scene(lumas, chroma, masks, halves)


def noisy(chroma: list[np.ndarray], sigma: float, seed: int = 5) -> list[np.ndarray]:
    """Per-frame independent chroma noise, smooth in space like a model's flicker."""
    rng = np.random.default_rng(seed)
    out = []
    for c in chroma:
        n = rng.normal(0.0, 1.0, c.shape).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), 3.0)
        n *= sigma / max(float(n.std()), 1e-6)
        out.append(c + n)
    return out


def compose(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    from streamcolor.color import merge_luma_chroma_u8

    return merge_luma_chroma_u8(luma, chroma)
