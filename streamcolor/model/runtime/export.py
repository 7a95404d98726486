"""``streamcolor export``: a model as an ONNX file or OpenVINO IR, its metadata embedded.

The ONNX model takes ``luma`` (N, 1, H, W) float32 (full-range BT.601 Y / 255; N, H, W
dynamic, H and W multiples of the contract's ``multiple``) and returns ``chroma`` (N, 2, H, W):
the Cb/Cr offsets in [-0.5, 0.5].  The IR is the same network.  ``--model FILE.onnx`` /
``FILE.xml`` runs an exported file again (OpenVINO or ONNX Runtime).
"""

from __future__ import annotations

import os
from pathlib import Path

from streamcolor.errors import OutputError
from streamcolor.io.atomic import check_new_file, temp_path_for
from streamcolor.model.runtime import convert

FORMATS = {".onnx": "onnx", ".xml": "openvino"}


def export_model(model: str, output: Path, overwrite: bool = False) -> list[Path]:
    """Write ``model`` (a shipped name or a ``.safetensors`` path) to ``output`` by its suffix;
    returns the files written."""
    from streamcolor.model.weights import load_generator, resolve_model

    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise OutputError(f"{output}: export writes .onnx (ONNX) or .xml (OpenVINO IR)")
    record = resolve_model(model)
    if record.format != "safetensors":
        raise OutputError(f"{record.path}: is already an exported model")
    files = [output] if fmt == "onnx" else [output, output.with_suffix(".bin")]
    for f in files:
        check_new_file(f, overwrite, [record.path])
    sha256 = record.verify()
    contract = record.contract
    meta = convert.metadata({"name": record.name, "arch": record.arch,
                             **{k: v for k, v in record.meta.items() if k != "contract"}},
                            contract, sha256)
    data = convert.onnx_bytes(load_generator(record, verify=False), contract)
    if fmt == "onnx":
        from streamcolor.io.atomic import write_bytes_atomic

        write_bytes_atomic(output, convert.with_onnx_metadata(data, meta))
        return files
    convert.require("openvino", "openvino")
    import openvino as ov

    from streamcolor.model.runtime.openvino_runtime import openvino_core

    tmp_xml = temp_path_for(output)
    tmp_onnx = tmp_xml.with_suffix(".onnx")
    try:
        tmp_onnx.write_bytes(data)
        ir = convert.openvino_model(openvino_core(), tmp_onnx, meta)
        ov.save_model(ir, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), files[1])  # the weights first, then the graph
        os.replace(tmp_xml, output)
    except OSError as e:
        raise OutputError(f"{output}: cannot write ({e.strerror or e})") from None
    finally:
        for t in (tmp_onnx, tmp_xml, tmp_xml.with_suffix(".bin")):
            t.unlink(missing_ok=True)
    return files
