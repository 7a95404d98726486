"""Registry of named generator architectures (timm ``_registry`` style), with tiny test variants."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ModelError
from .unet import ChromaUNet, GeneratorConfig

_GENERATORS: dict[str, GeneratorConfig] = {}


def register_generator(config: GeneratorConfig) -> GeneratorConfig:
    if config.name in _GENERATORS:
        raise ValueError(f"generator {config.name!r} is already registered")
    _GENERATORS[config.name] = config
    return config


def list_generators() -> list[str]:
    return sorted(_GENERATORS)


def generator_config(name: str) -> GeneratorConfig:
    try:
        return _GENERATORS[name]
    except KeyError:
        known = ", ".join(list_generators())
        raise ModelError(f"unknown generator architecture {name!r} (known: {known})") from None


def create_generator(
    name: str, pretrained_encoder: bool = False, spectral_norm: bool | None = None
) -> ChromaUNet:
    """Build a registered generator; ``pretrained_encoder`` loads ImageNet weights (local file)."""
    cfg = generator_config(name)
    if spectral_norm is not None:
        cfg = replace(cfg, spectral_norm=spectral_norm)
    return ChromaUNet(cfg, pretrained_encoder=pretrained_encoder and cfg.encoder != "tiny")


register_generator(
    GeneratorConfig(name="unet_lite0", encoder="efficientnet-lite0", middle=256,
                    decoder=(160, 96, 64, 48), attention=True)
)
register_generator(
    GeneratorConfig(name="unet_tiny", encoder="tiny", middle=16, decoder=(16, 16, 8, 8),
                    attention=True)
)
