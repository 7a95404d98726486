"""NoGAN stages 2-4: render fakes, pretrain the critic, the short GAN phase, and cycles.

* ``render``: the pretrained generator colourises a fixed, seeded set of training crops; the
  results are kept as one uint8 array in the run directory (``fakes.npy``, not image files).
* ``critic``: a plain binary classifier, generated (0) vs real (1), trained with BCE on
  those fakes and on live real crops, through the same loop as every stage.
* ``gan``: generator and critic together at the target size, fastai/DeOldify's adaptive
  switching: the critic trains until its loss falls under ``critic_threshold`` (0.65), then
  the generator takes one step, and back.  Adam with betas (0, 0.9), critic lr above the
  generator's, the encoder frozen; a generator snapshot every ``snapshot_images`` images
  (0.1 % of the data by default, at least 4 batches) so the inflection point can be found
  by measurement afterwards (:mod:`streamcolor.training.inflection`).
* ``cycle``: critic re-pretrained on the current generator's outputs, then GAN again, N times
  (the "artistic" recipe).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from streamcolor.model.networks import create_critic, create_generator
from streamcolor.model.weights import load_checkpoint
from streamcolor.training.data import (
    BatchLoader,
    CropPlan,
    ImageBank,
    random_crop,
    to_tensor,
)
from streamcolor.training.device import autocast, data_workers, training_device
from streamcolor.training.loop import LoopState, run_loop
from streamcolor.training.losses import ClassBalance, FeatureLoss, colorize_batch, run_generator
from streamcolor.training.run import RunDir

log = logging.getLogger(__name__)


def generator_weights(checkpoint: str | Path | dict[str, Any],
                      ) -> tuple[str, dict[str, torch.Tensor]]:
    """(arch, state dict) of a generator from any stage's checkpoint or snapshot (a path, or
    the checkpoint already loaded)."""
    state = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    if "modules" in state:
        arch = state.get("arch") or state.get("extra", {}).get("arch")
        return arch or "unet_lite0", state["modules"]["generator"]
    return state["arch"], state["model"]  # stage-1 (pretrain_generator) checkpoints


def generator_with(arch: str, weights: dict[str, torch.Tensor],
                   load: bool = True) -> torch.nn.Module:
    """The generator holding ``weights``: spectral-normed, or plain where the weights are
    (a fine-tune of a shipped model, whose spectral norm is baked in); ``load=False`` builds
    it without loading them."""
    spectral = any("parametrizations." in k for k in weights)
    model = create_generator(arch, spectral_norm=None if spectral else False)
    if load:
        model.load_state_dict(weights)
    return model


def load_generator_from(path: str | Path, arch: str | None = None) -> torch.nn.Module:
    found, weights = generator_weights(path)
    return generator_with(arch or found, weights)


# ----------------------------------------------------------------------------- render
@dataclass
class RenderConfig:
    train: str
    generator: str  # checkpoint of the generator to render with
    run: str
    size: int = 128
    count: int = 2000
    batch: int = 16
    seed: int = 1
    max_images: int | None = None
    bf16: bool = True
    device: str = "auto"
    min_colorfulness: float = 0.0


def render(cfg: RenderConfig, bank: ImageBank | None = None) -> Path:
    run = RunDir(cfg.run)
    out = run.path / "fakes.npy"
    if out.exists():
        log.info("fakes already rendered: %s", out)
        return out
    run.save_config({"stage": "render", **asdict(cfg)})
    bank = bank or ImageBank(cfg.train, limit=cfg.max_images,
                                min_colorfulness=cfg.min_colorfulness)
    device = training_device(cfg.device)
    model = load_generator_from(cfg.generator).eval().to(device)
    rng = np.random.default_rng(cfg.seed)
    fakes = np.empty((cfg.count, cfg.size, cfg.size, 3), np.uint8)
    with torch.inference_mode():
        for start in range(0, cfg.count, cfg.batch):
            n = min(cfg.batch, cfg.count - start)
            idx = rng.integers(0, len(bank), size=n)
            rgb = to_tensor([random_crop(bank.images[i], cfg.size, rng) for i in idx])
            fake = colorize_batch(model, rgb.to(device), cfg.bf16)[2]
            fakes[start:start + n] = (fake.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5
                                      ).astype(np.uint8)
    tmp = run.path / "fakes.tmp.npy"
    np.save(tmp, fakes)
    tmp.replace(out)
    log.info("rendered %d fakes at %d px into %s", cfg.count, cfg.size, out)
    return out


# ----------------------------------------------------------------------------- critic
@dataclass
class CriticConfig:
    train: str
    fakes: str  # fakes.npy from render
    run: str
    arch: str = "critic_patch"
    size: int = 128
    batch: int = 16
    steps: int = 1000
    lr: float = 2e-4
    seed: int = 2
    max_images: int | None = None
    init: str | None = None  # critic checkpoint to start from (later cycles)
    log_every: int = 25
    checkpoint_every: int = 200
    device: str = "auto"
    workers: int | None = None
    min_colorfulness: float = 0.0


def _fake_batch(fakes: np.ndarray, n: int, rng: np.random.Generator) -> torch.Tensor:
    idx = rng.integers(0, len(fakes), size=n)
    flip = rng.random(n) < 0.5
    imgs = [fakes[i][:, ::-1] if f else fakes[i] for i, f in zip(idx, flip, strict=True)]
    return to_tensor([np.ascontiguousarray(x) for x in imgs])


def critic_loss(critic: torch.nn.Module, real: torch.Tensor,
                fake: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Mean BCE over real (label 1) and fake (label 0) patches, and patch accuracy."""
    lr, lf = critic(real), critic(fake)
    loss = 0.5 * (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) +
                  F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
    acc = 0.5 * ((lr > 0).float().mean() + (lf < 0).float().mean())
    return loss, float(acc)


def pretrain_critic(cfg: CriticConfig, bank: ImageBank | None = None) -> Path:
    torch.manual_seed(cfg.seed)
    run = RunDir(cfg.run)
    run.save_config({"stage": "critic", **asdict(cfg)})
    fakes = np.load(cfg.fakes, mmap_mode="r")  # before the (slow) image loading
    bank = bank or ImageBank(cfg.train, limit=cfg.max_images,
                                min_colorfulness=cfg.min_colorfulness)
    device = training_device(cfg.device)
    critic = create_critic(cfg.arch)
    if cfg.init:
        critic.load_state_dict(load_checkpoint(cfg.init)["modules"]["critic"])
    critic.to(device)
    opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(0.0, 0.9))
    loader = BatchLoader(bank, CropPlan.fixed(cfg.size, cfg.batch), cfg.seed,
                         data_workers(device, cfg.workers), pin=device.type == "cuda")

    def step(state: LoopState) -> dict[str, float]:
        critic.train()
        real = loader.get(state.step).to(device, non_blocking=True)
        fake = _fake_batch(fakes, cfg.batch, np.random.default_rng([cfg.seed, 7, state.step]))
        loss, acc = critic_loss(critic, real, fake.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state.images += 2 * cfg.batch
        return {"critic_loss": loss.item(), "critic_acc": acc}

    try:
        run_loop(run, {"critic": critic}, {"critic": opt}, step, cfg.steps,
                 log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
                 label="critic")
    finally:
        loader.close()
    return run.checkpoint


# ----------------------------------------------------------------------------- GAN
@dataclass
class GanConfig:
    train: str
    generator: str  # stage-1 (or previous GAN) generator checkpoint
    critic: str  # pretrained critic checkpoint
    run: str
    arch: str | None = None
    critic_arch: str = "critic_patch"
    size: int = 192
    batch: int = 8
    steps: int = 1500  # total steps, critic and generator together
    gen_lr: float = 5e-5
    critic_lr: float = 2e-4
    critic_threshold: float = 0.65
    adv_weight: float = 1.0
    l1_weight: float = 5.0
    feature_weight: float = 1.0
    snapshot_images: int | None = None  # default: 0.1 % of the data, at least 4 batches
    seed: int = 3
    max_images: int | None = None
    bf16: bool = True
    feature_loss_pretrained: bool = True
    log_every: int = 10
    checkpoint_every: int = 50
    ce_weight: float = 1.0  # hybrid generators: the classification head's cross-entropy
    device: str = "auto"
    workers: int | None = None
    min_colorfulness: float = 0.0


# Every logged GAN row has the same columns (NaN where a mode has no value), so log.csv
# stays one table.
_GAN_ROW = dict.fromkeys(("mode", "critic_loss", "critic_acc", "gen_loss", "adv", "feature",
                          "l1", "ce"), float("nan"))


def gan_snapshot_every(cfg: GanConfig, n_images: int) -> int:
    if cfg.snapshot_images:
        return cfg.snapshot_images
    return max(4 * cfg.batch, math.ceil(0.001 * n_images))


def train_gan(cfg: GanConfig, bank: ImageBank | None = None) -> Path:
    torch.manual_seed(cfg.seed)
    run = RunDir(cfg.run)
    run.save_config({"stage": "gan", **asdict(cfg)})
    bank = bank or ImageBank(cfg.train, limit=cfg.max_images,
                                min_colorfulness=cfg.min_colorfulness)
    device = training_device(cfg.device)
    gen = load_generator_from(cfg.generator, cfg.arch).to(device)
    arch = cfg.arch or gen.config.name
    critic = create_critic(cfg.critic_arch)
    critic.load_state_dict(load_checkpoint(cfg.critic)["modules"]["critic"])
    critic.to(device)
    for p in gen.encoder_parameters():
        p.requires_grad_(False)  # encoder frozen during the GAN phase
    gen_opt = torch.optim.Adam(gen.decoder_parameters(), lr=cfg.gen_lr, betas=(0.0, 0.9))
    crit_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr, betas=(0.0, 0.9))
    feat = FeatureLoss(pretrained=cfg.feature_loss_pretrained).to(device)
    every = gan_snapshot_every(cfg, len(bank))
    balance = ClassBalance(bank.chroma_samples(), device=device) \
        if gen.classes is not None else None
    loader = BatchLoader(bank, CropPlan.fixed(cfg.size, cfg.batch), cfg.seed,
                         data_workers(device, cfg.workers), pin=device.type == "cuda")

    def step(state: LoopState) -> dict[str, float]:
        ex = state.extra
        ex.setdefault("gen_mode", False)
        ex.setdefault("gen_images", 0)
        ex.setdefault("next_snapshot", every)
        ex["arch"] = arch
        real = loader.get(state.step).to(device, non_blocking=True)
        gen.train()
        gen.encoder.eval()
        critic.train()
        state.images += cfg.batch
        if not ex["gen_mode"]:
            with torch.no_grad():
                fake = colorize_batch(gen, real, cfg.bf16)[2]
            loss, acc = critic_loss(critic, real, fake)
            crit_opt.zero_grad(set_to_none=True)
            loss.backward()
            crit_opt.step()
            if loss.item() < cfg.critic_threshold:
                ex["gen_mode"] = True
            return {**_GAN_ROW, "mode": 0.0, "critic_loss": loss.item(), "critic_acc": acc}
        out = run_generator(gen, real, cfg.bf16)
        fake = out.rgb
        logits = critic(fake)
        adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        l1 = F.l1_loss(out.regression, out.target)
        with autocast(device, cfg.bf16):
            fl = feat(fake, real).float()
        loss = cfg.feature_weight * fl + cfg.l1_weight * l1 + cfg.adv_weight * adv
        ce = float("nan")
        if out.logits is not None and balance is not None:
            ce_t = balance.loss(out.logits, out.target)
            loss = loss + cfg.ce_weight * ce_t
            ce = ce_t.item()
        gen_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gen.decoder_parameters(), 5.0)
        gen_opt.step()
        ex["gen_mode"] = False  # one generator step, then back to the critic
        ex["gen_images"] += cfg.batch
        return {**_GAN_ROW, "mode": 1.0, "gen_loss": loss.item(), "adv": adv.item(),
                "feature": fl.item(), "l1": l1.item(), "ce": ce}

    def snapshot(state: LoopState) -> str | None:
        ex = state.extra
        if ex.get("gen_images", 0) >= ex.get("next_snapshot", every):
            ex["next_snapshot"] = ex["gen_images"] + every
            return f"ckpt_{ex['gen_images']:08d}.pt"
        return None

    try:
        run_loop(run, {"generator": gen, "critic": critic},
                 {"generator": gen_opt, "critic": crit_opt}, step, cfg.steps,
                 log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
                 snapshot=snapshot, snapshot_modules=("generator",), label="gan")
    finally:
        loader.close()
    return run.checkpoint


# ----------------------------------------------------------------------------- cycles
def cycle(train: str, generator: str, run: str, cycles: int, render_cfg: dict[str, Any],
          critic_cfg: dict[str, Any], gan_cfg: dict[str, Any], critic_init: str | None = None,
          bank: ImageBank | None = None) -> Path:
    """Repeat critic pretraining (on the current generator's outputs) + GAN ``cycles`` times;
    each cycle lives in ``RUN/cycle_N/{render,critic,gan}``.  The critic continues from
    ``critic_init`` (e.g. the previous GAN run's checkpoint), later cycles from the previous
    cycle's.  Returns the last GAN run."""
    bank = bank or ImageBank(train, limit=render_cfg.get("max_images"),
                             min_colorfulness=render_cfg.get("min_colorfulness", 0.0))
    current = generator
    critic_from = critic_init
    gan_dir = Path(run)
    for n in range(1, cycles + 1):
        base = Path(run) / f"cycle_{n}"
        fakes = render(RenderConfig(train=train, generator=current, run=str(base / "render"),
                                    **render_cfg), bank)
        crit = pretrain_critic(CriticConfig(train=train, fakes=str(fakes),
                                            run=str(base / "critic"), init=critic_from,
                                            **critic_cfg), bank)
        gan_dir = base / "gan"
        train_gan(GanConfig(train=train, generator=current, critic=str(crit), run=str(gan_dir),
                            **gan_cfg), bank)
        current = str(gan_dir / "checkpoint.pt")
        critic_from = current
    return gan_dir
