"""Weights as records: a named file with its architecture, input/output contract, metadata
and sha256 (torchvision ``Weights`` style).  Files are safetensors, so loading never unpickles
code.

The shipped models are package data (``streamcolor/model/shipped/``, found with
:mod:`importlib.resources`, so they work from a wheel as from a checkout); its ``models.json``
lists their records, and ``STREAMCOLOR_MODELS`` points at another such folder.  Each
``.safetensors`` also carries its own metadata (under the key ``streamcolor``) so a file
copied elsewhere still describes itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from streamcolor.errors import (
    InputNotFoundError,
    ModelError,
    UnsafeCheckpointError,
    WeightsIntegrityError,
)
from streamcolor.model.contract import ModelContract, contract_from_meta
from streamcolor.model.networks import ChromaUNet, create_generator, prepare_for_inference

log = logging.getLogger(__name__)

SHIPPED_PACKAGE = "streamcolor.model"
SHIPPED_FOLDER = "shipped"
INDEX_NAME = "models.json"
DEFAULT_MODEL = "stable"


def models_dir() -> Path:
    """The folder of ``models.json`` and its weights: ``$STREAMCOLOR_MODELS`` if set, else
    the package's own ``shipped/`` folder."""
    override = os.environ.get("STREAMCOLOR_MODELS")
    if override:
        return Path(override)
    from importlib.resources import files

    # A regular (wheel or editable) install: the package data is a real folder on disk.
    return Path(str(files(SHIPPED_PACKAGE) / SHIPPED_FOLDER))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class WeightsRecord:
    """One weights file and what is known about it."""

    name: str
    path: Path
    arch: str
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    format: str = "safetensors"  # or "onnx" / "openvino" for exported files

    @property
    def contract(self) -> ModelContract:
        return contract_from_meta(self.meta, str(self.path))

    @property
    def render_factor(self) -> int:
        return self.contract.render_factor

    def verify(self) -> str:
        """The file's sha256, after checking it against the record's (if it has one)."""
        actual = sha256_file(self.path)
        if self.sha256 is not None and actual != self.sha256:
            raise WeightsIntegrityError(
                f"{self.path}: sha256 {actual[:12]}… does not match the record {self.sha256[:12]}…"
            )
        return actual


def plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict with spectral norm baked in (``X.parametrizations.weight.original`` and its
    power-iteration vectors become ``X.weight``), leaving ``model`` itself untouched."""
    from torch.nn.utils import parametrize

    was_training = model.training
    model.eval()  # eval: spectral norm uses its stored vectors, no power iteration
    try:
        with torch.no_grad():
            state = {k: v for k, v in model.state_dict().items() if "parametrizations." not in k}
            for name, module in model.named_modules():
                if parametrize.is_parametrized(module, "weight"):
                    state[f"{name}.weight" if name else "weight"] = module.weight
            state = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    finally:
        model.train(was_training)
    return state


def contract_of(model: ChromaUNet, render_factor: int = 16,
                chroma_scale: float = 1.0) -> ModelContract:
    """The contract of an in-memory generator (its current decoding, if it is a hybrid)."""
    hybrid = model.classes is not None
    return ModelContract(multiple=model.config.multiple, render_factor=render_factor,
                         chroma_scale=chroma_scale,
                         temperature=model.temperature if hybrid else None,
                         class_weight=model.class_weight if hybrid else None)


def save_weights(model: ChromaUNet, path: str | Path, meta: dict[str, Any]) -> str:
    """Export an inference-ready state dict (spectral norm baked in) with metadata; returns sha256.

    Written atomically (temporary file in the same folder, then rename).
    """
    state = plain_state_dict(model)
    meta = {"arch": model.config.name, "config": model.config.to_dict(), **meta}
    meta.setdefault("contract", contract_of(model, int(meta.get("render_factor", 16))).to_dict())
    contract_from_meta(meta, str(path))  # refuse to write a contract nobody can read
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(state, str(tmp), metadata={"streamcolor": json.dumps(meta, sort_keys=True)})
    os.replace(tmp, path)
    return sha256_file(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("streamcolor")
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors weights file ({e})") from None
    if raw is None:
        raise ModelError(f"{path}: safetensors file without streamcolor metadata")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"{path}: streamcolor metadata is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("arch"), str):
        raise ModelError(f"{path}: streamcolor metadata names no architecture ('arch')")
    return meta


def list_models() -> dict[str, WeightsRecord]:
    """The records of ``models.json`` in :func:`models_dir` (none if it has no index)."""
    folder = models_dir()
    index = folder / INDEX_NAME
    if not index.exists():
        return {}
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else f"not valid JSON: {e}"
        raise ModelError(f"{index}: cannot read the model index ({reason})") from None
    if not isinstance(entries, dict):
        raise ModelError(f"{index}: the model index must map names to records")
    records = {}
    for name, e in entries.items():
        if not isinstance(e, dict) or not isinstance(e.get("file"), str) or \
                not isinstance(e.get("arch"), str) or not isinstance(e.get("meta", {}), dict):
            raise ModelError(f"{index}: record {name!r} needs 'file' and 'arch' strings "
                             "(and an optional 'meta' mapping)")
        records[name] = WeightsRecord(name=name, path=folder / e["file"], arch=e["arch"],
                                      sha256=e.get("sha256"), meta=e.get("meta", {}))
    return records


FILE_FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".xml": "openvino"}


def resolve_model(name_or_path: str | None) -> WeightsRecord:
    """A shipped model name, or a path to a ``.safetensors`` file written by streamcolor, or
    to an ``.onnx`` / OpenVINO ``.xml`` file written by ``streamcolor export``."""
    name = name_or_path or DEFAULT_MODEL
    records = list_models()
    if name in records:
        return records[name]
    p = Path(name)
    fmt = FILE_FORMATS.get(p.suffix.lower())
    if fmt or os.sep in name:
        if not p.exists():
            raise InputNotFoundError(f"{p}: weights file not found")
        if fmt == "onnx":
            from streamcolor.model.runtime.convert import read_onnx_metadata

            meta = read_onnx_metadata(p)
        elif fmt == "openvino":
            from streamcolor.model.runtime.convert import read_openvino_metadata
            from streamcolor.model.runtime.openvino_runtime import openvino_core

            meta = read_openvino_metadata(openvino_core(), p)[1]
        else:
            meta = read_metadata(p)
        return WeightsRecord(name=meta.get("name") or p.stem, path=p,
                             arch=str(meta.get("arch", "unknown")), meta=meta,
                             format=fmt or "safetensors")
    known = ", ".join(sorted(records)) or "none installed"
    raise ModelError(f"unknown model {name!r} (known: {known}; or give a .safetensors, "
                     ".onnx or .xml path)")


def load_generator(record: WeightsRecord, verify: bool = True) -> ChromaUNet:
    """Build the record's architecture and load its weights, ready for inference."""
    if not record.path.exists():
        raise ModelError(f"{record.path}: weights file of model {record.name!r} is missing")
    if verify:
        record.verify()
    model = create_generator(record.arch, pretrained_encoder=False, spectral_norm=False)
    try:
        state = load_file(str(record.path))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{record.path}: cannot read weights ({e})") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # tensor shapes differ
        raise ModelError(
            f"{record.path}: weights do not fit architecture {record.arch!r} (shapes differ)"
        ) from None
    if missing or unexpected:
        raise ModelError(
            f"{record.path}: weights do not fit architecture {record.arch!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys)"
        )
    apply_decoding(model, record.contract, str(record.path))
    return prepare_for_inference(model)


def apply_decoding(model: ChromaUNet, contract: ModelContract, where: str = "model") -> None:
    """Set a hybrid generator's decoding from ``contract``; a contract with a decoding for a
    generator without a classification head (or the reverse) is a :class:`ModelError`."""
    has_head = model.classes is not None
    if has_head != contract.hybrid:
        raise ModelError(f"{where}: the contract {'has' if contract.hybrid else 'lacks'} a "
                         f"hybrid decoding but architecture {model.config.name!r} "
                         f"{'has no' if not has_head else 'has a'} classification head")
    if contract.hybrid:
        model.set_decoding(contract.temperature, contract.class_weight)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Training checkpoints: torch files loaded with ``weights_only=True`` (no code unpickled).

    A missing file, a file that is no torch checkpoint, or one that would need code to be
    unpickled is one :class:`ModelError` line."""
    import pickle

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{p}: no such checkpoint file")
    try:
        ckpt = torch.load(str(p), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeCheckpointError(f"{p}: not a plain tensor checkpoint (it would need code to be "
                         "unpickled, which streamcolor refuses)") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"{p}: not a readable torch checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict):
        raise ModelError(f"{p}: not a streamcolor checkpoint (a {type(ckpt).__name__}, "
                         "not a mapping)")
    return ckpt
