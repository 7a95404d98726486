"""Registry of named generator and critic architectures (timm ``_registry`` style), each with a
tiny variant for tests."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ModelError
from .critic import CriticConfig, PatchCritic
from .unet import ChromaUNet, GeneratorConfig

_GENERATORS: dict[str, GeneratorConfig] = {}
_CRITICS: dict[str, CriticConfig] = {}


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


def register_critic(config: CriticConfig) -> CriticConfig:
    if config.name in _CRITICS:
        raise ValueError(f"critic {config.name!r} is already registered")
    _CRITICS[config.name] = config
    return config


def list_critics() -> list[str]:
    return sorted(_CRITICS)


def critic_config(name: str) -> CriticConfig:
    try:
        return _CRITICS[name]
    except KeyError:
        known = ", ".join(list_critics())
        raise ModelError(f"unknown critic architecture {name!r} (known: {known})") from None


def create_critic(name: str) -> PatchCritic:
    return PatchCritic(critic_config(name))


register_critic(CriticConfig(name="critic_patch", nf=64, n_blocks=3, dropout=0.15))
register_critic(CriticConfig(name="critic_tiny", nf=8, n_blocks=1, dropout=0.15))
