"""Data pipeline shared by every training stage: colour images in, (luma, colour) pairs out.

Augmentation (random resized crop, horizontal flip) is sampled once per sample and applied to
the colour image; the gray input is derived from that same augmented image, so input and
target always match.

Each training step's batch is a pure function of (seed, step) (:func:`make_batch`), so a
resumed run sees exactly the batches an uninterrupted one would, however the batches are
made: on the training thread, or ahead of it by :class:`BatchLoader`'s worker processes
(a torch ``DataLoader`` over step numbers; what a GPU run wants, so the accelerator never
waits for JPEG crops).
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Decoded images kept in memory (the training set here is ~1.7 GB decoded).

    ``min_colorfulness`` drops near-colourless photos (sepia, faded, nearly gray: they teach
    the generator that dull is right), by Hasler & Süsstrunk's colourfulness of the whole
    image; BigColor drops those under 15."""

    def __init__(self, folder: str | Path, max_short_side: int | None = 256,
                 limit: int | None = None, min_colorfulness: float = 0.0) -> None:
        files = list_images(folder)[:limit]
        images = [load_rgb(p, max_short_side) for p in files]
        self.dropped: list[Path] = []
        if min_colorfulness > 0:
            from streamcolor.color import colorfulness

            keep = [colorfulness(im) >= min_colorfulness for im in images]
            self.dropped = [f for f, k in zip(files, keep, strict=True) if not k]
            files = [f for f, k in zip(files, keep, strict=True) if k]
            images = [im for im, k in zip(images, keep, strict=True) if k]
            if not images:
                raise ValueError(f"{folder}: no image has a colourfulness of at least "
                                 f"{min_colorfulness:g}")
        self.files, self.images = files, images
        log.info("loaded %d images from %s%s", len(self.images), folder,
                 f" ({len(self.dropped)} under colourfulness {min_colorfulness:g} dropped)"
                 if self.dropped else "")

    def chroma_samples(self, size: int = 32) -> np.ndarray:
        """(N, 2) Cb/Cr offsets of every image shrunk to ``size``² (for the bins' prior)."""
        from streamcolor.color import rgb_to_ycbcr

        out = [rgb_to_ycbcr(cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
                            .astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2)
               for im in self.images]
        return np.concatenate(out)

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


def make_batch(bank: ImageBank, size: int, batch_size: int, seed: int,
               step: int) -> torch.Tensor:
    """The augmented RGB batch of ``step``: a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, step])
    idx = rng.integers(0, len(bank), size=batch_size)
    return to_tensor([random_crop(bank.images[i], size, rng) for i in idx])


@dataclass(frozen=True)
class CropPlan:
    """Each step's (crop size, batch size): ``phases`` as (steps, size, batch) in order, the
    last one going on for ever.  A plain record, so the batch-making processes (started
    fresh, see :class:`BatchLoader`) can be sent it."""

    phases: tuple[tuple[int, int, int], ...]

    @classmethod
    def fixed(cls, size: int, batch: int) -> CropPlan:
        return cls(((1, size, batch),))

    def __call__(self, step: int) -> tuple[int, int]:
        start = 0
        for steps, size, batch in self.phases:
            if step < start + steps:
                return size, batch
            start += steps
        return self.phases[-1][1], self.phases[-1][2]


class _StepBatches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``step`` is that step's (step, batch)."""

    def __init__(self, bank: ImageBank, plan: Callable[[int], tuple[int, int]],
                 seed: int) -> None:
        self.bank, self.plan, self.seed = bank, plan, seed

    def __len__(self) -> int:  # the sampler decides which steps are asked for
        return 1 << 62

    def __getitem__(self, step: int) -> tuple[int, torch.Tensor]:
        size, batch = self.plan(step)
        return step, make_batch(self.bank, size, batch, self.seed, step)


class BatchLoader:
    """The batches of steps ``start, start + 1, ...`` in order, made by ``workers`` processes
    ahead of the training loop (0: on the calling thread, when asked).

    ``plan(step)`` gives that step's (crop size, batch size), so progressive phases work (a
    :class:`CropPlan`: the workers are *spawned*, so it and the bank are pickled to them;
    forked ones inherit the trainer's thread pools half-alive and can hang in their first
    OpenCV call); ``pin`` pins host memory for fast copies to a GPU.  :meth:`get` checks that
    the batch it returns is the step asked for, so resuming can never shift the data."""

    def __init__(self, bank: ImageBank, plan: Callable[[int], tuple[int, int]], seed: int,
                 workers: int = 0, pin: bool = False, prefetch: int = 4) -> None:
        self.dataset = _StepBatches(bank, plan, seed)
        self.workers, self.pin, self.prefetch = workers, pin, prefetch
        self._it: Iterator[tuple[int, torch.Tensor]] | None = None
        self._next = -1
        self._sigchld: Any = None

    def _start(self, step: int) -> None:
        if self.workers <= 0:
            self._it = (self.dataset[s] for s in itertools.count(step))
        else:
            if threading.current_thread() is threading.main_thread():
                self._sigchld = signal.getsignal(signal.SIGCHLD)
            self._it = iter(torch.utils.data.DataLoader(
                self.dataset, batch_size=None, sampler=itertools.count(step),
                num_workers=self.workers, pin_memory=self.pin,
                prefetch_factor=self.prefetch, persistent_workers=False,
                multiprocessing_context="spawn",
                worker_init_fn=_one_thread))
        self._next = step

    def get(self, step: int) -> torch.Tensor:
        if self._it is None or step != self._next:
            self.close()
            self._start(step)
        assert self._it is not None
        got, batch = next(self._it)
        if got != step:
            raise RuntimeError(f"data loader out of step: asked for {step}, got {got}")
        self._next = step + 1
        return batch

    def close(self) -> None:
        """Stops the workers and puts back the SIGCHLD handler PyTorch installed for them: left
        process-wide, it ran at every later child's exit in the whole process, raising about
        long-gone workers (and needing a signal frame, which an unmapped alternate stack
        turns into SIGSEGV: see ``openvino_runtime.openvino_core``)."""
        shutdown = getattr(self._it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self._it = None
        if self._sigchld is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGCHLD, self._sigchld)
            self._sigchld = None


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # a worker's OpenCV/numpy work must not fight the trainer
    cv2.setNumThreads(1)
