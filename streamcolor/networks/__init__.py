"""Generator (and, later, critic) networks and their registry."""

from .registry import create_generator, generator_config, list_generators, register_generator
from .unet import ChromaUNet, GeneratorConfig, prepare_for_inference

__all__ = [
    "ChromaUNet",
    "GeneratorConfig",
    "create_generator",
    "generator_config",
    "list_generators",
    "prepare_for_inference",
    "register_generator",
]
