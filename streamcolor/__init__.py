"""streamcolor: colorize grayscale video files, live streams, frame sequences and photos.

Python API (numpy frames in, numpy frames out)::

    from streamcolor import Colorizer, colorize_path
    rgb = Colorizer().colorize(gray)            # one frame
    colorize_path("old.mp4", "color.mp4")        # a whole file, streamed

Importing the package has no side effects; heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Colorizer", "TemporalSmoother", "colorize_path", "open_source"]

if TYPE_CHECKING:
    from .api import colorize_path
    from .colorizer import Colorizer
    from .sources import open_source
    from .temporal import TemporalSmoother

_LAZY = {"Colorizer": "colorizer", "colorize_path": "api", "open_source": "sources",
         "TemporalSmoother": "temporal"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'streamcolor' has no attribute {name!r}")
