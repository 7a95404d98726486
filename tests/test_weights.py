"""Weights: safetensors only, no unpickling, integrity checks, clear errors for bad files."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tinymodel import build_tiny_model

from streamcolor.errors import (
    InputNotFoundError,
    ModelError,
    StreamcolorError,
    WeightsIntegrityError,
)
from streamcolor.model.colorizer import Colorizer
from streamcolor.model.weights import (
    WeightsRecord,
    list_models,
    load_checkpoint,
    load_generator,
    read_metadata,
    resolve_model,
    save_weights,
    sha256_file,
)


class Gadget:
    """A custom class: unpickling it would mean running arbitrary code paths."""

    def __init__(self) -> None:
        self.payload = "not a tensor"


def test_weights_file_is_safetensors_with_metadata(tiny_weights):
    raw = tiny_weights.read_bytes()
    assert not raw.startswith(b"PK") and not raw.startswith(b"\x80")  # not a torch zip / pickle
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    meta = json.loads(header["__metadata__"]["streamcolor"])
    assert meta["arch"] == "unet_tiny" and meta["render_factor"] == 4
    assert meta["config"]["name"] == "unet_tiny"
    with safe_open(str(tiny_weights), framework="pt") as f:
        keys = list(f.keys())
    assert "out.weight" in keys
    # spectral norm is baked in: no parametrization tensors are stored
    assert not any("parametrizations" in k for k in keys)
    assert read_metadata(tiny_weights)["arch"] == "unet_tiny"


def test_loading_weights_never_unpickles(tiny_weights, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("pickle/torch.load used while loading weights")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    c = Colorizer(str(tiny_weights), precision="fp32")
    assert c.name == "tiny" and c.render_factor == 4
    out = c.predict([np.full((48, 64), 0.5, np.float32)])
    assert out.shape == (1, 64, 64, 2)


def test_save_load_round_trip_matches_in_memory_model(tmp_path):
    model = build_tiny_model(seed=5).eval()
    x = torch.rand(2, 1, 96, 160, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(x).permute(0, 2, 3, 1).numpy()
    path = tmp_path / "m.safetensors"
    sha = save_weights(model, path, {"render_factor": 8})
    assert sha == sha256_file(path)
    assert not list(tmp_path.glob(".*tmp-*"))
    rec = WeightsRecord("m", path, "unet_tiny", sha256=sha, meta={"render_factor": 8})
    net = load_generator(rec)
    # BatchNorms after convs are folded (only the skip-connection BNs have no conv to go into)
    assert [n for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)] == \
        ["up16.bn_skip", "up8.bn_skip", "up4.bn_skip", "up2.bn_skip"]
    with torch.no_grad():
        got = net(x).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.abs(ref).max() > 0.01
    # through the Colorizer (frames already at render size, so no resize)
    c = Colorizer(rec, precision="fp32")
    assert c.render_factor == 8 and c.render_size(96, 160) == (96, 160)
    np.testing.assert_allclose(c.predict(list(x[:, 0].numpy())), ref, atol=1e-5)


def test_save_weights_leaves_the_model_usable(tmp_path):
    model = build_tiny_model().eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        before = model(x)
    save_weights(model, tmp_path / "m.safetensors", {})
    with torch.no_grad():
        after = model(x)  # AttributeError: 'ParametrizedConv2d' object has no attribute 'weight'
    torch.testing.assert_close(after, before)


def test_load_checkpoint_is_weights_only(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(2)}, "gadget": Gadget()}, evil)
    # the file itself is fine for a full unpickler (so the refusal below is about safety) ...
    assert isinstance(torch.load(evil, weights_only=False)["gadget"], Gadget)
    # ... but load_checkpoint refuses to unpickle the custom class
    with pytest.raises(pickle.UnpicklingError) as e:
        load_checkpoint(evil)
    assert isinstance(e.value, StreamcolorError) and str(evil) in str(e.value)
    assert "\n" not in str(e.value)
    plain = tmp_path / "plain.pt"
    torch.save({"model": {"w": torch.ones(2)}, "step": 3, "lr": 1e-4}, plain)
    ck = load_checkpoint(plain)
    assert ck["step"] == 3 and torch.equal(ck["model"]["w"], torch.ones(2))


def test_wrong_sha256_raises_integrity_error(tiny_weights):
    bad = WeightsRecord("tiny", tiny_weights, "unet_tiny", sha256="0" * 64)
    with pytest.raises(WeightsIntegrityError) as e:
        load_generator(bad)
    assert isinstance(e.value, ModelError) and str(tiny_weights) in str(e.value)
    with pytest.raises(WeightsIntegrityError):
        Colorizer(bad, precision="fp32")
    good = WeightsRecord("tiny", tiny_weights, "unet_tiny", sha256=sha256_file(tiny_weights))
    load_generator(good)  # the right hash loads
    load_generator(bad, verify=False)


def test_safetensors_without_metadata_is_model_error(tmp_path, tiny_weights):
    plain = tmp_path / "plain.safetensors"
    save_file(load_file(str(tiny_weights)), str(plain))  # same tensors, no streamcolor metadata
    with pytest.raises(ModelError, match="metadata"):
        resolve_model(str(plain))
    with pytest.raises(ModelError):
        Colorizer(str(plain))


def test_not_a_safetensors_file_is_model_error(tmp_path):
    junk = tmp_path / "junk.safetensors"
    torch.save({"w": torch.ones(3)}, junk)  # a pickle zip under a .safetensors name
    with pytest.raises(ModelError, match=r"junk\.safetensors"):
        resolve_model(str(junk))


def test_unknown_model_name(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMCOLOR_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="nosuchmodel") as e:
        resolve_model("nosuchmodel")
    assert isinstance(e.value, LookupError) and isinstance(e.value, StreamcolorError)
    with pytest.raises(LookupError):
        Colorizer("nosuchmodel")


def test_missing_weights_path(tmp_path):
    with pytest.raises(InputNotFoundError):
        resolve_model(str(tmp_path / "gone.safetensors"))


def test_shipped_model_index(monkeypatch, tmp_path, tiny_weights):
    """models.json records: resolved by name, hash checked on load."""
    (tmp_path / "tiny.safetensors").write_bytes(tiny_weights.read_bytes())
    index = {"tiny": {"file": "tiny.safetensors", "arch": "unet_tiny",
                      "sha256": sha256_file(tiny_weights), "meta": {"render_factor": 5}},
             "broken": {"file": "tiny.safetensors", "arch": "unet_tiny", "sha256": "f" * 64},
             "absent": {"file": "absent.safetensors", "arch": "unet_tiny"}}
    (tmp_path / "models.json").write_text(json.dumps(index))
    monkeypatch.setenv("STREAMCOLOR_MODELS", str(tmp_path))
    assert sorted(list_models()) == ["absent", "broken", "tiny"]
    rec = resolve_model("tiny")
    assert rec.path == tmp_path / "tiny.safetensors" and rec.render_factor == 5
    c = Colorizer("tiny", precision="fp32")
    assert c.name == "tiny" and c.render_factor == 5
    with pytest.raises(WeightsIntegrityError):
        Colorizer("broken")
    with pytest.raises(ModelError, match="missing"):
        Colorizer("absent")


def test_weights_for_another_architecture_is_model_error(tmp_path):
    p = tmp_path / "lying.safetensors"
    save_weights(build_tiny_model(), p, {"arch": "unet_lite0"})
    with pytest.raises(ModelError):
        Colorizer(str(p))


@pytest.mark.parametrize("meta", ["{oops", json.dumps({"render_factor": 4})])
def test_bad_metadata_is_model_error(tmp_path, tiny_weights, meta):
    p = tmp_path / "bad.safetensors"
    save_file(load_file(str(tiny_weights)), str(p), metadata={"streamcolor": meta})
    with pytest.raises(ModelError):
        resolve_model(str(p))


def test_render_factor_out_of_range(tiny_weights):
    with pytest.raises(ModelError, match="render factor"):
        Colorizer(str(tiny_weights), render_factor=2)
    with pytest.raises(ModelError, match="render factor"):
        Colorizer(str(tiny_weights), render_factor=65)
