"""Patch critic for the GAN phase (DeOldify's ``custom_gan_critic``, fastai style).

Spectral-normed convolutions with LeakyReLU(0.2), dropout, and SAGAN self-attention after the
first downsampling block; the output is a map of real/fake logits, one per receptive-field
patch, flattened to (B, N).  It sees RGB in [0, 1] (the generator's chroma merged with the
input luma, or a real colour image).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrizations

from streamcolor.model.networks.layers import SelfAttention


@dataclass(frozen=True)
class CriticConfig:
    name: str
    nf: int = 64  # channels after the first (stride-2) conv; doubled per block
    n_blocks: int = 3  # each halves the resolution again
    dropout: float = 0.15

    def to_dict(self) -> dict:
        return {"name": self.name, "nf": self.nf, "n_blocks": self.n_blocks,
                "dropout": self.dropout}


def _conv(cin: int, cout: int, k: int, stride: int = 1, act: bool = True,
          padding: int | None = None, bias: bool = True) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding, bias=bias)
    layers: list[nn.Module] = [parametrizations.spectral_norm(conv)]
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class PatchCritic(nn.Module):
    def __init__(self, config: CriticConfig) -> None:
        super().__init__()
        self.config = config
        nf, p = config.nf, config.dropout
        layers: list[nn.Module] = [_conv(3, nf, 4, 2), nn.Dropout2d(p / 2)]
        for i in range(config.n_blocks):
            layers += [_conv(nf, nf, 3), nn.Dropout2d(p), _conv(nf, nf * 2, 4, 2)]
            if i == 0:
                layers.append(SelfAttention(nf * 2, spectral=True))
            nf *= 2
        layers += [_conv(nf, nf, 3), _conv(nf, 1, 4, act=False, padding=0, bias=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, N) logits (positive = real)."""
        return self.body(rgb * 2.0 - 1.0).flatten(1)
