"""Golden outputs: what the shipped model, the pipeline and the sinks produce today.

``python tests/golden.py`` (re)writes ``tests/data/golden.npz``; ``test_golden.py`` checks
that the code still produces the same numbers.  Regenerate only for a change that is meant to
change the numbers, and say so in the commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden.npz"
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def shipped_chroma() -> np.ndarray:
    """Chroma of the default shipped model (fp32, render factor 6) on the Detroit photo."""
    import cv2

    from streamcolor import Colorizer

    gray = cv2.imread(str(ROOT / "samples" / "detroit_1915.jpg"), cv2.IMREAD_GRAYSCALE)
    return Colorizer(render_factor=6, precision="fp32", device="cpu",
                     runtime="torch").predict([gray])[0]


def tiny_pipeline_chroma(colorizer, tmp: Path) -> np.ndarray:
    """Smoothed chroma the pipeline hands the sink for a synthesized 10-frame clip."""
    from mediautil import make_video

    from streamcolor import colorize_path

    captured = []

    class Capture:
        def update(self, frame, chroma):
            out = inner.update(frame, chroma)
            captured.append(np.array(out))
            return out

    from streamcolor import TemporalSmoother

    inner = TemporalSmoother()
    clip = make_video(tmp / "golden.mp4", width=96, height=64, frames=10)
    colorize_path(clip, tmp / "golden_out.mp4", colorizer, chroma_filter=Capture(),
                  overwrite=True)
    return np.stack(captured)


class PatternRuntime:
    """A model-free runtime: chroma a fixed function of the luma, in steps of 1/1024 (exact in
    float32), so the sink's golden pixels do not depend on the CPU's float kernels (a torch
    model's last bits do: 10 pixels of the 16-bit image moved by one step between an AMD
    EPYC and an Intel Xeon)."""

    name = "pattern"

    def __init__(self) -> None:
        from streamcolor.model.contract import ModelContract

        self.contract = ModelContract(render_factor=4)
        self.batch_size = 4

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = np.round((batch - 0.5) * 300.0) / 1024.0
        return np.stack([x, -0.5 * x], axis=-1).astype(np.float32)


def tiny_image_rgb(colorizer, tmp: Path) -> np.ndarray:
    """The PNG the image sink writes for a gray 16-bit and an 8-bit input (decoded), with the
    chroma of :class:`PatternRuntime` (``colorizer`` is not used: the model has its own
    golden values above)."""
    import cv2
    from mediautil import pattern_frame

    from streamcolor import Colorizer, colorize_path

    colorizer = Colorizer(PatternRuntime())

    gray = pattern_frame(3, 90, 70)
    cv2.imwrite(str(tmp / "g8.png"), gray)
    colorize_path(tmp / "g8.png", tmp / "o8.png", colorizer, overwrite=True)
    cv2.imwrite(str(tmp / "g16.png"), gray.astype(np.uint16) * 257 + 3)
    colorize_path(tmp / "g16.png", tmp / "o16.png", colorizer, overwrite=True)
    o8 = cv2.imread(str(tmp / "o8.png"), cv2.IMREAD_UNCHANGED)
    o16 = cv2.imread(str(tmp / "o16.png"), cv2.IMREAD_UNCHANGED)
    return np.concatenate([o8.astype(np.uint16), o16], axis=0)


def video_chroma_planes(colorizer, tmp: Path) -> np.ndarray:
    """Decoded U/V planes of the encoded output of the golden clip."""
    from mediautil import chroma_planes

    return np.stack(chroma_planes(tmp / "golden_out.mp4")).astype(np.uint8)


def compute(colorizer, tmp: Path) -> dict[str, np.ndarray]:
    return {
        "shipped_chroma": shipped_chroma(),
        "pipeline_chroma": tiny_pipeline_chroma(colorizer, tmp),
        "video_uv": video_chroma_planes(colorizer, tmp),
        "image_rgb": tiny_image_rgb(colorizer, tmp),
    }


def tiny_colorizer(tmp: Path):
    """The test suite's tiny model (same seed as the ``colorizer`` fixture)."""
    from tinymodel import build_tiny_model

    from streamcolor import Colorizer
    from streamcolor.model.weights import save_weights

    path = tmp / "tiny.safetensors"
    save_weights(build_tiny_model(), path, {"render_factor": 4})
    return Colorizer(str(path), precision="fp32", batch_size=4, device="cpu", runtime="torch")


if __name__ == "__main__":
    # python tests/golden.py [KEY ...]: recompute every value, or only the keys named (the
    # others are kept as they are)
    import tempfile

    import torch

    torch.set_num_threads(1)
    keys = sys.argv[1:]
    with tempfile.TemporaryDirectory() as d:
        values = compute(tiny_colorizer(Path(d)), Path(d))
    if keys:
        with np.load(GOLDEN) as z:
            kept = {k: z[k] for k in z.files}
        values = {**kept, **{k: values[k] for k in keys}}
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **values)
    for k, v in values.items():
        print(k, v.shape, v.dtype, "(recomputed)" if not keys or k in keys else "")
