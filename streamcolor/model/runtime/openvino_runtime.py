"""The OpenVINO runtime (CPU): the generator compiled once per input shape, LATENCY hint.

Measured on the 2-core machine (``benchmarks/bench_engine.py``): at bf16 it runs the same
weights about twice as fast as torch's bf16 + channels-last path, within bf16 rounding of
torch fp32, and it shares the cores fairly with another busy process.  A stream's frames all
have one size, so each size is compiled once (a fraction of a second); a file's short last
batch is padded to the compiled batch, a live stream's smaller batches get their own
compiled shape.  One instance serves one thread at a time.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from streamcolor.errors import ModelError, ResourceError
from streamcolor.model.contract import ModelContract
from streamcolor.model.runtime.threads import available_cpus, threads_for

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


@functools.cache
def openvino_core() -> Any:
    """The process's one ``openvino.Core`` (made on first use, never released).

    Every Core loads its own CPU plugin, and each plugin points the calling thread's
    alternate signal stack at a fresh mapping, putting back the previous one and unmapping its
    own when it is destroyed.  Cores released in another order than they were made leave the
    thread pointing at an unmapped stack; the next signal with a handler (a Ctrl-C, a child's
    SIGCHLD) then kills the process with SIGSEGV.  One Core for the process never does."""
    import openvino as ov

    return ov.Core()


def openvino_version() -> str:
    import openvino as ov

    return ov.get_version()


class OpenVINORuntime:
    """A :class:`~streamcolor.model.runtime.Runtime` running an OpenVINO model on the CPU."""

    kind = "openvino"

    def __init__(self, model: Any | Path, contract: ModelContract, name: str,
                 precision: str = "auto", batch_size: int | None = None,
                 threads: int | None = None, pipelines: int = 1) -> None:
        self.core = openvino_core()
        self.model = self.core.read_model(str(model)) if isinstance(model, Path) else model
        self.contract = contract
        self.name = name
        caps = set(self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        if precision == "auto":
            precision = "bf16" if "BF16" in caps else "fp32"
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r} (auto, fp32, bf16, fp16)")
        if precision != "fp32" and precision.upper() not in caps:
            raise ModelError(f"this CPU has no {precision} support in OpenVINO "
                             f"({', '.join(sorted(caps))}); use --precision fp32")
        self.precision = precision
        self.threads = threads_for(pipelines, threads)
        # Measured end to end (benchmarks/results/engine.md): batch 4 is 7-8 % faster than 1.
        self._batch = batch_size or 4
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": PRECISIONS[precision],
            "INFERENCE_NUM_THREADS": self.threads,
            # Pinned threads of two processes with fewer threads than cores land on the
            # same cores: pin only when this runtime has them all.
            "ENABLE_CPU_PINNING": self.threads >= available_cpus(),
        }
        self._compiled: dict[tuple[int, int, int], tuple[Any, Any]] = {}

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def description(self) -> str:
        return f"openvino {self.precision}"

    def _request(self, b: int, h: int, w: int) -> Any:
        key = (b, h, w)
        if key not in self._compiled:
            model = self.model.clone()
            model.reshape([b, 1, h, w])
            try:
                compiled = self.core.compile_model(model, "CPU", self.config)
            except RuntimeError as e:
                if "memory" in str(e).lower() or "alloc" in str(e).lower():
                    raise ResourceError(f"openvino: out of memory compiling the generator for "
                                        f"{b}x{w}x{h}") from None
                raise
            self._compiled[key] = (compiled, compiled.create_infer_request())
            log.debug("openvino: compiled %s for batch %d at %dx%d", self.name, b, w, h)
        return self._compiled[key]

    def _batch_for(self, n: int, h: int, w: int) -> int:
        """The compiled batch to run ``n`` frames on: ``n`` itself when compiled, else a
        larger compiled one (a file's short last batch is padded, not compiled), else ``n``
        (a live stream's batches of what has arrived are compiled once each)."""
        if (n, h, w) in self._compiled:
            return n
        larger = [b for (b, bh, bw) in self._compiled if (bh, bw) == (h, w) and b > n]
        return min(larger) if larger else n

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, np.float32)[:, None]
        n, _, h, w = x.shape
        b = self._batch_for(n, h, w)
        if n < b:
            x = np.concatenate([x, np.zeros((b - n, 1, h, w), np.float32)])
        compiled, request = self._request(b, h, w)
        try:
            out = request.infer({0: x})[compiled.output(0)]
        except RuntimeError as e:
            if "memory" in str(e).lower() or "alloc" in str(e).lower():
                raise ResourceError(f"openvino: out of memory running the generator on a batch "
                                    f"of {b} at {w}x{h}") from None
            raise
        # The output tensor is reused by the next call: copy it out (NCHW -> NHWC).
        return np.ascontiguousarray(out[:n].transpose(0, 2, 3, 1), np.float32)
