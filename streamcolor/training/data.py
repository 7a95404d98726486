"""Data pipeline shared by every training stage: colour images in, (luma, colour) pairs out.

Augmentation (random resized crop, horizontal flip) is sampled once per sample and applied to
the colour image; the gray input is derived from that same augmented image, so input and
target always match.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from streamcolor.io.sources import image_files

log = logging.getLogger(__name__)


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    files = image_files(folder.iterdir())
    if not files:
        raise FileNotFoundError(f"{folder}: no images found")
    return files


def load_rgb(path: Path, max_short_side: int | None = None) -> np.ndarray:
    """uint8 RGB; downscaled (INTER_AREA) so its shorter side is at most max_short_side."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: cannot decode image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if max_short_side:
        h, w = rgb.shape[:2]
        s = max_short_side / min(h, w)
        if s < 1.0:
            rgb = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return rgb


class ImageBank:
    """Decoded images kept in memory (the training set here is ~1.7 GB decoded)."""

    def __init__(self, folder: str | Path, max_short_side: int | None = 256,
                 limit: int | None = None) -> None:
        self.files = list_images(folder)[:limit]
        self.images = [load_rgb(p, max_short_side) for p in self.files]
        log.info("loaded %d images from %s", len(self.images), folder)

    def __len__(self) -> int:
        return len(self.images)


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator,
                scale: tuple[float, float] = (0.35, 1.0)) -> np.ndarray:
    """Random resized square crop + random horizontal flip of one image (uint8 RGB)."""
    h, w = img.shape[:2]
    side = min(h, w)
    s = int(side * np.sqrt(rng.uniform(*scale)))
    s = max(min(s, side), 8)
    y0 = int(rng.integers(0, h - s + 1))
    x0 = int(rng.integers(0, w - s + 1))
    crop = img[y0:y0 + s, x0:x0 + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0:y0 + s, x0:x0 + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    """list of uint8 RGB (S, S, 3) -> float (B, 3, S, S) in [0, 1]."""
    arr = np.stack(batch).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def batches(bank: ImageBank, size: int, batch_size: int, seed: int,
            start_step: int = 0) -> Iterator[torch.Tensor]:
    """Endless stream of augmented RGB batches; deterministic given (seed, step)."""
    step = start_step
    while True:
        rng = np.random.default_rng([seed, step])
        idx = rng.integers(0, len(bank), size=batch_size)
        yield to_tensor([random_crop(bank.images[i], size, rng) for i in idx])
        step += 1
