"""Converting a generator for other runtimes: torch -> ONNX (dynamic batch, height and width,
opset 17) -> OpenVINO IR, with the model's metadata and contract embedded, so an exported file
describes itself like a ``.safetensors`` does."""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from streamcolor.errors import ModelError
from streamcolor.model.contract import ModelContract

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "luma", "chroma"
META_KEY = "streamcolor"


INSTALL = {"openvino": "pip install openvino", "onnx": "pip install onnx",
           "onnxruntime": "pip install 'streamcolor[onnx]'"}


def require(module: str, runtime: str) -> Any:
    """Import ``module`` or one :class:`ModelError` line saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise ModelError(f"cannot load {runtime!r}: {e}") from None
        raise ModelError(f"{runtime!r} is not installed ({INSTALL[module]})") from None
    except (ImportError, OSError) as e:  # installed, but its libraries do not load
        raise ModelError(f"cannot load {runtime!r}: {str(e).splitlines()[0][:200]}") from None


def onnx_bytes(net: Any, contract: ModelContract) -> bytes:
    """The generator as an ONNX model (fp32, dynamic batch/height/width)."""
    import torch

    m = contract.multiple
    example = torch.rand(1, 1, 7 * m, 9 * m)
    buf = io.BytesIO()
    dyn = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(net.eval(), (example,), buf, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: dyn, OUTPUT_NAME: dyn})
    return buf.getvalue()


def metadata(meta: dict[str, Any], contract: ModelContract, sha256: str | None) -> str:
    return json.dumps({**meta, "contract": contract.to_dict(), "source_sha256": sha256},
                      sort_keys=True, default=str)


def with_onnx_metadata(data: bytes, meta_json: str) -> bytes:
    """``data`` with ``meta_json`` in its ``metadata_props`` (needs the ``onnx`` package)."""
    onnx = require("onnx", "onnx export")
    model = onnx.load_from_string(data)
    del model.metadata_props[:]
    prop = model.metadata_props.add()
    prop.key, prop.value = META_KEY, meta_json
    return model.SerializeToString()


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    onnx = require("onnx", "onnx")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
    for prop in model.metadata_props:
        if prop.key == META_KEY:
            return _meta(prop.value, path)
    raise ModelError(f"{path}: ONNX model without streamcolor metadata")


def openvino_model(core: Any, onnx_path: Path, meta_json: str | None = None) -> Any:
    model = core.read_model(str(onnx_path))
    if meta_json is not None:
        model.set_rt_info(meta_json, [META_KEY])
    return model


def read_openvino_metadata(core: Any, path: Path) -> tuple[Any, dict[str, Any]]:
    try:
        model = core.read_model(str(path))
    except Exception as e:
        raise ModelError(f"{path}: not a readable OpenVINO model ({e})") from None
    if not model.has_rt_info([META_KEY]):
        raise ModelError(f"{path}: OpenVINO model without streamcolor metadata")
    return model, _meta(model.get_rt_info([META_KEY]).astype(str), path)


def _meta(text: str, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise ModelError(f"{path}: streamcolor metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: streamcolor metadata is not a mapping")
    return meta
