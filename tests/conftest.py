"""Shared fixtures: a tiny generator's weights file, a session Colorizer, synthesized media."""

from __future__ import annotations

import logging
import signal
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mediautil import make_video
from tinymodel import build_tiny_model


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal gives it.  A suite started in the background of a non-interactive
    shell (``.ci/run &``) inherits SIGINT *ignored*, as POSIX shells do for ``&`` jobs; the
    interpreter then keeps it ignored and so do the CLIs the tests start, and the tests of
    Ctrl-C could only fail.  A Python handler here also gives every child the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Converted models (OpenVINO, ONNX) go to a cache of the session, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("STREAMCOLOR_CACHE", str(tmp_path_factory.mktemp("model_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    from streamcolor.model.weights import save_weights

    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    model = build_tiny_model()
    assert model.out.weight.abs().sum() > 0
    save_weights(model, path, {"render_factor": 4})
    return path


@pytest.fixture(scope="session")
def colorizer(tiny_weights):
    from streamcolor.model.colorizer import Colorizer

    return Colorizer(str(tiny_weights), precision="fp32", batch_size=4)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread for the suite (2 busy cores make 2 spin-waiting threads ~100x slower);
    the CLI, called in-process by some tests, sets the count: put it back."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Read-only clips shared by the tests (made once): name -> path."""
    root = tmp_path_factory.mktemp("media")
    clips = {
        "plain": dict(),
        "ntsc": dict(rate=Fraction(30000, 1001), frames=10),
        "vfr": dict(time_base=Fraction(1, 1000), pts=[0, 33, 70, 100, 150, 210, 240, 300, 333]),
        "aac": dict(audio="aac", frames=12),
        "mp3": dict(audio="libmp3lame", frames=12),
        "odd": dict(width=65, height=49, pix_fmt="yuv444p"),
        "full": dict(pix_fmt="yuvj420p"),
    }
    out = {name: make_video(root / f"{name}.mp4", **kw) for name, kw in clips.items()}
    out["pcm"] = make_video(root / "pcm.mkv", audio="pcm_s16le", frames=12)
    for p in out.values():
        p.chmod(0o444)
    return out


@pytest.fixture
def restore_logging():
    """The CLI reconfigures the root logger; put it back after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
