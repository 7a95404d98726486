"""The ONNX Runtime runtime: the exported ONNX model on ORT's CPU provider (or CUDA's, when the
GPU build is installed and a GPU is present).  fp32 only: ORT's CPU kernels have no bf16 path
worth taking here.  Its intra-op threads do not spin while they wait, so it shares the cores
with another busy process (``benchmarks/bench_engine.py``, section ``pairs``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamcolor.errors import ModelError
from streamcolor.model.contract import ModelContract
from streamcolor.model.runtime.convert import INPUT_NAME, require
from streamcolor.model.runtime.threads import threads_for

log = logging.getLogger(__name__)


def onnxruntime_version() -> str:
    return require("onnxruntime", "onnxruntime").__version__


class OnnxRuntime:
    """A :class:`~streamcolor.model.runtime.Runtime` running an ONNX model with ORT."""

    kind = "onnxruntime"

    def __init__(self, model: Path | bytes, contract: ModelContract, name: str,
                 precision: str = "auto", batch_size: int | None = None,
                 threads: int | None = None, device: str = "cpu", pipelines: int = 1) -> None:
        ort = require("onnxruntime", "onnxruntime")
        if precision not in ("auto", "fp32"):
            raise ModelError(f"runtime 'onnxruntime' runs fp32 only, not {precision}")
        self.contract = contract
        self.name = name
        self.precision = "fp32"
        self.threads = threads_for(pipelines, threads)
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3  # errors only: ours name the file and the problem
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelError("runtime 'onnxruntime' has no CUDA provider here "
                                 "(install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        source = str(model) if isinstance(model, Path) else model
        try:
            self.session = ort.InferenceSession(source, so, providers=providers)
        except Exception as e:  # ORT raises its own exception types
            raise ModelError(f"{model if isinstance(model, Path) else name}: ONNX Runtime "
                             f"cannot load the model ({str(e).splitlines()[0][:200]})") from None
        self._batch = batch_size or 1

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def description(self) -> str:
        return "onnxruntime fp32"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, np.float32)[:, None]
        (out,) = self.session.run(None, {INPUT_NAME: x})
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1), np.float32)
