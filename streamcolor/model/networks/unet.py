"""U-Net generator predicting chroma from luma, with a pretrained encoder.

Decoder in DeOldify's spirit (its "wide" U-Net, scaled down for 2-core CPUs): pixel-shuffle
(ICNR) upsampling with fastai's blur, BatchNorm'd skip connections, spectral-normed convs,
SAGAN self-attention at stride 8, and a dense merge of the input luma before the head.  The
head predicts the two chroma channels at full render resolution through a final sub-pixel
(pixel shuffle) layer, so no conv runs at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from streamcolor.model.networks.encoder import EfficientNetLiteEncoder, TinyEncoder
from streamcolor.model.networks.layers import (
    ConvBNAct,
    PixelShuffleUp,
    SelfAttention,
    fuse_conv_bn,
    remove_spectral_norm,
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a named generator (see :mod:`streamcolor.model.networks.registry`)."""

    name: str
    encoder: str  # "efficientnet-lite0" (pretrained ImageNet) or "tiny" (random, tests)
    middle: int  # channels of the bottleneck at stride 32
    decoder: tuple[int, int, int, int]  # channels at strides 16, 8, 4, 2
    attention: bool = True  # self-attention at stride 8
    spectral_norm: bool = True
    multiple: int = 32  # render sizes must be multiples of this

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "encoder": self.encoder,
            "middle": self.middle,
            "decoder": list(self.decoder),
            "attention": self.attention,
            "spectral_norm": self.spectral_norm,
            "multiple": self.multiple,
        }


class UpBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, spectral: bool, attention: bool) -> None:
        super().__init__()
        half = max(cin // 2, 8)
        self.up = PixelShuffleUp(cin, half, spectral)
        self.bn_skip = nn.BatchNorm2d(cskip)
        self.conv1 = ConvBNAct(half + cskip, cout, 3, spectral)
        self.conv2 = ConvBNAct(cout, cout, 3, spectral)
        self.attn = SelfAttention(cout, spectral) if attention else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        x = torch.cat([x, self.bn_skip(skip)], dim=1)
        x = self.conv2(self.conv1(x))
        if self.attn is not None:
            x = self.attn(x)
        return x


class ChromaUNet(nn.Module):
    """(B, 1, H, W) luma in [0, 1] -> (B, 2, H, W) Cb/Cr offsets in [-0.5, 0.5]."""

    def __init__(self, config: GeneratorConfig, pretrained_encoder: bool = False) -> None:
        super().__init__()
        self.config = config
        sn = config.spectral_norm
        if config.encoder == "tiny":
            self.encoder: nn.Module = TinyEncoder()
        else:
            self.encoder = EfficientNetLiteEncoder(config.encoder, pretrained=pretrained_encoder)
        ch = self.encoder.channels  # strides 2, 4, 8, 16, 32
        self.middle = nn.Sequential(
            ConvBNAct(ch[4], config.middle, 3, sn), ConvBNAct(config.middle, config.middle, 3, sn)
        )
        d16, d8, d4, d2 = config.decoder
        self.up16 = UpBlock(config.middle, ch[3], d16, sn, attention=False)
        self.up8 = UpBlock(d16, ch[2], d8, sn, attention=config.attention)
        self.up4 = UpBlock(d8, ch[1], d4, sn, attention=False)
        self.up2 = UpBlock(d4, ch[0], d2, sn, attention=False)
        # Head at stride 2 with the luma merged back in (space-to-depth, 4 channels).
        self.head = ConvBNAct(d2 + 4, d2, 3, sn)
        self.out = nn.Conv2d(d2, 2 * 4, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        s2, s4, s8, s16, s32 = self.encoder(y)
        x = self.middle(s32)
        x = self.up16(x, s16)
        x = self.up8(x, s8)
        x = self.up4(x, s4)
        x = self.up2(x, s2)
        x = torch.cat([x, F.pixel_unshuffle(y, 2)], dim=1)
        x = self.out(self.head(x))
        return 0.5 * torch.tanh(F.pixel_shuffle(x, 2))

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        enc = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in enc]


def prepare_for_inference(model: ChromaUNet) -> ChromaUNet:
    """Eval mode, spectral norm baked in, BatchNorms folded into their convs (in place)."""
    model.eval()
    remove_spectral_norm(model)
    model.encoder.fuse_for_inference()
    for m in model.modules():
        if isinstance(m, ConvBNAct):
            m.conv = fuse_conv_bn(m.conv, m.bn)
            m.bn = nn.Identity()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
