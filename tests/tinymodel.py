"""The tiny generator the tests use, with a non-zero (so non-gray) output layer."""

from __future__ import annotations

import torch

OUT_WEIGHT_SCALE = 0.25


def build_tiny_model(seed: int = 0):
    """``unet_tiny`` with random non-zero weights in its (zero-initialised) output conv."""
    from streamcolor.model.networks import create_generator

    torch.manual_seed(seed)
    model = create_generator("unet_tiny")
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.out.weight.copy_(torch.randn(model.out.weight.shape, generator=g) * OUT_WEIGHT_SCALE)
        model.out.bias.copy_(torch.randn(model.out.bias.shape, generator=g) * 0.1)
    return model
