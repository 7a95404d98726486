"""The protocol every runtime implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from streamcolor.model.contract import ModelContract


@runtime_checkable
class Runtime(Protocol):
    """Runs a generator on batches.

    ``predict`` takes ``(B, H, W)`` float32 luma, already scaled to ``contract.input_range``
    with H and W multiples of ``contract.multiple``, and returns ``(B, H, W, 2)`` float32 raw
    chroma (times ``contract.chroma_scale`` it is the Cb/Cr offset).  ``batch_size`` is the
    batch the runtime runs best at; callers may pass fewer frames.
    """

    name: str
    contract: ModelContract

    @property
    def batch_size(self) -> int: ...

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


def is_runtime(obj: object) -> bool:
    return isinstance(obj, Runtime)
