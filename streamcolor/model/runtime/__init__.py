"""The runtime seam: what runs the generator.  A runtime takes a batch of luma already at
render size and scaled by the model's contract and returns the network's raw chroma; the
model-independent work around it (render size, resizing, ranges, composition) is
:class:`streamcolor.model.colorizer.Colorizer`'s.  ``TorchRuntime`` is the first one."""

from streamcolor.model.runtime.base import Runtime, is_runtime
from streamcolor.model.runtime.threads import configure_threads, max_threads

__all__ = ["Runtime", "configure_threads", "is_runtime", "max_threads"]
