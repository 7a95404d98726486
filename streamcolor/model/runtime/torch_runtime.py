"""The PyTorch runtime: eager generator, ``inference_mode``, autocast and channels-last."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np
import torch

from streamcolor.errors import ModelError, ResourceError, is_allocation_failure
from streamcolor.model.contract import ModelContract
from streamcolor.model.networks import ChromaUNet

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_BATCH = 256


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r} (auto, cpu or cuda)")
    return torch.device(device)


def cpu_bf16_supported() -> bool:
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


def check_batch_size(batch_size: int | None) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or \
            not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch size must be a whole number in 1..{MAX_BATCH}, "
                         f"got {batch_size!r}")
    return batch_size


def default_settings(device: torch.device, precision: str = "auto",
                     batch_size: int | None = None, render_factor: int = 16,
                     ) -> InferenceSettings:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    if precision == "auto":
        if device.type == "cuda":
            dtype = torch.float16
        else:
            dtype = torch.bfloat16 if cpu_bf16_supported() else torch.float32
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    batch_size = check_batch_size(batch_size)
    if batch_size is None:
        # Measured on 2 CPU cores (benchmarks/results/engine.md): batches help up to ~256² px
        # (47 vs 41 fps, bf16) and hurt above (384²: 11 vs 18 fps), where caches overflow.
        batch_size = 16 if device.type == "cuda" else (4 if render_factor <= 16 else 1)
    return InferenceSettings(device, dtype, batch_size, channels_last=True)


class TorchRuntime:
    """A :class:`~streamcolor.model.runtime.Runtime` running a :class:`ChromaUNet` eagerly."""

    kind = "torch"

    def __init__(self, net: ChromaUNet, contract: ModelContract, name: str | None = None,
                 device: str = "auto", precision: str = "auto", batch_size: int | None = None,
                 render_factor: int | None = None) -> None:
        self.contract = contract
        self.name = name or net.config.name
        dev = pick_device(device)
        self.settings = default_settings(dev, precision, batch_size,
                                         render_factor or contract.render_factor)
        net = net.to(dev)
        if self.settings.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    @property
    def device(self) -> torch.device:
        return self.settings.device

    @property
    def precision(self) -> str:
        return {torch.float32: "fp32", torch.bfloat16: "bf16",
                torch.float16: "fp16"}[self.settings.dtype]

    @property
    def description(self) -> str:
        where = "" if self.device.type == "cpu" else f" on {self.device.type}"
        return f"torch {self.precision}{where}"

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.settings.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.settings.dtype)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).unsqueeze(1)
        x = x.to(self.device)
        if self.settings.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            with torch.inference_mode(), self._autocast():
                out = self.net(x)
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as e:
            if not (isinstance(e, torch.OutOfMemoryError) or is_allocation_failure(e)):
                raise
            raise ResourceError(f"{self.device.type}: out of memory running the generator on "
                                f"a batch of {x.shape[0]} at {x.shape[3]}x{x.shape[2]} "
                                "(lower --batch-size or --render-factor)") from None
        return out.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()
