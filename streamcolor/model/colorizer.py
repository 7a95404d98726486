"""The model stage: luma frames in, chroma at render resolution out.

``render_factor`` follows DeOldify (render size = render_factor x 16 px) but keeps the aspect
ratio: the render has about the *area* of DeOldify's (render_factor*16)² square, with both sides
multiples of 32 (the encoder's stride).  640x480 at render_factor 16 renders at 288x224.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from streamcolor.color import luma_to_unit, merge_luma_chroma_u8, rgb_to_luma_u8
from streamcolor.errors import ModelError
from streamcolor.model.networks import ChromaUNet
from streamcolor.model.weights import WeightsRecord, load_generator, resolve_model

log = logging.getLogger(__name__)

RENDER_BASE = 16
MIN_RENDER_FACTOR, MAX_RENDER_FACTOR = 4, 64


def render_size(height: int, width: int, render_factor: int, multiple: int = 32) -> tuple[int, int]:
    """(h, w) of the chroma render: area ≈ (render_factor*16)², aspect kept, sides % multiple."""
    side = render_factor * RENDER_BASE
    aspect = width / height
    rw = side * math.sqrt(aspect)
    rh = side / math.sqrt(aspect)
    # Nearest multiple, halves rounded up (Python's round() would send 10.5 to 10).
    rh_i = max(multiple, math.floor(rh / multiple + 0.5) * multiple)
    rw_i = max(multiple, math.floor(rw / multiple + 0.5) * multiple)
    return rh_i, rw_i


def render_input(luma: np.ndarray, rh: int, rw: int, full_range: bool = True) -> np.ndarray:
    """One luma frame -> float32 (rh, rw) full-range luma in [0, 1], the generator's input."""
    return luma_to_unit(cv2.resize(luma, (rw, rh), interpolation=cv2.INTER_AREA), full_range)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r} (auto, cpu or cuda)")
    return torch.device(device)


def _cpu_bf16_ok() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class InferenceSettings:
    device: torch.device
    dtype: torch.dtype  # autocast dtype, or float32 for none
    batch_size: int
    channels_last: bool


def default_settings(device: torch.device, precision: str = "auto",
                     batch_size: int | None = None, render_factor: int = 16,
                     ) -> InferenceSettings:
    if precision == "auto":
        if device.type == "cuda":
            dtype = torch.float16
        else:
            dtype = torch.bfloat16 if _cpu_bf16_ok() else torch.float32
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if batch_size is None:
        # Measured on 2 CPU cores (benchmarks/results/engine.md): batches help up to ~256² px
        # (47 vs 41 fps, bf16) and hurt above (384²: 11 vs 18 fps), where caches overflow.
        batch_size = 16 if device.type == "cuda" else (4 if render_factor <= 16 else 1)
    return InferenceSettings(device, dtype, max(1, batch_size), channels_last=True)


class Colorizer:
    """A loaded generator with its render settings; the Python API works on numpy frames.

    >>> c = Colorizer()                       # the default shipped model, CPU or GPU
    >>> rgb = c.colorize(gray_uint8_image)    # (H, W) or (H, W, 3) -> (H, W, 3) uint8 RGB
    """

    def __init__(self, model: str | WeightsRecord | ChromaUNet | None = None,
                 render_factor: int | None = None, device: str = "auto",
                 precision: str = "auto", batch_size: int | None = None,
                 threads: int | None = None) -> None:
        self.device = pick_device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(threads or os.cpu_count() or 1)
        if isinstance(model, ChromaUNet):
            self.record = None
            net = model.eval()
            default_rf = 16
        else:
            self.record = model if isinstance(model, WeightsRecord) else resolve_model(model)
            net = load_generator(self.record)
            default_rf = self.record.render_factor
        self.render_factor = int(render_factor or default_rf)
        if not MIN_RENDER_FACTOR <= self.render_factor <= MAX_RENDER_FACTOR:
            raise ModelError(f"render factor {self.render_factor} is outside "
                             f"{MIN_RENDER_FACTOR}..{MAX_RENDER_FACTOR}")
        self.settings = default_settings(self.device, precision, batch_size, self.render_factor)
        self.multiple = net.config.multiple
        net = net.to(self.device)
        if self.settings.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net

    @property
    def name(self) -> str:
        return self.record.name if self.record else self.net.config.name

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    def render_size(self, height: int, width: int) -> tuple[int, int]:
        return render_size(height, width, self.render_factor, self.multiple)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.settings.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.settings.dtype)

    def predict(self, lumas: Sequence[np.ndarray],
                full_range: bool | Sequence[bool] = True) -> np.ndarray:
        """Luma frames of one size -> (B, rh, rw, 2) chroma offsets at render resolution.

        ``lumas`` are uint8 (0..255, or 16..235 where ``full_range`` is False), uint16
        (0..65535) or float in [0, 1].  Each is shrunk to the render size first (INTER_AREA,
        in its own sample type, so full-resolution frames are never converted to float) and
        the batch runs through the generator once.
        """
        if not lumas:
            return np.zeros((0, 0, 0, 2), np.float32)
        h, w = lumas[0].shape[:2]
        rh, rw = self.render_size(h, w)
        ranges = [full_range] * len(lumas) if isinstance(full_range, bool) else full_range
        small = np.stack([render_input(y, rh, rw, fr)
                          for y, fr in zip(lumas, ranges, strict=True)])
        x = torch.from_numpy(small).unsqueeze(1).to(self.device)
        if self.settings.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            out = self.net(x)
        return out.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()

    def predict_batched(self, lumas: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`predict` in chunks of ``batch_size``."""
        bs = self.batch_size
        return np.concatenate([self.predict(lumas[i:i + bs]) for i in range(0, len(lumas), bs)])

    def colorize(self, image: np.ndarray) -> np.ndarray:
        """One numpy image (gray (H, W) or RGB (H, W, 3), uint8) -> colourised uint8 RGB.

        The output's luma is the input's; only chroma comes from the model.
        """
        img = np.asarray(image)
        if img.dtype != np.uint8:
            raise TypeError(f"colorize expects uint8 images, got {img.dtype}")
        y = img if img.ndim == 2 else rgb_to_luma_u8(img)
        chroma = self.predict([y])[0]
        full = cv2.resize(chroma, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_LINEAR)
        return merge_luma_chroma_u8(y, full)
