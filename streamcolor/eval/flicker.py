"""Temporal-consistency metrics of colourised video, as defined in the literature.

* **CDC**, colour distribution consistency (Lei & Chen, TCVC, CVPR 2019; used by ColorMNet):
  per-channel 256-bin histograms divided by H x W; Jensen-Shannon divergence (natural log,
  as ``scipy.stats.entropy``) between frames t and t + d for d in {1, 2, 4}; the mean over t
  for each d, weighted 1/3 each, then averaged over the three channels.  Lower is steadier.
* **Warping error** (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018):
  for each pair (t-1, t), flow from t-1 to t and its occlusion mask (forward-backward check
  plus motion boundaries, :func:`streamcolor.temporal.flow.occlusion_mask`) are computed on the
  *input* frames; frame t of the output is warped back onto t-1 and the squared difference
  to output frame t-1 (RGB in [0, 1]) is summed over non-occluded pixels and channels and
  divided by their count; the result is averaged over all pairs.  Two deviations, both
  stated wherever numbers are reported: Lai et al. use FlowNet2, streamcolor OpenCV's DIS
  flow (preset "medium"), so absolute values compare with each other (always report the
  ground truth's), not with published tables; and pairs that straddle a hard cut (detected
  on the input, :mod:`.scenecut`) are left out, because flow between two unrelated shots is
  meaningless and one such pair can outweigh a whole clip (Lai et al.'s test videos have no
  cuts).

Both are streaming (:class:`CDCMeter`, :class:`FlowPairs` + :func:`pair_warp_error`), so
long videos are measured in constant memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from streamcolor.temporal.flow import FlowEstimator, occlusion_mask, warp
from streamcolor.temporal.scenecut import SceneCutDetector

CDC_DILATIONS = (1, 2, 4)
CDC_WEIGHTS = (1 / 3, 1 / 3, 1 / 3)


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """uint8 image (H, W, C) -> (C, 256) float64 histograms divided by H x W."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise ValueError(f"expected a uint8 (H, W, C) image, got {rgb.dtype} {rgb.shape}")
    h, w, c = rgb.shape
    flat = rgb.reshape(-1, c)
    return np.stack([np.bincount(flat[:, k], minlength=256) for k in range(c)]) / (h * w)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) along the last axis; inputs are normalised to
    sum 1 first, like ``scipy.stats.entropy``."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / m), 0.0)
        return terms.sum(axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class CDCMeter:
    """Streaming CDC: feed frames in order with :meth:`add`, read :attr:`value`."""

    def __init__(self, dilations: Sequence[int] = CDC_DILATIONS,
                 weights: Sequence[float] = CDC_WEIGHTS) -> None:
        if len(dilations) != len(weights):
            raise ValueError("one weight per dilation")
        self.dilations = tuple(dilations)
        self.weights = tuple(weights)
        self._recent: deque[np.ndarray] = deque(maxlen=max(self.dilations))
        self._sums = {d: np.zeros(3) for d in self.dilations}
        self._counts = dict.fromkeys(self.dilations, 0)
        self.per_frame: list[float] = []  # JS at d = 1 between frame t-1 and t, channel mean

    def add(self, rgb: np.ndarray) -> None:
        hist = channel_histograms(rgb)
        for d in self.dilations:
            if len(self._recent) >= d:
                js = js_divergence(self._recent[-d], hist)
                self._sums[d] = self._sums[d] + js
                self._counts[d] += 1
                if d == 1:
                    self.per_frame.append(float(js.mean()))
        self._recent.append(hist)

    @property
    def value(self) -> float:
        """CDC; NaN until there are more frames than the largest dilation."""
        if any(self._counts[d] == 0 for d in self.dilations):
            return float("nan")
        per_channel = sum(w * self._sums[d] / self._counts[d]
                          for d, w in zip(self.dilations, self.weights, strict=True))
        return float(np.mean(per_channel))


def cdc(frames: Iterable[np.ndarray]) -> float:
    """CDC of a sequence of uint8 RGB frames."""
    meter = CDCMeter()
    for f in frames:
        meter.add(f)
    return meter.value


@dataclass
class FlowPair:
    """Flow from frame t-1 to t of the input and the mask of its trusted pixels (on t-1)."""

    flow: np.ndarray | None  # (H, W, 2) float32; None when the pair is not comparable
    valid: np.ndarray | None  # (H, W) float32, 1 = not occluded
    cut: bool = False  # the frames lie on either side of a hard cut or of a size change


class FlowPairs:
    """Feed the input's luma frames in order; each :meth:`add` after the first returns the
    :class:`FlowPair` between the previous frame and this one."""

    def __init__(self, preset: str = "medium") -> None:
        self._flow = FlowEstimator(preset)
        self._cuts = SceneCutDetector()
        self._prev: np.ndarray | None = None

    def add(self, luma: np.ndarray) -> FlowPair | None:
        prev, self._prev = self._prev, luma
        cut = self._cuts.update(luma)
        if prev is None:
            return None
        if prev.shape != luma.shape:  # a size change is a cut: no pixel to compare with
            return FlowPair(None, None, True)
        fw = self._flow(prev, luma)
        bw = self._flow(luma, prev)
        return FlowPair(fw, (~occlusion_mask(fw, bw)).astype(np.float32), cut)


def to_unit(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    return np.asarray(rgb, np.float32)


def pair_warp_error(prev_rgb: np.ndarray, rgb: np.ndarray, pair: FlowPair) -> float:
    """Lai et al.'s warping error of one pair: output frame t warped onto t-1 with the input's
    flow, squared difference to output t-1 over non-occluded pixels and channels."""
    if pair.flow is None or pair.valid is None:
        raise ValueError("no flow for a pair across a cut or a size change")
    a = to_unit(prev_rgb)
    b = warp(to_unit(rgb), pair.flow)
    mask = pair.valid[..., None]
    diff = (b - a) * mask
    n = float(mask.sum()) * a.shape[2]
    if n == 0:
        n = float(diff.size)
    return float(np.sum(diff * diff) / n)


def warp_error(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray] | None = None,
               preset: str = "medium") -> float:
    """Mean warping error of an output sequence (uint8 or [0, 1] RGB); flow is computed on
    ``inputs`` (luma frames) or, when omitted, on the outputs' own luma."""
    from streamcolor.color import rgb_to_luma_u8

    if len(outputs) < 2:
        return float("nan")
    lumas = inputs if inputs is not None else [
        rgb_to_luma_u8(np.clip(np.rint(to_unit(o) * 255), 0, 255).astype(np.uint8))
        for o in outputs]
    pairs = FlowPairs(preset)
    pairs.add(lumas[0])
    errors = []
    for t in range(1, len(outputs)):
        pair = pairs.add(lumas[t])
        assert pair is not None
        if not pair.cut:
            errors.append(pair_warp_error(outputs[t - 1], outputs[t], pair))
    return float(np.mean(errors)) if errors else float("nan")
