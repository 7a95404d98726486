"""Losses: L1 on chroma, a feature (perceptual) loss on a frozen ImageNet EfficientNet-Lite, the
colourfulness hinge, and the hybrid head's rebalanced cross-entropy over chroma bins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamcolor.color import _RGB_TO_YCBCR, _YCBCR_TO_RGB
from streamcolor.model.networks import chroma_bins
from streamcolor.model.networks.encoder import build_efficientnet_lite
from streamcolor.training.device import autocast

_RGB2YCC = torch.tensor(_RGB_TO_YCBCR, dtype=torch.float32)
_YCC2RGB = torch.tensor(_YCBCR_TO_RGB, dtype=torch.float32)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) Y, Cb, Cr (chroma as offsets)."""
    return torch.einsum("ij,bjhw->bihw", _RGB2YCC.to(rgb), rgb)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _YCC2RGB.to(ycc), ycc)


def colorize_batch(model: nn.Module, rgb: torch.Tensor, bf16: bool,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The generator on the luma of real RGB batches: (predicted chroma, true chroma, RGB of
    the input's luma with the predicted chroma, clamped to [0, 1]).  Every stage uses it
    (bf16 autocast on the batch's device)."""
    ycc = rgb_to_ycbcr(rgb)
    y, target = ycc[:, :1], ycc[:, 1:]
    with autocast(rgb.device, bf16):
        chroma = model(y)
    chroma = chroma.float()
    return chroma, target, with_luma(y, chroma)


def with_luma(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] of luma (B, 1, H, W) and chroma (B, 2, H, W) (upsampled if smaller)."""
    if chroma.shape[-2:] != y.shape[-2:]:
        chroma = F.interpolate(chroma, size=y.shape[-2:], mode="bilinear", align_corners=False)
    return ycbcr_to_rgb(torch.cat([y, chroma.float()], dim=1)).clamp(0, 1)


@dataclass
class HybridOutputs:
    """One generator pass for the losses (the hybrid head's parts are None without one)."""

    target: torch.Tensor  # true chroma (B, 2, H, W)
    chroma: torch.Tensor  # what inference outputs: the decoded chroma
    rgb: torch.Tensor  # the input's luma with ``chroma``
    regression: torch.Tensor  # the regression head's chroma
    logits: torch.Tensor | None = None  # the classification head's logits (stride 4)
    class_rgb: torch.Tensor | None = None  # the luma with the annealed mean (training T)


def run_generator(model: nn.Module, rgb: torch.Tensor, bf16: bool) -> HybridOutputs:
    """The generator on the luma of a real RGB batch, both heads kept apart for the losses
    (a generator without a classification head has only the regression)."""
    ycc = rgb_to_ycbcr(rgb)
    y, target = ycc[:, :1], ycc[:, 1:]
    with autocast(rgb.device, bf16):
        heads = model.forward_heads(y)
    reg = heads.regression.float()
    if heads.logits is None:
        return HybridOutputs(target, reg, with_luma(y, reg), reg)
    heads = heads._replace(regression=reg, logits=heads.logits.float(),
                           luma=heads.luma.float())
    class_chroma = model.classes.annealed_mean(heads.logits, heads.luma, model.temperature)
    chroma = model.blend(reg, class_chroma)
    return HybridOutputs(target, chroma, with_luma(y, chroma), reg, heads.logits,
                         with_luma(y, class_chroma))


class ClassBalance:
    """The classification head's training targets: the bins' look-up table and Zhang's
    rebalancing weights from the training images' chroma prior."""

    def __init__(self, chroma_samples: np.ndarray | None, rebalance: bool = True,
                 device: torch.device | str = "cpu") -> None:
        self.lut = torch.from_numpy(chroma_bins.bin_lut()).to(device)
        self.prior = chroma_bins.bin_prior(chroma_samples) if chroma_samples is not None \
            else None
        self.weights = None
        if rebalance and self.prior is not None:
            self.weights = torch.from_numpy(chroma_bins.rebalance_weights(self.prior)
                                            ).float().to(device)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return chroma_bins.rebalanced_cross_entropy(logits, target, self.lut, self.weights)


class FeatureLoss(nn.Module):
    """L1 between frozen ImageNet features of prediction and target (DeOldify used VGG16)."""

    def __init__(self, variant: str = "efficientnet-lite0", pretrained: bool = True,
                 taps: tuple[int, ...] = (2, 4, 10), weights: tuple[float, ...] = (0.25, 0.75, 0.1),
                 ) -> None:
        super().__init__()
        net = build_efficientnet_lite(variant, pretrained).eval()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks[: max(taps) + 1]
        self.taps = taps
        self.weights = weights
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureLoss:  # always frozen, BN in eval mode
        return super().train(False)

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem((rgb * 255.0 - 127.0) / 128.0)
        out = []
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in self.taps:
                out.append(x)
        return out

    def forward(self, pred_rgb: torch.Tensor, target_rgb: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ft = self.features(target_rgb)
        fp = self.features(pred_rgb)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.weights, fp, ft, strict=True))


def colorfulness_abs_torch(rgb: torch.Tensor) -> torch.Tensor:
    """Per-image colourfulness, absolute form (as :func:`streamcolor.color.colorfulness_abs`),
    of (B, 3, H, W) RGB in [0, 1], in 0..255 units: (B,), differentiable."""
    x = rgb * 255.0
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    rg = (r - g).abs().flatten(1)
    yb = (0.5 * (r + g) - b).abs().flatten(1)
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False) + 1e-6)
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2 + 1e-6)
    return std + 0.3 * mean


def colorfulness_hinge(pred_rgb: torch.Tensor, target_rgb: torch.Tensor,
                       share: float = 0.95) -> torch.Tensor:
    """relu(share * CF(truth) - CF(pred)), mean over the batch: pushes each image's colour up
    to (nearly) its own truth's and never beyond (an open-ended colourfulness reward makes
    red blocks, DDColor's authors report)."""
    with torch.no_grad():
        want = share * colorfulness_abs_torch(target_rgb)
    return F.relu(want - colorfulness_abs_torch(pred_rgb)).mean()
