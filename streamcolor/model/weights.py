"""Weights as records: a named file with its architecture, metadata and sha256 (torchvision
``Weights`` style).  Files are safetensors, so loading never unpickles code.

``models/models.json`` lists the shipped records; each ``.safetensors`` also carries its own
metadata (under the key ``streamcolor``) so a file copied elsewhere still describes itself.
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

from streamcolor.errors import InputNotFoundError, ModelError, WeightsIntegrityError
from streamcolor.model.networks import ChromaUNet, create_generator, prepare_for_inference

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent / "shipped"
INDEX_NAME = "models.json"
DEFAULT_MODEL = "stable"


def models_dir() -> Path:
    return Path(os.environ.get("STREAMCOLOR_MODELS", MODELS_DIR))


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

    @property
    def render_factor(self) -> int:
        return int(self.meta.get("render_factor", 16))

    def verify(self) -> None:
        if self.sha256 is None:
            return
        actual = sha256_file(self.path)
        if actual != self.sha256:
            raise WeightsIntegrityError(
                f"{self.path}: sha256 {actual[:12]}… does not match the record {self.sha256[:12]}…"
            )


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


def save_weights(model: ChromaUNet, path: str | Path, meta: dict[str, Any]) -> str:
    """Export an inference-ready state dict (spectral norm baked in) with metadata; returns sha256.

    Written atomically (temporary file in the same folder, then rename).
    """
    state = plain_state_dict(model)
    meta = {"arch": model.config.name, "config": model.config.to_dict(), **meta}
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
    """Shipped models from ``models/models.json``."""
    index = models_dir() / INDEX_NAME
    if not index.exists():
        return {}
    entries = json.loads(index.read_text())
    return {
        name: WeightsRecord(
            name=name,
            path=models_dir() / e["file"],
            arch=e["arch"],
            sha256=e.get("sha256"),
            meta=e.get("meta", {}),
        )
        for name, e in entries.items()
    }


def resolve_model(name_or_path: str | None) -> WeightsRecord:
    """A shipped model name, or a path to a ``.safetensors`` file written by streamcolor."""
    name = name_or_path or DEFAULT_MODEL
    records = list_models()
    if name in records:
        return records[name]
    p = Path(name)
    if p.suffix == ".safetensors" or os.sep in name:
        if not p.exists():
            raise InputNotFoundError(f"{p}: weights file not found")
        meta = read_metadata(p)
        return WeightsRecord(name=p.stem, path=p, arch=meta["arch"], meta=meta)
    known = ", ".join(sorted(records)) or "none installed"
    raise ModelError(f"unknown model {name!r} (known: {known}; or give a .safetensors path)")


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
    return prepare_for_inference(model)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Training checkpoints: torch files loaded with ``weights_only=True`` (no code unpickled)."""
    return torch.load(str(path), map_location=map_location, weights_only=True)
