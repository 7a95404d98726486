"""The input/output contract of a generator: what goes in, what comes out, in which colour
space.  It travels in the weights metadata (``models.json`` and the ``.safetensors`` header),
and every runtime (torch today, ONNX/OpenVINO later) reads it from there instead of assuming.

The luma the pipeline prepares is full-range BT.601 Y scaled to [0, 1]; the contract maps it
linearly onto the network's ``input_range``.  The network's raw output times
``chroma_scale`` is the chroma offset (Cb, Cr) / 255 - 0.5 in [-0.5, 0.5] that the sinks write.

A generator with a hybrid head (regression + classification over quantised chroma) turns its
two heads into that one chroma output inside the network; how is part of the contract
(``temperature`` of the annealed mean and the classification head's share, ``class_weight``),
so an exported graph and the conversion cache are tied to the decoding they were made with.
Generators without such a head have neither (None).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from streamcolor.errors import ModelError

COLOR_SPACES = frozenset({"ycbcr-bt601-full"})  # JFIF YCbCr, the only one the sinks write
LAYOUTS = frozenset({"NCHW"})


@dataclass(frozen=True)
class ModelContract:
    """A generator's tensors: ``(B, 1, H, W)`` luma in, ``(B, 2, H, W)`` chroma out."""

    color_space: str = "ycbcr-bt601-full"
    input_layout: str = "NCHW"
    input_channels: tuple[str, ...] = ("Y",)
    input_range: tuple[float, float] = (0.0, 1.0)  # Y = 0 and Y = 255 map to these values
    input_dtype: str = "float32"
    multiple: int = 32  # H and W must be multiples of this (the encoder's stride)
    output_layout: str = "NCHW"
    output_channels: tuple[str, ...] = ("Cb", "Cr")
    chroma_scale: float = 1.0  # chroma offset = raw output * chroma_scale
    render_factor: int = 16  # the default render factor (render side = factor * 16 px)
    temperature: float | None = None  # hybrid head: annealed-mean temperature
    class_weight: float | None = None  # hybrid head: share of the classification head

    @property
    def hybrid(self) -> bool:
        return self.temperature is not None

    def __post_init__(self) -> None:
        if self.color_space not in COLOR_SPACES:
            raise ModelError(f"unsupported colour space {self.color_space!r} in the model "
                             f"contract (supported: {', '.join(sorted(COLOR_SPACES))})")
        if self.input_layout not in LAYOUTS or self.output_layout not in LAYOUTS:
            raise ModelError(f"unsupported tensor layout {self.input_layout}/"
                             f"{self.output_layout} in the model contract")
        if tuple(self.input_channels) != ("Y",) or tuple(self.output_channels) != ("Cb", "Cr"):
            raise ModelError(f"the model contract must map ('Y',) to ('Cb', 'Cr'), not "
                             f"{tuple(self.input_channels)} to {tuple(self.output_channels)}")
        lo, hi = self.input_range
        if not hi > lo:
            raise ModelError(f"empty input range {self.input_range} in the model contract")
        if self.multiple < 1 or self.render_factor < 1 or self.chroma_scale <= 0:
            raise ModelError("the model contract needs a positive multiple, render factor "
                             "and chroma scale")
        if (self.temperature is None) != (self.class_weight is None):
            raise ModelError("the model contract needs both a temperature and a class weight "
                             "(a hybrid head) or neither")
        if self.temperature is not None and not (
                0.01 <= self.temperature <= 10.0 and 0.0 <= self.class_weight <= 1.0):
            raise ModelError(f"the model contract's decoding is out of range (temperature "
                             f"{self.temperature} in 0.01..10, class weight "
                             f"{self.class_weight} in 0..1)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "weights") -> ModelContract:
        if not isinstance(d, dict):
            raise ModelError(f"{where}: the model contract is not a mapping")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelError(f"{where}: unknown model contract fields {', '.join(unknown)}")
        try:
            kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
            kw = {k: (int(v) if k in ("multiple", "render_factor") else v) for k, v in kw.items()}
            if "input_range" in kw:
                kw["input_range"] = tuple(float(x) for x in kw["input_range"])
            for k in ("chroma_scale", "temperature", "class_weight"):
                if kw.get(k) is not None:
                    kw[k] = float(kw[k])
            return cls(**kw)
        except (TypeError, ValueError) as e:
            raise ModelError(f"{where}: malformed model contract ({e})") from None


def contract_from_meta(meta: dict[str, Any], where: str = "weights") -> ModelContract:
    """The contract recorded in weights metadata.  Files exported before the field existed
    carry only ``config.multiple`` and ``render_factor``; everything else was fixed then and
    is the default."""
    if "contract" in meta:
        return ModelContract.from_dict(meta["contract"], where)
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    try:
        return ModelContract(multiple=int(config.get("multiple", 32)),
                             render_factor=int(meta.get("render_factor", 16)))
    except (TypeError, ValueError) as e:
        raise ModelError(f"{where}: malformed render factor or multiple ({e})") from None
