"""The runtime seam: the Colorizer's pre/post-processing around any Runtime, the contract the
weights carry, and thread settings that only change when asked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mediautil import make_video, probe

from streamcolor import set_threads
from streamcolor.api import colorize_path
from streamcolor.errors import ModelError
from streamcolor.model.colorizer import Colorizer
from streamcolor.model.contract import ModelContract, contract_from_meta
from streamcolor.model.runtime import Runtime, is_runtime, max_threads
from streamcolor.model.weights import list_models, read_metadata, resolve_model


class RecordingRuntime:
    """A numpy runtime: chroma = (input - offset) * gain, so pre/post-processing is visible."""

    name = "recording"

    def __init__(self, contract: ModelContract, batch: int = 3) -> None:
        self.contract = contract
        self._batch = batch
        self.inputs: list[np.ndarray] = []

    @property
    def batch_size(self) -> int:
        return self._batch

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.inputs.append(batch.copy())
        x = (batch - 0.5)[..., None] * 0.2
        return np.concatenate([x, -x], axis=-1).astype(np.float32)


def test_recording_runtime_is_a_runtime_and_a_colorizer_is_not():
    rt = RecordingRuntime(ModelContract())
    assert is_runtime(rt) and isinstance(rt, Runtime)
    assert not is_runtime(object())


def test_colorizer_maps_luma_into_the_contract_range_and_scales_the_output():
    contract = ModelContract(input_range=(-1.0, 1.0), chroma_scale=0.5, multiple=16,
                             render_factor=4)
    rt = RecordingRuntime(contract)
    c = Colorizer(rt)
    assert c.render_factor == 4 and c.batch_size == 3 and c.name == "recording"
    y = np.full((40, 60), 255, np.uint8)
    y[:, :30] = 0
    chroma = c.predict([y])
    (x,) = rt.inputs
    rh, rw = c.render_size(40, 60)
    assert x.shape == (1, rh, rw) and rh % 16 == 0 and rw % 16 == 0
    assert x.min() == pytest.approx(-1.0) and x.max() == pytest.approx(1.0)
    # raw = (x - 0.5) * 0.2 -> times chroma_scale 0.5
    np.testing.assert_allclose(chroma[0, ..., 0], (x[0] - 0.5) * 0.2 * 0.5, rtol=1e-6)


def test_pipeline_runs_on_any_runtime(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=7)
    rt = RecordingRuntime(ModelContract(render_factor=4))
    result = colorize_path(clip, tmp_path / "out.mp4", Colorizer(rt), temporal_strength=0)
    assert result.frames == 7 and probe(tmp_path / "out.mp4").frames == 7
    assert [b.shape[0] for b in rt.inputs] == [3, 3, 1]  # batched at the runtime's size


def test_colorizer_changes_no_process_wide_thread_count(tiny_weights):
    torch.set_num_threads(1)
    Colorizer(str(tiny_weights), precision="fp32")
    Colorizer(str(tiny_weights), precision="fp32", device="cpu", batch_size=2)
    assert torch.get_num_threads() == 1


def test_set_threads_sets_and_validates():
    assert set_threads(1) == 1 and torch.get_num_threads() == 1
    for bad in (0, -2, max_threads() + 1, 100000, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be"):
            set_threads(bad)
    assert torch.get_num_threads() == 1


def test_contract_round_trip_and_refusals():
    c = ModelContract(input_range=(-1.0, 1.0), chroma_scale=2.0, render_factor=20)
    assert ModelContract.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ModelError, match="colour space"):
        ModelContract(color_space="lab")
    with pytest.raises(ModelError, match="unknown model contract fields"):
        ModelContract.from_dict({"colour": "lab"})
    with pytest.raises(ModelError, match="empty input range"):
        ModelContract.from_dict({"input_range": [1, 1]})
    with pytest.raises(ModelError, match="layout"):
        ModelContract(input_layout="NHWC")


def test_legacy_metadata_gets_the_contract_of_its_time():
    meta = {"arch": "unet_lite0", "config": {"multiple": 32}, "render_factor": 12}
    assert contract_from_meta(meta) == ModelContract(multiple=32, render_factor=12)


def test_shipped_records_carry_a_structured_contract():
    for name, rec in list_models().items():
        assert "contract" in rec.meta, name
        assert rec.contract == ModelContract.from_dict(rec.meta["contract"])
        assert rec.contract.multiple == 32 and rec.render_factor == 16


def test_exported_weights_embed_their_contract(tiny_weights):
    meta = read_metadata(tiny_weights)
    assert ModelContract.from_dict(meta["contract"]) == ModelContract(render_factor=4)
    assert resolve_model(str(tiny_weights)).contract.render_factor == 4


def test_saturation_multiplies_the_chroma_after_the_model():
    """--saturation S: a chroma gain after the model (zero training), on top of the
    contract's scale; 0 is gray, None the model's own."""
    contract = ModelContract(chroma_scale=0.5, render_factor=4)
    y = np.linspace(0, 255, 64 * 48).reshape(48, 64).astype(np.uint8)
    base = Colorizer(RecordingRuntime(contract)).predict([y])
    assert Colorizer(RecordingRuntime(contract)).saturation == 1.0
    for s in (0.0, 1.5, 2.0):
        c = Colorizer(RecordingRuntime(contract), saturation=s)
        np.testing.assert_allclose(c.predict([y]), base * s, rtol=1e-6, atol=1e-7)
    gray = Colorizer(RecordingRuntime(contract), saturation=0.0).colorize(y)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    for bad in (-0.1, 4.5, "2", True):
        with pytest.raises(ValueError, match="saturation"):
            Colorizer(RecordingRuntime(contract), saturation=bad)
