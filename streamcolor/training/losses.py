"""Losses: L1 on chroma plus a feature (perceptual) loss on a frozen ImageNet EfficientNet-Lite."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from streamcolor.color import _RGB_TO_YCBCR, _YCBCR_TO_RGB
from streamcolor.model.networks.encoder import build_efficientnet_lite

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
    the input's luma with the predicted chroma, clamped to [0, 1]).  Every stage uses it."""
    ycc = rgb_to_ycbcr(rgb)
    y, target = ycc[:, :1], ycc[:, 1:]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        chroma = model(y)
    chroma = chroma.float()
    return chroma, target, ycbcr_to_rgb(torch.cat([y, chroma], dim=1)).clamp(0, 1)


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
