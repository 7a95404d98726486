"""Registry of named generator and critic architectures (timm ``_registry`` style), each with a
tiny variant for tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Generic, Protocol, TypeVar

from streamcolor.errors import ModelError
from streamcolor.model.networks.critic import CriticConfig, PatchCritic
from streamcolor.model.networks.unet import ChromaUNet, GeneratorConfig


class _Named(Protocol):
    name: str


C = TypeVar("C", bound=_Named)


class Registry(Generic[C]):
    """Named architecture configs of one kind ("generator", "critic")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._configs: dict[str, C] = {}

    def register(self, config: C) -> C:
        if config.name in self._configs:
            raise ValueError(f"{self.kind} {config.name!r} is already registered")
        self._configs[config.name] = config
        return config

    def names(self) -> list[str]:
        return sorted(self._configs)

    def config(self, name: str) -> C:
        try:
            return self._configs[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ModelError(f"unknown {self.kind} architecture {name!r} (known: {known})"
                             ) from None


GENERATORS: Registry[GeneratorConfig] = Registry("generator")
CRITICS: Registry[CriticConfig] = Registry("critic")

register_generator = GENERATORS.register
list_generators = GENERATORS.names
generator_config = GENERATORS.config
register_critic = CRITICS.register
list_critics = CRITICS.names
critic_config = CRITICS.config


def create_generator(
    name: str, pretrained_encoder: bool = False, spectral_norm: bool | None = None
) -> ChromaUNet:
    """Build a registered generator; ``pretrained_encoder`` loads ImageNet weights (local file)."""
    cfg = generator_config(name)
    if spectral_norm is not None:
        cfg = replace(cfg, spectral_norm=spectral_norm)
    return ChromaUNet(cfg, pretrained_encoder=pretrained_encoder and cfg.encoder != "tiny")


def create_critic(name: str) -> PatchCritic:
    return PatchCritic(critic_config(name))


register_generator(
    GeneratorConfig(name="unet_lite0", encoder="efficientnet-lite0", middle=256,
                    decoder=(160, 96, 64, 48), attention=True)
)
register_generator(
    GeneratorConfig(name="unet_tiny", encoder="tiny", middle=16, decoder=(16, 16, 8, 8),
                    attention=True)
)
# The hybrid head (regression + classification over quantised chroma): the same U-Nets with a
# classification head at stride 2; a hybrid warm-starts from its plain twin's weights.
register_generator(
    GeneratorConfig(name="unet_lite0_hybrid", encoder="efficientnet-lite0", middle=256,
                    decoder=(160, 96, 64, 48), attention=True, class_head=64)
)
register_generator(
    GeneratorConfig(name="unet_tiny_hybrid", encoder="tiny", middle=16, decoder=(16, 16, 8, 8),
                    attention=True, class_head=8)
)
register_critic(CriticConfig(name="critic_patch", nf=64, n_blocks=3, dropout=0.15))
register_critic(CriticConfig(name="critic_tiny", nf=8, n_blocks=1, dropout=0.15))
