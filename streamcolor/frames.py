"""The unit that flows through the pipeline: one frame's luma plus where it came from."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from streamcolor.color import luma_to_unit


@dataclass
class Frame:
    """One grayscale frame.

    ``luma`` is the source's own luma at full resolution, untouched (uint8, or uint16 for
    16-bit images).  For video it is the decoded Y plane; ``full_range`` tells whether it uses
    0..255 (JPEG/PC) or 16..235 (MPEG/TV) levels.

    ``stream_id`` names the stream a frame belongs to (several cameras run at once in live
    mode); ``arrived_at`` is the wall-clock time (``time.time()``) the source delivered it and
    ``captured_at`` the wall-clock time it was captured, where the source knows it.
    """

    luma: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    full_range: bool = True
    name: str | None = None  # file name for image/folder sources
    extra: dict = field(default_factory=dict)
    bit_depth: int = 8  # of the source's samples (uint16 luma holds them MSB-aligned)
    stream_id: str = "0"
    arrived_at: float | None = None
    captured_at: float | None = None

    @property
    def height(self) -> int:
        return int(self.luma.shape[0])

    @property
    def width(self) -> int:
        return int(self.luma.shape[1])

    @property
    def latency(self) -> float | None:
        """Seconds from capture (or arrival) until now."""
        t = self.captured_at if self.captured_at is not None else self.arrived_at
        return None if t is None else time.time() - t

    @property
    def time(self) -> float | None:
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def model_luma(self) -> np.ndarray:
        """Full-range luma as float32 in [0, 1], what the generator takes."""
        return luma_to_unit(self.luma, self.full_range)
