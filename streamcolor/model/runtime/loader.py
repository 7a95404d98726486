"""Choosing and building a runtime for a model.

``auto`` is OpenVINO on a CPU (when installed) and torch on CUDA.  A ``.safetensors`` model
is converted for OpenVINO / ONNX Runtime through ONNX, once: the converted file is cached
under the weights' sha256 (:mod:`.cache`), so later runs load it in a fraction of a second.
An exported ``.onnx`` or OpenVINO ``.xml`` file runs directly on the runtimes that read it.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any

from streamcolor.errors import ModelError
from streamcolor.model.contract import ModelContract
from streamcolor.model.runtime import cache, convert

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino", "onnxruntime")
_MODULES = {"torch": "torch", "openvino": "openvino", "onnxruntime": "onnxruntime"}


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(_MODULES[runtime]) is not None


def resolve_runtime(runtime: str, device: str, file_format: str = "safetensors") -> str:
    """The runtime ``runtime`` stands for on ``device`` ("auto" resolved), or ModelError."""
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r} (one of {', '.join(RUNTIMES)})")
    cuda = device == "cuda" or (device == "auto" and _cuda_available())
    if runtime == "auto":
        if file_format == "openvino":
            runtime = "openvino"
        elif file_format == "onnx":
            runtime = "openvino" if installed("openvino") and not cuda else "onnxruntime"
        else:
            runtime = "openvino" if not cuda and installed("openvino") else "torch"
    if runtime != "torch" and not installed(runtime):
        raise ModelError(f"runtime {runtime!r} is not installed ({convert.INSTALL[runtime]})")
    if runtime == "openvino" and cuda and device == "cuda":
        raise ModelError("runtime 'openvino' runs on the CPU here; use --device cpu or "
                         "--runtime torch for CUDA")
    if file_format != "safetensors" and runtime == "torch":
        raise ModelError(f"a {file_format} model runs on openvino or onnxruntime, not torch")
    if file_format == "openvino" and runtime != "openvino":
        raise ModelError("an OpenVINO IR model runs on runtime 'openvino' only")
    return runtime


def _cuda_available() -> bool:
    if not installed("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def _onnx_entry(net: Any, contract: ModelContract, sha256: str | None) -> tuple[Path, Any]:
    """(path of the model as ONNX, temporary folder to keep alive or None)."""
    from streamcolor.model.runtime.onnx_runtime import onnxruntime_version

    def build(folder: Path) -> None:
        (folder / "model.onnx").write_bytes(convert.onnx_bytes(net(), contract))

    if sha256:
        import torch

        version = f"torch {torch.__version__}"
        if installed("onnxruntime"):
            version += f", onnxruntime {onnxruntime_version()}"
        key = cache.cache_key(sha256, "onnx", version, contract.to_dict())
        entry = cache.cached(key, build, lambda f: (f / "model.onnx").stat().st_size > 0)
        if entry is not None:
            return entry / "model.onnx", None
    tmp = tempfile.TemporaryDirectory(prefix="streamcolor-onnx-")
    build(Path(tmp.name))
    return Path(tmp.name) / "model.onnx", tmp


def _openvino_model(net: Any, contract: ModelContract, sha256: str | None) -> Any:
    import openvino as ov

    from streamcolor.model.runtime.openvino_runtime import openvino_core, openvino_version

    core = openvino_core()
    if sha256:
        def build(folder: Path) -> None:
            onnx_path, keep = _onnx_entry(net, contract, sha256)
            ov.save_model(core.read_model(str(onnx_path)), str(folder / "model.xml"),
                          compress_to_fp16=False)
            del keep

        key = cache.cache_key(sha256, "openvino", openvino_version(), contract.to_dict())
        entry = cache.cached(key, build, lambda f: core.read_model(str(f / "model.xml"))
                             is not None)
        if entry is not None:
            return core.read_model(str(entry / "model.xml"))
    onnx_path, keep = _onnx_entry(net, contract, None)
    model = core.read_model(str(onnx_path))
    del keep
    return model


def build_runtime(runtime: str, *, net: Any = None, file: Path | None = None,
                  file_format: str = "safetensors", contract: ModelContract, name: str,
                  sha256: str | None = None, device: str = "auto", precision: str = "auto",
                  batch_size: int | None = None, threads: int | None = None,
                  render_factor: int | None = None, pipelines: int = 1) -> Any:
    """A runtime of kind ``runtime`` (already resolved) for a model.

    ``net`` is a callable returning the torch generator (loaded only when a conversion or
    the torch runtime needs it); ``file`` an exported ``.onnx``/``.xml`` model."""
    if runtime == "torch":
        from streamcolor.model.runtime.torch_runtime import TorchRuntime

        if threads is not None:
            raise ModelError("torch's thread count is process-wide: set it with "
                             "streamcolor.set_threads(), not per model")
        return TorchRuntime(net(), contract, name, device, precision, batch_size,
                            render_factor)
    if runtime == "openvino":
        from streamcolor.model.runtime.openvino_runtime import OpenVINORuntime

        if file is not None and file_format in ("openvino", "onnx"):
            model = Path(file)
        else:
            model = _openvino_model(net, contract, sha256)
        return OpenVINORuntime(model, contract, name, precision, batch_size, threads, pipelines)
    from streamcolor.model.runtime.onnx_runtime import OnnxRuntime

    if file is not None and file_format == "onnx":
        onnx_path, keep = Path(file), None
    else:
        onnx_path, keep = _onnx_entry(net, contract, sha256)
    try:
        return OnnxRuntime(onnx_path, contract, name, precision, batch_size, threads,
                           "cuda" if device == "cuda" else "cpu", pipelines)
    finally:
        del keep  # the session holds the model; a temporary file can go
