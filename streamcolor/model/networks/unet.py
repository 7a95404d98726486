"""U-Net generator predicting chroma from luma, with a pretrained encoder.

Decoder in DeOldify's spirit (its "wide" U-Net, scaled down for 2-core CPUs): pixel-shuffle
(ICNR) upsampling with fastai's blur, BatchNorm'd skip connections, spectral-normed convs,
SAGAN self-attention at stride 8, and a dense merge of the input luma before the head.  The
head predicts the two chroma channels at full render resolution through a final sub-pixel
(pixel shuffle) layer, so no conv runs at full resolution.

A *hybrid* generator (``class_head`` > 0) adds a classification head over quantised chroma
(:mod:`.chroma_bins`) at stride 4; its annealed mean, upsampled, is blended with the
regression inside :meth:`ChromaUNet.forward`, so every runtime and exported graph sees one
chroma output.  Training reads both heads apart (:meth:`ChromaUNet.forward_heads`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from streamcolor.model.networks import chroma_bins
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
    # Hybrid head: a classification head over quantised chroma beside the regression head
    # (0: none; else the channels of its hidden layer).  See :mod:`.chroma_bins`.
    class_head: int = 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "encoder": self.encoder,
            "middle": self.middle,
            "decoder": list(self.decoder),
            "attention": self.attention,
            "spectral_norm": self.spectral_norm,
            "multiple": self.multiple,
            "class_head": self.class_head,
        }


DEFAULT_TEMPERATURE = 0.38  # Zhang et al.'s annealed-mean temperature
DEFAULT_CLASS_WEIGHT = 0.5


def check_temperature(t: float) -> float:
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0.01 <= float(t) <= 10.0:
        raise ValueError(f"temperature must be a number in 0.01..10, not {t!r}")
    return float(t)


def check_class_weight(w: float) -> float:
    if isinstance(w, bool) or not isinstance(w, int | float) or not 0.0 <= float(w) <= 1.0:
        raise ValueError(f"class weight must be a number in 0..1, not {w!r}")
    return float(w)


class HeadOutputs(NamedTuple):
    regression: torch.Tensor  # (B, 2, H, W) chroma offsets
    logits: torch.Tensor | None  # (B, K, H/4, W/4) class logits over the chroma bins
    luma: torch.Tensor | None  # (B, 1, H/4, W/4) the input luma at the logits' resolution


CLASS_STRIDE = 4  # the classification head's resolution (Zhang et al. predict at 1/4 too)


class ClassHead(nn.Module):
    """A 3x3 conv layer and a 1x1 classifier over the chroma bins at stride 4, reading the
    decoder's stride-4 features and the luma (space-to-depth).  The classifier starts at zero,
    so a head added to a trained generator starts uniform.  The bins' centres and gamut
    bounds are (non-persistent) buffers, so they travel into exported graphs."""

    def __init__(self, cin: int, width: int, spectral: bool) -> None:
        super().__init__()
        k = chroma_bins.num_bins()
        self.hidden = ConvBNAct(cin, width, 3, spectral)
        self.logits = nn.Conv2d(width, k, 1)
        nn.init.zeros_(self.logits.weight)
        nn.init.zeros_(self.logits.bias)
        lo, hi = chroma_bins.luma_bounds_torch()
        self.register_buffer("centers", torch.from_numpy(chroma_bins.bin_centers()),
                             persistent=False)
        self.register_buffer("luma_lo", lo, persistent=False)
        self.register_buffer("luma_hi", hi, persistent=False)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.logits(self.hidden(feats))

    def annealed_mean(self, logits: torch.Tensor, luma: torch.Tensor,
                      temperature: float) -> torch.Tensor:
        return chroma_bins.annealed_mean_torch(logits, luma, self.centers, self.luma_lo,
                                               self.luma_hi, temperature)


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
        self.classes: ClassHead | None = None
        if config.class_head:
            self.classes = ClassHead(d4 + CLASS_STRIDE ** 2, config.class_head, sn)
        # Decoding of the hybrid head (inference settings, kept in the model's metadata, not
        # its weights): annealed-mean temperature and the classification head's share.
        self.temperature = DEFAULT_TEMPERATURE
        self.class_weight = DEFAULT_CLASS_WEIGHT if config.class_head else 0.0

    def set_decoding(self, temperature: float | None = None,
                     class_weight: float | None = None) -> ChromaUNet:
        """Set the hybrid head's decoding (checked); returns the model."""
        if temperature is not None:
            self.temperature = check_temperature(temperature)
        if class_weight is not None:
            if self.classes is None and class_weight:
                raise ValueError(f"{self.config.name} has no classification head")
            self.class_weight = check_class_weight(class_weight)
        return self

    def _decode_features(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder features at stride 4 and at stride 2 (the latter with the luma merged in)."""
        s2, s4, s8, s16, s32 = self.encoder(y)
        x = self.middle(s32)
        x = self.up16(x, s16)
        x = self.up8(x, s8)
        x4 = self.up4(x, s4)
        x = self.up2(x4, s2)
        return x4, torch.cat([x, F.pixel_unshuffle(y, 2)], dim=1)

    def regression(self, feats2: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.tanh(F.pixel_shuffle(self.out(self.head(feats2)), 2))

    def forward_heads(self, y: torch.Tensor) -> HeadOutputs:
        """Both heads' raw outputs (training): regression chroma at full render size, class
        logits and the luma at stride 4 (None without a classification head)."""
        x4, feats2 = self._decode_features(y)
        reg = self.regression(feats2)
        if self.classes is None:
            return HeadOutputs(reg, None, None)
        logits = self.classes(torch.cat([x4, F.pixel_unshuffle(y, CLASS_STRIDE)], dim=1))
        return HeadOutputs(reg, logits, F.avg_pool2d(y, CLASS_STRIDE))

    def decode(self, heads: HeadOutputs, temperature: float | None = None,
               class_weight: float | None = None) -> torch.Tensor:
        """The chroma: the regression blended with the classification head's annealed mean
        (:meth:`blend`)."""
        w = self.class_weight if class_weight is None else class_weight
        if heads.logits is None or w == 0.0:
            return heads.regression
        assert self.classes is not None and heads.luma is not None
        t = self.temperature if temperature is None else temperature
        return self.blend(heads.regression,
                          self.classes.annealed_mean(heads.logits, heads.luma, t), w)

    def blend(self, regression: torch.Tensor, class_chroma: torch.Tensor,
              class_weight: float | None = None) -> torch.Tensor:
        """``class_weight`` of the classification head's chroma (upsampled bilinearly from
        stride 4) and the rest of the regression's."""
        w = self.class_weight if class_weight is None else class_weight
        up = F.interpolate(class_chroma, size=regression.shape[-2:], mode="bilinear",
                           align_corners=False)
        if w == 1.0:
            return up
        return (1.0 - w) * regression + w * up

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.classes is None or self.class_weight == 0.0:
            return self.regression(self._decode_features(y)[1])
        return self.decode(self.forward_heads(y))

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
