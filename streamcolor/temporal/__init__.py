"""Between model and sink: causal motion-compensated chroma smoothing, its optical flow and
scene-cut detection."""

from streamcolor.temporal.smoother import (
    DEFAULT_STRENGTH,
    MAX_STRENGTH,
    SmootherSettings,
    TemporalSmoother,
    make_chroma_filter,
)

__all__ = ["DEFAULT_STRENGTH", "MAX_STRENGTH", "SmootherSettings", "TemporalSmoother",
           "make_chroma_filter"]
