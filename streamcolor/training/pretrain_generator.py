"""NoGAN stage 1: pretrain the generator with a feature loss + L1 on chroma.

Progressive phases like DeOldify's (small crops first, larger later), the encoder frozen first
and then unfrozen with a lower learning rate.  Resumable: rerunning the same command after a
kill continues from ``RUN_DIR/checkpoint.pt`` (the loop and checkpoint format are the ones
every stage shares; stage-1 checkpoints written before that, with a top-level ``model`` key,
still load as generators everywhere but cannot be resumed).

    python -m streamcolor.training.pretrain_generator --train ../shared/data/train --run runs/base \
        --phases 128:16:3000:frozen,128:16:2000:unfrozen
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamcolor.model.networks import create_generator
from streamcolor.training.data import BatchLoader, CropPlan, ImageBank
from streamcolor.training.device import autocast, data_workers, training_device
from streamcolor.training.loop import LoopState, run_loop
from streamcolor.training.losses import (
    ClassBalance,
    FeatureLoss,
    colorfulness_hinge,
    run_generator,
)
from streamcolor.training.run import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    size: int
    batch: int
    steps: int
    frozen_encoder: bool

    @classmethod
    def parse(cls, text: str) -> Phase:
        size, batch, steps, mode = text.split(":")
        if mode not in ("frozen", "unfrozen"):
            raise argparse.ArgumentTypeError(f"phase mode must be frozen|unfrozen, got {mode!r}")
        return cls(int(size), int(batch), int(steps), mode == "frozen")


@dataclass
class PretrainConfig:
    train: str
    run: str
    arch: str | None = None  # default: the --init model's, else unet_lite0
    phases: tuple[Phase, ...] = (Phase(128, 16, 3000, True), Phase(128, 16, 2000, False))
    lr: float = 1e-3
    encoder_lr_ratio: float = 0.1
    weight_decay: float = 1e-3
    l1_weight: float = 20.0
    feature_weight: float = 1.0
    cf_weight: float = 0.0  # colourfulness hinge matched to each image's truth (0: off)
    seed: int = 0
    bf16: bool = True
    log_every: int = 25
    checkpoint_every: int = 200
    max_images: int | None = None
    pretrained_encoder: bool = True
    feature_loss_pretrained: bool = True
    threads: int | None = None
    init: str | None = None  # checkpoint whose generator weights start this run
    device: str = "auto"  # auto | cpu | cuda
    workers: int | None = None  # batch-making processes (default: 0 on CPU, up to 4 on GPU)
    min_colorfulness: float = 0.0  # drop training photos less colourful than this
    # hybrid head (architectures with a classification head)
    ce_weight: float = 1.0  # rebalanced cross-entropy over the chroma bins
    rebalance: bool = True  # Zhang's class rebalancing (lambda 0.5)
    feature_on: str = "class"  # the feature loss sees the annealed mean ("class") or "output"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["phases"] = [asdict(p) for p in self.phases]
        return d


def lr_factor(step_in_phase: int, steps: int, warmup: int = 100) -> float:
    """Linear warm-up then cosine decay to 5 % within each phase."""
    if step_in_phase < warmup:
        return (step_in_phase + 1) / warmup
    t = (step_in_phase - warmup) / max(steps - warmup, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def phase_at(phases: tuple[Phase, ...], step: int) -> tuple[int, int]:
    """(phase index, step within phase) for a global step."""
    start = 0
    for i, p in enumerate(phases):
        if step < start + p.steps:
            return i, step - start
        start += p.steps
    return len(phases), 0


def generator_loss(model, feat_loss: FeatureLoss, rgb: torch.Tensor, cfg: PretrainConfig,
                   balance: ClassBalance | None = None,
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 on the regression head's chroma + the feature loss (on the annealed mean's RGB for a
    hybrid generator, as ``feature_on`` says) [+ the rebalanced cross-entropy of the
    classification head] [+ the colourfulness hinge on the output]."""
    out = run_generator(model, rgb, cfg.bf16)
    l1 = F.l1_loss(out.regression, out.target)
    seen = out.class_rgb if out.class_rgb is not None and cfg.feature_on == "class" else out.rgb
    with autocast(rgb.device, cfg.bf16):
        feat = feat_loss(seen, rgb)
    loss = cfg.l1_weight * l1 + cfg.feature_weight * feat.float()
    parts = {"l1": l1.item(), "feature": feat.item()}
    if out.logits is not None:
        if balance is None:
            raise ValueError("a hybrid generator needs the classification targets (balance)")
        ce = balance.loss(out.logits, out.target)
        loss = loss + cfg.ce_weight * ce
        parts["ce"] = ce.item()
    if cfg.cf_weight:
        hinge = colorfulness_hinge(out.rgb, rgb)
        loss = loss + cfg.cf_weight * hinge
        parts["cf_hinge"] = hinge.item()
    return loss, parts


def _shipped_init(init: str | None):
    """The weights record when ``init`` names a shipped model or a ``.safetensors`` file
    (fine-tuning, e.g. the satellite model from ``stable``); None for a training checkpoint."""
    if not init or init.endswith(".pt"):
        return None
    from streamcolor.model.weights import list_models, resolve_model

    if init in list_models() or init.endswith(".safetensors"):
        return resolve_model(init)
    return None


def _initial_generator(cfg: PretrainConfig):
    """(generator, its arch, weights to load on a fresh run or None).  A generator with a
    classification head may start from its plain twin's weights (the head starts at zero)."""
    shipped = _shipped_init(cfg.init)
    if shipped is not None:  # its spectral norm is baked in: fine-tune the plain weights
        from safetensors.torch import load_file

        arch = cfg.arch or shipped.arch
        return create_generator(arch, spectral_norm=False), arch, (shipped, load_file)
    if cfg.init:
        from streamcolor.training.gan import generator_weights, generator_with

        found, weights = generator_weights(cfg.init)
        arch = cfg.arch or found
        return generator_with(arch, weights, load=False), arch, weights
    arch = cfg.arch or "unet_lite0"
    return create_generator(arch, pretrained_encoder=cfg.pretrained_encoder), arch, None


def load_init_weights(model, weights: dict[str, torch.Tensor], where: str) -> None:
    """Load ``weights``; keys missing from them are allowed only for a classification head
    (warm-starting a hybrid from its plain twin)."""
    from streamcolor.errors import ModelError

    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError:
        raise ModelError(f"{where}: weights do not fit {model.config.name} (shapes differ)"
                         ) from None
    if unexpected or any(not k.startswith("classes.") for k in missing):
        raise ModelError(f"{where}: weights do not fit {model.config.name} ({len(missing)} "
                         f"missing, {len(unexpected)} unexpected keys)")
    if missing:
        log.info("%s: the classification head starts from zero (%d tensors)", where,
                 len(missing))


def train(cfg: PretrainConfig) -> Path:
    """Run (or resume) stage 1 through the loop every stage shares (:mod:`.loop`)."""
    if cfg.threads:
        from streamcolor.model.runtime import configure_threads

        configure_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = training_device(cfg.device)
    run = RunDir(cfg.run)
    model, arch, init = _initial_generator(cfg)
    run.save_config({**cfg.to_dict(), "arch": arch})
    feat_loss = FeatureLoss(pretrained=cfg.feature_loss_pretrained)
    if init is not None and not run.checkpoint.exists():
        if isinstance(init, tuple):
            record, load_file = init
            record.verify()
            init = load_file(str(record.path))
        load_init_weights(model, init, str(cfg.init))
        log.info("initialised the generator from %s", cfg.init)
    model.to(device)
    feat_loss.to(device)
    opt = torch.optim.AdamW(
        [
            {"params": model.decoder_parameters(), "lr": cfg.lr},
            {"params": model.encoder_parameters(), "lr": cfg.lr * cfg.encoder_lr_ratio},
        ],
        weight_decay=cfg.weight_decay,
    )
    bank = ImageBank(cfg.train, max_short_side=256, limit=cfg.max_images,
                     min_colorfulness=cfg.min_colorfulness)
    balance = ClassBalance(bank.chroma_samples(), cfg.rebalance, device) \
        if model.classes is not None else None
    total = sum(p.steps for p in cfg.phases)

    plan = CropPlan(tuple((p.steps, p.size, p.batch) for p in cfg.phases))
    loader = BatchLoader(bank, plan, cfg.seed, data_workers(device, cfg.workers),
                         pin=device.type == "cuda")

    def step(state: LoopState) -> dict[str, float]:
        state.extra["arch"] = arch
        pi, sp = phase_at(cfg.phases, state.step)
        phase = cfg.phases[pi]
        model.train()
        for p in model.encoder_parameters():
            p.requires_grad_(not phase.frozen_encoder)
        if phase.frozen_encoder:
            model.encoder.eval()  # frozen BN statistics too
        rgb = loader.get(state.step).to(device, non_blocking=True)
        f = lr_factor(sp, phase.steps)
        opt.param_groups[0]["lr"] = cfg.lr * f
        opt.param_groups[1]["lr"] = 0.0 if phase.frozen_encoder else \
            cfg.lr * cfg.encoder_lr_ratio * f
        loss, parts = generator_loss(model, feat_loss, rgb, cfg, balance)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        state.images += rgb.shape[0]
        return {"phase": pi, "size": phase.size, "loss": loss.item(), **parts,
                "lr": opt.param_groups[0]["lr"]}

    try:
        run_loop(run, {"generator": model}, {"generator": opt}, step, total,
                 log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
                 label="pretrain")
    finally:
        loader.close()
    return run.checkpoint


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="folder of colour training images")
    ap.add_argument("--run", required=True, help="run directory (resumed if it exists)")
    ap.add_argument("--arch", default=None,
                    help="generator architecture (default: --init's, else unet_lite0); a "
                    "hybrid such as unet_lite0_hybrid may start from its plain twin")
    ap.add_argument("--phases", default="128:16:3000:frozen,128:16:2000:unfrozen",
                    help="comma list of SIZE:BATCH:STEPS:frozen|unfrozen")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l1-weight", type=float, default=20.0)
    ap.add_argument("--cf-weight", type=float, default=0.0,
                    help="weight of the colourfulness hinge relu(0.95 CF(truth) - CF(pred))")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--max-images", type=int)
    ap.add_argument("--checkpoint-every", type=int, default=200)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--init", help="start from this checkpoint's generator, a shipped model's "
                    "name or a .safetensors file (fine-tuning; fresh optimiser)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--workers", type=int, default=None,
                    help="batch-making processes (default: 0 on the CPU, up to 4 on a GPU)")
    ap.add_argument("--min-colorfulness", type=float, default=0.0,
                    help="drop training photos less colourful than this (BigColor: 15)")
    ap.add_argument("--ce-weight", type=float, default=1.0,
                    help="hybrid head: weight of the rebalanced cross-entropy")
    ap.add_argument("--no-rebalance", action="store_true",
                    help="hybrid head: plain cross-entropy (no class rebalancing)")
    ap.add_argument("--feature-on", choices=("class", "output"), default="class",
                    help="hybrid head: the feature loss sees the annealed mean or the output")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = PretrainConfig(
        train=a.train, run=a.run, arch=a.arch,
        phases=tuple(Phase.parse(t) for t in a.phases.split(",")), lr=a.lr,
        l1_weight=a.l1_weight, cf_weight=a.cf_weight, seed=a.seed, bf16=not a.no_bf16,
        max_images=a.max_images,
        checkpoint_every=a.checkpoint_every, threads=a.threads, init=a.init,
        device=a.device, workers=a.workers, min_colorfulness=a.min_colorfulness,
        ce_weight=a.ce_weight, rebalance=not a.no_rebalance, feature_on=a.feature_on,
    )
    train(cfg)


if __name__ == "__main__":
    main()
