"""Generator and critic networks and their registry."""

from streamcolor.model.networks.critic import CriticConfig, PatchCritic
from streamcolor.model.networks.registry import (
    create_critic,
    create_generator,
    critic_config,
    generator_config,
    list_critics,
    list_generators,
    register_critic,
    register_generator,
)
from streamcolor.model.networks.unet import (
    ChromaUNet,
    GeneratorConfig,
    HeadOutputs,
    prepare_for_inference,
)

__all__ = [
    "ChromaUNet",
    "CriticConfig",
    "GeneratorConfig",
    "HeadOutputs",
    "PatchCritic",
    "create_critic",
    "create_generator",
    "critic_config",
    "generator_config",
    "list_critics",
    "list_generators",
    "prepare_for_inference",
    "register_critic",
    "register_generator",
]
