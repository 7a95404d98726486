"""DeOldify-style building blocks: spectral-normed convs, ICNR pixel shuffle, self-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _maybe_sn(module: nn.Module, spectral: bool) -> nn.Module:
    return parametrizations.spectral_norm(module) if spectral else module


class ConvBNAct(nn.Module):
    """conv (optionally spectral-normed, no bias) -> BatchNorm -> ReLU.

    The BatchNorm sits right after the conv so it can be folded into it for inference.
    """

    def __init__(
        self, cin: int, cout: int, k: int = 3, spectral: bool = True, act: bool = True
    ) -> None:
        super().__init__()
        self.conv = _maybe_sn(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), spectral)
        self.bn: nn.Module = nn.BatchNorm2d(cout)
        self.act: nn.Module = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def icnr_(weight: torch.Tensor, scale: int = 2) -> None:
    """ICNR init (Aitken et al. 2017): every sub-pixel starts identical, so no checkerboard."""
    cout, cin, kh, kw = weight.shape
    sub = torch.empty(cout // (scale * scale), cin, kh, kw)
    nn.init.kaiming_normal_(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale * scale, dim=0))


class PixelShuffleUp(nn.Module):
    """1x1 conv to 4x channels, ReLU, pixel shuffle x2, then fastai's blur (pad + 2x2 avg)."""

    def __init__(self, cin: int, cout: int, spectral: bool = True) -> None:
        super().__init__()
        conv = nn.Conv2d(cin, cout * 4, 1)
        icnr_(conv.weight)
        nn.init.zeros_(conv.bias)
        self.conv = _maybe_sn(conv, spectral)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shuffle(F.relu(self.conv(x)))
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class SelfAttention(nn.Module):
    """SAGAN self-attention as in fastai (gamma starts at 0, so the block starts as identity)."""

    def __init__(self, c: int, spectral: bool = True) -> None:
        super().__init__()
        self.q = _maybe_sn(nn.Conv2d(c, max(c // 8, 1), 1, bias=False), spectral)
        self.k = _maybe_sn(nn.Conv2d(c, max(c // 8, 1), 1, bias=False), spectral)
        self.v = _maybe_sn(nn.Conv2d(c, c, 1, bias=False), spectral)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2).unsqueeze(1)  # B,1,N,C/8
        k = self.k(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.v(x).flatten(2).transpose(1, 2).unsqueeze(1)  # B,1,N,C
        o = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # SAGAN: no 1/sqrt(d)
        o = o.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma.to(o.dtype) * o


def remove_spectral_norm(model: nn.Module) -> nn.Module:
    """Bake spectral normalisation into plain weights (in place) for inference/export."""
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model


def fuse_conv_bn(conv: nn.Module, bn: nn.Module) -> nn.Module:
    """Return `conv` with eval-mode BatchNorm `bn` folded in (`bn` becomes redundant)."""
    if not isinstance(bn, nn.BatchNorm2d) or not isinstance(conv, nn.Conv2d):
        return conv
    return fuse_conv_bn_eval(conv.eval(), bn.eval())
