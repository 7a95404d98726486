"""Where training runs: the device, mixed precision on it, and every random generator's state.

``--device auto`` is CUDA when torch sees a GPU, else the CPU.  bf16 autocast runs on the
device the tensors are on (on CUDA as on the CPU).  :func:`rng_state` /
:func:`set_rng_state` cover torch's CPU generator, every CUDA device's, NumPy's global one and
Python's ``random``, as plain tensors and numbers (checkpoints load with
``weights_only=True``), so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Any

import numpy as np
import torch

from streamcolor.errors import ModelError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def training_device(name: str = "auto") -> torch.device:
    if name not in DEVICES:
        raise ModelError(f"unknown device {name!r} (auto, cpu or cuda)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device``'s type (a no-op when not ``enabled``)."""
    kind = device.type if isinstance(device, torch.device) else str(device)
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled)


def data_workers(device: torch.device, requested: int | None = None) -> int:
    """Batch-making processes: as asked, else none on the CPU (the crops are cheap beside the
    model there and workers would take its cores) and up to 4 for a GPU."""
    if requested is not None:
        return max(0, requested)
    if device.type != "cuda":
        return 0
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cpus or 2) - 1))


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(np_state[1], np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "gauss": float(np_state[4])},
        "python": {"version": py_version, "internal": list(py_internal),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any] | torch.Tensor) -> None:
    """Restore :func:`rng_state`'s output (or a bare torch CPU state, the older format)."""
    if isinstance(state, torch.Tensor):
        torch.set_rng_state(state)
        return
    torch.set_rng_state(state["torch"])
    n = state.get("numpy")
    if n is not None:
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["gauss"]))
    p = state.get("python")
    if p is not None:
        random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    cuda = state.get("cuda")
    if cuda is not None:
        if torch.cuda.is_available() and torch.cuda.device_count() >= len(cuda):
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning("the checkpoint has CUDA random states but no such GPU is here; "
                        "dropout and augmentation on the GPU will not repeat exactly")
