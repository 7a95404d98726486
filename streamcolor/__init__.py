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
__all__ = ["Colorizer", "TemporalSmoother", "colorize_path", "list_models", "open_source",
           "set_threads"]

if TYPE_CHECKING:
    from streamcolor.api import colorize_path
    from streamcolor.io.sources import open_source
    from streamcolor.model.colorizer import Colorizer
    from streamcolor.model.runtime import configure_threads as set_threads
    from streamcolor.model.weights import list_models
    from streamcolor.temporal.smoother import TemporalSmoother

_LAZY = {"Colorizer": "streamcolor.model.colorizer", "colorize_path": "streamcolor.api",
         "open_source": "streamcolor.io.sources", "TemporalSmoother": "streamcolor.temporal",
         "set_threads": "streamcolor.model.runtime",
         "list_models": "streamcolor.model.weights"}
_RENAMED = {"set_threads": "configure_threads"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'streamcolor' has no attribute {name!r}")
