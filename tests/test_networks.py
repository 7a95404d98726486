"""The U-Net generator, inference preparation and the pretrained EfficientNet-Lite0 encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinymodel import build_tiny_model
from torch import nn

from streamcolor.errors import ModelError
from streamcolor.model.networks import create_generator, list_generators, prepare_for_inference
from streamcolor.model.networks.encoder import EfficientNetLiteEncoder, build_efficientnet_lite
from streamcolor.model.networks.layers import ConvBNAct, SelfAttention


@pytest.mark.parametrize(("b", "h", "w"), [(2, 64, 96), (1, 32, 32), (3, 96, 64)])
def test_unet_output_shape_and_range(b, h, w):
    model = build_tiny_model().eval()
    with torch.no_grad():
        model.out.weight.mul_(20)  # push tanh into saturation: the range must still hold
    x = torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(h * w))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (b, 2, h, w) and y.dtype == torch.float32
    assert y.abs().max() <= 0.5
    assert y.abs().max() > 0.45 and y.std() > 0.05  # really saturating, not constant


def test_zero_initialised_head_gives_gray():
    torch.manual_seed(0)
    model = create_generator("unet_tiny").eval()
    with torch.no_grad():
        y = model(torch.rand(1, 1, 32, 64))
    assert y.shape == (1, 2, 32, 64) and torch.count_nonzero(y) == 0


def test_registry():
    assert {"unet_tiny", "unet_lite0"} <= set(list_generators())
    with pytest.raises(ModelError):
        create_generator("nosucharch")


def _randomise(model: nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics/affines and attention gains, so folding is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(1 + 0.1 * torch.randn(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
            if isinstance(m, SelfAttention):
                m.gamma.fill_(0.5)


@pytest.mark.parametrize("arch", ["unet_tiny", "unet_lite0"])
def test_prepare_for_inference_keeps_outputs(arch):
    if arch == "unet_tiny":
        model = build_tiny_model(seed=11)
    else:
        torch.manual_seed(11)
        model = create_generator(arch)
        with torch.no_grad():
            model.out.weight.normal_(0, 0.1)
            model.out.bias.normal_(0, 0.1)
    _randomise(model, 12)
    model.eval()
    x = torch.rand(2, 1, 64, 96, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        ref = model(x)
    assert ref.abs().max() > 0.01
    prepped = prepare_for_inference(model)
    # spectral norm baked in, the conv BatchNorms folded, nothing trainable left
    assert not any("Parametrized" in type(m).__name__ for m in prepped.modules())
    assert all(isinstance(m.bn, nn.Identity) for m in prepped.modules() if isinstance(m, ConvBNAct))
    assert not any(p.requires_grad for p in prepped.parameters())
    with torch.no_grad():
        got = prepped(x)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)


def test_lite0_encoder_folds_stem_exactly():
    """The luma encoder equals the RGB ImageNet net fed a gray image, normalised TF-Lite style."""
    net = build_efficientnet_lite("efficientnet-lite0", pretrained=True).eval()
    enc = EfficientNetLiteEncoder("efficientnet-lite0", pretrained=True).eval()
    assert len(enc.taps) == 5 and enc.channels[-1] == 320
    y = torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(0))
    x = ((y * 255 - 127) / 128).expand(1, 3, 64, 96)
    with torch.no_grad():
        feats = enc(y)
        h = net._swish(net._bn0(net._conv_stem(x)))
        ref = []
        for i, block in enumerate(net._blocks):
            h = block(h, drop_connect_rate=None)
            if i in enc.taps:
                ref.append(h)
    assert [f.shape[-1] for f in feats] == [48, 24, 12, 6, 3]  # strides 2..32
    for f, r in zip(feats, ref, strict=True):
        torch.testing.assert_close(f, r, atol=1e-4, rtol=1e-4)


def test_pretrained_lite0_classifies_chelsea_as_a_cat():
    skdata = pytest.importorskip("skimage.data")
    import cv2

    img = cv2.resize(skdata.chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy((img.astype(np.float32) - 127.0) / 128.0).permute(2, 0, 1)[None]
    net = build_efficientnet_lite("efficientnet-lite0", pretrained=True).eval()
    with torch.no_grad():
        logits = net(x)
    assert logits.shape == (1, 1000)
    top1 = int(logits.argmax())
    assert top1 in {281, 282, 285}, top1  # tabby, tiger cat, Egyptian cat
