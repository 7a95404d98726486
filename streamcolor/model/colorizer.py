"""The model stage's model-independent half: luma frames in, chroma at render resolution out,
around a :class:`~streamcolor.model.runtime.Runtime` that runs the network.

``render_factor`` follows DeOldify (render size = render_factor x 16 px) but keeps the aspect
ratio: the render has about the *area* of DeOldify's (render_factor*16)² square, with both sides
multiples of the model's ``multiple`` (32, the encoder's stride).  640x480 at render_factor 16
renders at 288x224.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from streamcolor.color import luma_to_unit, rgb_to_luma_u8
from streamcolor.compose import compose_rgb
from streamcolor.errors import ModelError, StreamcolorError, is_allocation_failure
from streamcolor.model.contract import ModelContract
from streamcolor.model.runtime import Runtime, is_runtime

if TYPE_CHECKING:
    from streamcolor.model.networks import ChromaUNet
    from streamcolor.model.weights import WeightsRecord

log = logging.getLogger(__name__)

RENDER_BASE = 16
MIN_RENDER_FACTOR, MAX_RENDER_FACTOR = 4, 64
LUMA_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)


def render_size(height: int, width: int, render_factor: int, multiple: int = 32) -> tuple[int, int]:
    """(h, w) of the chroma render: area ≈ (render_factor*16)², aspect kept, sides % multiple."""
    side = render_factor * RENDER_BASE
    aspect = width / height
    rw = side * math.sqrt(aspect)
    rh = side / math.sqrt(aspect)
    # Nearest multiple, halves rounded up (Python's round() would send 10.5 to 10).
    rh_i = max(multiple, math.floor(rh / multiple + 0.5) * multiple)
    rw_i = max(multiple, math.floor(rw / multiple + 0.5) * multiple)
    return rh_i, rw_i


def render_input(luma: np.ndarray, rh: int, rw: int, full_range: bool = True) -> np.ndarray:
    """One luma frame -> float32 (rh, rw) full-range luma in [0, 1]."""
    return luma_to_unit(cv2.resize(luma, (rw, rh), interpolation=cv2.INTER_AREA), full_range)


def check_render_factor(render_factor: int) -> int:
    if isinstance(render_factor, bool) or not isinstance(render_factor, int | np.integer) or \
            not MIN_RENDER_FACTOR <= render_factor <= MAX_RENDER_FACTOR:
        raise ModelError(f"render factor {render_factor!r} is outside "
                         f"{MIN_RENDER_FACTOR}..{MAX_RENDER_FACTOR}")
    return int(render_factor)


MAX_SATURATION = 4.0


def check_saturation(saturation: float | None) -> float | None:
    """None (the model's default) or a chroma gain in 0..4 (0 = gray, 1 = the model's)."""
    if saturation is None:
        return None
    if isinstance(saturation, bool) or not isinstance(saturation, int | float | np.floating) \
            or not 0.0 <= float(saturation) <= MAX_SATURATION:
        raise ValueError(f"saturation must be a number in 0..{MAX_SATURATION:g}, "
                         f"not {saturation!r}")
    return float(saturation)


def check_luma(y: object, what: str = "frame") -> np.ndarray:
    """A 2-D luma array of a supported sample type, or ``TypeError``/``ValueError``."""
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array, got {type(y).__name__}")
    if y.ndim == 3 and y.shape[2] == 1:
        y = y[..., 0]
    if y.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D luma array (H, W), got shape {y.shape}")
    if y.dtype not in LUMA_DTYPES:
        raise TypeError(f"{what}: unsupported sample type {y.dtype} "
                        "(uint8, uint16, or float in [0, 1])")
    if y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"{what}: empty image of shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    return y


class Colorizer:
    """A generator with its render settings; the Python API works on numpy frames.

    >>> c = Colorizer()                       # the default shipped model, CPU or GPU
    >>> rgb = c.colorize(gray_uint8_image)    # (H, W) or (H, W, 3) -> (H, W, 3) uint8 RGB

    ``model`` is a shipped model's name, a ``.safetensors`` path (or an ``.onnx`` / OpenVINO
    ``.xml`` file from ``streamcolor export``), a
    :class:`~streamcolor.model.weights.WeightsRecord`, a :class:`ChromaUNet`, or any
    :class:`~streamcolor.model.runtime.Runtime` (then ``device``, ``precision``,
    ``batch_size``, ``runtime`` and ``threads`` are the runtime's own).

    ``runtime`` is ``auto`` (OpenVINO on a CPU, torch on CUDA), ``torch``, ``openvino`` or
    ``onnxruntime``; every runtime gets the same pre/post-processing, so they give the same
    frames up to their numeric precision.  ``threads`` sets the OpenVINO / ONNX Runtime
    threads of this instance (default: the CPUs available, shared among ``pipelines``).
    ``temperature`` and ``class_weight`` override a hybrid model's decoding (the annealed-mean
    temperature, lower = more vivid, and the classification head's share of the chroma; the
    defaults are the model's own, from its metadata).
    Constructing one changes no process-wide setting; torch's thread count is
    :func:`streamcolor.set_threads`'s job.
    """

    def __init__(self, model: str | WeightsRecord | ChromaUNet | Runtime | None = None,
                 render_factor: int | None = None, device: str = "auto",
                 precision: str = "auto", batch_size: int | None = None,
                 runtime: str = "auto", threads: int | None = None,
                 pipelines: int = 1, saturation: float | None = None,
                 temperature: float | None = None, class_weight: float | None = None) -> None:
        self.record: WeightsRecord | None = None
        self._saturation = check_saturation(saturation)
        if is_runtime(model):
            if temperature is not None or class_weight is not None:
                raise ValueError("a runtime's decoding is fixed; set temperature and "
                                 "class_weight when it is built")
            self.runtime: Runtime = model  # type: ignore[assignment]
            self.render_factor = check_render_factor(
                model.contract.render_factor if render_factor is None else render_factor)
            return
        from streamcolor.model.runtime.loader import build_runtime, resolve_runtime
        from streamcolor.model.runtime.threads import check_threads
        from streamcolor.model.runtime.torch_runtime import check_batch_size

        check_threads(threads)
        check_batch_size(batch_size)
        net, contract, sha256, file_format = self._load(model)
        if temperature is not None or class_weight is not None:
            contract, net = _with_decoding(contract, net, temperature, class_weight,
                                           file_format, self.record)
        self.render_factor = check_render_factor(
            contract.render_factor if render_factor is None else render_factor)
        kind = resolve_runtime(runtime, device, file_format)
        name = self.record.name if self.record else net().config.name
        options = dict(net=net, file=self.record.path if file_format != "safetensors" else None,
                       file_format=file_format, contract=contract, name=name, sha256=sha256,
                       device=device, precision=precision, batch_size=batch_size,
                       render_factor=self.render_factor, pipelines=pipelines)
        try:
            self.runtime = build_runtime(kind, threads=threads, **options)
        except Exception as e:
            # "auto" never fails for want of a conversion: torch runs every generator
            if runtime != "auto" or kind == "torch" or file_format != "safetensors" or \
                    isinstance(e, StreamcolorError) or is_allocation_failure(e):
                raise
            log.warning("cannot run %s on %s (%s: %s); running it on torch", name, kind,
                        type(e).__name__, str(e).splitlines()[0][:160] if str(e) else "")
            self.runtime = build_runtime("torch", threads=None, **options)

    def _load(self, model: object) -> tuple[Callable[[], ChromaUNet], ModelContract,
                                             str | None, str]:
        """(lazy generator loader, contract, weights sha256 or None, file format)."""
        from streamcolor.model.networks import ChromaUNet
        from streamcolor.model.weights import WeightsRecord, load_generator, resolve_model

        if isinstance(model, ChromaUNet):
            from streamcolor.model.weights import contract_of

            net = model.eval()
            return (lambda: net), contract_of(model), None, "safetensors"
        if model is not None and not isinstance(model, str | WeightsRecord):
            raise TypeError("model must be a model name, a .safetensors path, a WeightsRecord, "
                            f"a ChromaUNet or a Runtime, not {type(model).__name__}")
        record = model if isinstance(model, WeightsRecord) else resolve_model(model)
        self.record = record
        if record.format != "safetensors":
            def no_net() -> ChromaUNet:
                raise ModelError(f"{record.path}: an exported model has no torch weights")

            return no_net, record.contract, None, record.format
        if not record.path.exists():
            raise ModelError(f"{record.path}: weights file of model {record.name!r} is missing")
        sha256 = record.verify()
        loaded: list[ChromaUNet] = []

        def net() -> ChromaUNet:  # loaded once, and only when a runtime needs it
            if not loaded:
                loaded.append(load_generator(record, verify=False))
            return loaded[0]

        return net, record.contract, sha256, "safetensors"

    @property
    def name(self) -> str:
        return self.runtime.name

    @property
    def contract(self) -> ModelContract:
        return self.runtime.contract

    @property
    def saturation(self) -> float:
        """The chroma gain applied after the model: the one given, else the model's own
        (``saturation`` in its metadata), else 1."""
        if self._saturation is not None:
            return self._saturation
        meta = self.record.meta if self.record is not None else {}
        return float(meta.get("saturation", 1.0)) if isinstance(meta, dict) else 1.0

    @property
    def batch_size(self) -> int:
        return self.runtime.batch_size

    @property
    def multiple(self) -> int:
        return self.contract.multiple

    @property
    def description(self) -> str:
        """What runs the model, e.g. "openvino bf16" or "torch fp32"."""
        return str(getattr(self.runtime, "description", type(self.runtime).__name__))

    def render_size(self, height: int, width: int) -> tuple[int, int]:
        return render_size(height, width, self.render_factor, self.multiple)

    def predict(self, lumas: Sequence[np.ndarray],
                full_range: bool | Sequence[bool] = True) -> np.ndarray:
        """Luma frames of one size -> (B, rh, rw, 2) chroma offsets at render resolution.

        ``lumas`` are uint8 (0..255, or 16..235 where ``full_range`` is False), uint16
        (0..65535) or float in [0, 1].  Each is shrunk to the render size first (INTER_AREA,
        in its own sample type, so full-resolution frames are never converted to float) and
        the batch runs through the runtime once.
        """
        if isinstance(lumas, np.ndarray) and lumas.ndim == 2:
            raise TypeError("predict takes a sequence of frames; wrap one frame in a list")
        frames = [check_luma(y, f"frame {i}") for i, y in enumerate(lumas)]
        if not frames:
            return np.zeros((0, 0, 0, 2), np.float32)
        h, w = frames[0].shape
        for i, y in enumerate(frames):
            if y.shape != (h, w):
                raise ValueError(f"frame {i}: frames of one batch must have one size; "
                                 f"frame 0 is {w}x{h}, frame {i} is {y.shape[1]}x{y.shape[0]}")
        ranges = [full_range] * len(frames) if isinstance(full_range, bool) else list(full_range)
        if len(ranges) != len(frames):
            raise ValueError(f"{len(ranges)} full_range flags for {len(frames)} frames")
        rh, rw = self.render_size(h, w)
        small = np.stack([render_input(y, rh, rw, fr) for y, fr in zip(frames, ranges,
                                                                          strict=True)])
        lo, hi = self.contract.input_range
        if (lo, hi) != (0.0, 1.0):
            small = small * np.float32(hi - lo) + np.float32(lo)
        out = self.runtime.predict(small)
        gain = self.contract.chroma_scale * self.saturation
        if gain != 1.0:
            out = out * np.float32(gain)
        return out

    def predict_batched(self, lumas: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`predict` in chunks of ``batch_size``."""
        bs = self.batch_size
        return np.concatenate([self.predict(lumas[i:i + bs]) for i in range(0, len(lumas), bs)])

    def colorize(self, image: np.ndarray) -> np.ndarray:
        """One numpy image -> colourised RGB (H, W, 3) of the same sample type.

        ``image`` is gray (H, W) or RGB (H, W, 3), uint8, uint16 or float in [0, 1].  The
        output's luma is the input's (BT.601 luma of an RGB input); only chroma comes from the
        model.
        """
        img = image
        if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3:
            img = _rgb_luma(img)
        y = check_luma(img, "image")
        return compose_rgb(y, self.predict([y])[0])


def _with_decoding(contract: ModelContract, net: Callable[[], ChromaUNet],
                   temperature: float | None, class_weight: float | None, file_format: str,
                   record: WeightsRecord | None,
                   ) -> tuple[ModelContract, Callable[[], ChromaUNet]]:
    """A hybrid model's contract and generator loader with its decoding overridden (an
    annealed-mean temperature and/or the classification head's share)."""
    from dataclasses import replace

    from streamcolor.model.networks.unet import check_class_weight, check_temperature
    from streamcolor.model.weights import apply_decoding

    where = str(record.path) if record is not None else "model"
    if not contract.hybrid:
        raise ModelError(f"{where}: temperature and class weight apply to models with a "
                         "classification head (a hybrid head); this model has none")
    if file_format != "safetensors":
        raise ModelError(f"{where}: an exported model's decoding is fixed in its graph; "
                         "export it again with the temperature and class weight wanted")
    new = replace(contract,
                  temperature=contract.temperature if temperature is None
                  else check_temperature(temperature),
                  class_weight=contract.class_weight if class_weight is None
                  else check_class_weight(class_weight))

    def decoded() -> ChromaUNet:
        model = net()
        apply_decoding(model, new, where)
        return model

    return new, decoded


def _rgb_luma(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb_to_luma_u8(rgb)
    if rgb.dtype not in LUMA_DTYPES:
        raise TypeError(f"image: unsupported sample type {rgb.dtype} "
                        "(uint8, uint16, or float in [0, 1])")
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if rgb.dtype == np.uint16:
        return np.clip(np.rint(y), 0, 65535).astype(np.uint16)
    return y
