"""The hybrid head (regression + classification over chroma bins) in the network, the weights
records and the runtimes, its training on the CPU with exact resume, and the device-aware
training pieces (batch loader workers, random states, devices)."""

from __future__ import annotations

import csv
import json
import random
import signal

import cv2
import numpy as np
import pytest
import torch
from test_nogan import colourful

from streamcolor.errors import ModelError
from streamcolor.model.colorizer import Colorizer
from streamcolor.model.networks import chroma_bins as cb
from streamcolor.model.networks import create_generator, prepare_for_inference
from streamcolor.model.weights import save_weights
from streamcolor.training.pretrain_generator import Phase, PretrainConfig
from streamcolor.training.pretrain_generator import train as pretrain


def hybrid_tiny(seed: int = 0) -> torch.nn.Module:
    """``unet_tiny_hybrid`` with random (non-zero) output layers in both heads."""
    torch.manual_seed(seed)
    m = create_generator("unet_tiny_hybrid")
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        m.out.weight.copy_(torch.randn(m.out.weight.shape, generator=g) * 0.25)
        m.classes.logits.weight.copy_(torch.randn(m.classes.logits.weight.shape, generator=g))
        m.classes.logits.bias.copy_(torch.randn(m.classes.logits.bias.shape, generator=g))
    return m.eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid_data")
    for i in range(6):
        cv2.imwrite(str(root / f"img{i}.png"), colourful(200 + i)[..., ::-1])
    return root


def test_hybrid_output_is_the_blend_of_its_heads():
    m = hybrid_tiny()
    y = torch.rand(2, 1, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        heads = m.forward_heads(y)
        out = m(y)
    assert heads.regression.shape == (2, 2, 64, 96)
    assert heads.logits.shape == (2, cb.num_bins(), 16, 24)
    torch.testing.assert_close(heads.luma, torch.nn.functional.avg_pool2d(y, 4))
    cls = m.classes.annealed_mean(heads.logits, heads.luma, 0.38)
    up = torch.nn.functional.interpolate(cls, size=(64, 96), mode="bilinear",
                                         align_corners=False)
    torch.testing.assert_close(out, 0.5 * heads.regression + 0.5 * up)
    # the settings change the output: all classification, all regression
    with torch.no_grad():
        torch.testing.assert_close(m.set_decoding(0.38, 1.0)(y), up)
        torch.testing.assert_close(m.set_decoding(class_weight=0.0)(y), heads.regression)
    with pytest.raises(ValueError):
        m.set_decoding(temperature=0.0)
    with pytest.raises(ValueError):
        create_generator("unet_tiny").set_decoding(class_weight=0.5)


def test_a_zero_initialised_class_head_starts_uniform():
    """Added to a trained generator, the head starts at the mean of the bins in gamut."""
    torch.manual_seed(0)
    m = create_generator("unet_tiny_hybrid").eval().set_decoding(1.0, 1.0)
    y = torch.full((1, 1, 32, 32), 0.5)
    with torch.no_grad():
        out = m(y)
    allowed = cb.gamut_mask(np.array([0.5], np.float32), cb.bin_centers())[0]
    expect = cb.bin_centers()[allowed].mean(0)
    np.testing.assert_allclose(out[0, :, 5, 5].numpy(), expect, atol=1e-5)


def test_prepare_for_inference_keeps_the_hybrid_outputs():
    from test_networks import _randomise

    m = hybrid_tiny(5).train()
    _randomise(m, 6)
    m.eval()
    y = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = m(y)
        got = prepare_for_inference(m)(y)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)


def test_hybrid_weights_carry_their_decoding_and_runtimes_agree(tmp_path):
    path = tmp_path / "hybrid.safetensors"
    save_weights(hybrid_tiny(), path, {"render_factor": 4})
    c = Colorizer(str(path), precision="fp32", runtime="torch")
    assert (c.contract.temperature, c.contract.class_weight) == (0.38, 0.5)
    gray = cv2.cvtColor(colourful(1, 64, 64), cv2.COLOR_RGB2GRAY)
    base = c.predict([gray])[0]
    # a lower temperature is a different (and more saturated) decoding
    vivid = Colorizer(str(path), precision="fp32", runtime="torch", temperature=0.1)
    assert vivid.contract.temperature == 0.1
    more = vivid.predict([gray])[0]
    assert not np.allclose(more, base)
    # OpenVINO and ONNX Runtime run the same graph, decoding included
    for runtime in ("openvino", "onnxruntime"):
        other = Colorizer(str(path), precision="fp32", runtime=runtime, temperature=0.1)
        np.testing.assert_allclose(other.predict([gray])[0], more, atol=2e-4)
    # the decoding of a model without a classification head cannot be set
    plain = tmp_path / "plain.safetensors"
    save_weights(create_generator("unet_tiny"), plain, {"render_factor": 4})
    with pytest.raises(ModelError, match="classification head"):
        Colorizer(str(plain), runtime="torch", temperature=0.2)
    with pytest.raises(ValueError, match="temperature"):
        Colorizer(str(path), runtime="torch", temperature=-1)


def _hybrid_cfg(data, run, **kw) -> PretrainConfig:
    base = dict(train=str(data), run=str(run), arch="unet_tiny_hybrid",
                phases=(Phase(64, 4, 2, True), Phase(64, 4, 3, False)),
                pretrained_encoder=False, feature_loss_pretrained=False, bf16=False,
                checkpoint_every=1, log_every=1, device="cpu")
    return PretrainConfig(**{**base, **kw})


def _killed_and_resumed(monkeypatch, data, tmp_path, **cfg) -> tuple[dict, dict]:
    """(checkpoint of a run killed in its 4th step and resumed, of an uninterrupted run)."""
    import streamcolor.training.pretrain_generator as stage1

    real_loss = stage1.generator_loss
    calls = {"n": 0}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(stage1, "generator_loss", dies)
    with pytest.raises(KeyboardInterrupt):
        pretrain(_hybrid_cfg(data, tmp_path / "a", **cfg))
    monkeypatch.setattr(stage1, "generator_loss", real_loss)
    pretrain(_hybrid_cfg(data, tmp_path / "a", **cfg))
    pretrain(_hybrid_cfg(data, tmp_path / "b", **cfg))
    resumed = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    straight = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == straight["step"] == 5
    for k, v in straight["modules"]["generator"].items():
        torch.testing.assert_close(resumed["modules"]["generator"][k], v, msg=k)
    return resumed, straight


def test_hybrid_training_on_the_cpu_warm_starts_and_resumes_exactly(data, tmp_path,
                                                                    monkeypatch):
    from streamcolor.training.gan import load_generator_from

    # a plain tiny generator, as a shipped model, is the warm start
    torch.manual_seed(0)
    plain = create_generator("unet_tiny", spectral_norm=False)
    start = tmp_path / "start.safetensors"
    save_weights(plain, start, {"render_factor": 4})
    resumed, straight = _killed_and_resumed(monkeypatch, data, tmp_path, init=str(start))
    assert resumed["extra"]["arch"] == "unet_tiny_hybrid"
    # every random generator's state is in the checkpoint
    assert {"torch", "numpy", "python"} <= set(straight["rng"])
    # the log has the classification loss, once per step
    with open(tmp_path / "a" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(float(r["ce"])) for r in rows)
    # the warm start kept the plain weights and trained the zero-initialised head
    model = load_generator_from(tmp_path / "b" / "checkpoint.pt")
    assert model.config.name == "unet_tiny_hybrid"
    assert model.classes.logits.weight.abs().sum() > 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["arch"] == "unet_tiny_hybrid" and config["ce_weight"] == 1.0


def test_the_classification_loss_learns_a_colour(data, tmp_path):
    """A tiny hybrid trained on one flat colour puts most of its probability there."""
    folder = tmp_path / "one"
    folder.mkdir()
    colour = np.zeros((64, 64, 3), np.uint8)
    colour[:] = (40, 150, 60)  # foliage green
    for i in range(2):
        cv2.imwrite(str(folder / f"g{i}.png"), colour[..., ::-1])
    run = tmp_path / "run"
    pretrain(_hybrid_cfg(folder, run, phases=(Phase(32, 4, 200, False),), lr=1e-2,
                         checkpoint_every=200, log_every=20, rebalance=False))
    with open(run / "log.csv", newline="") as f:
        ce = [float(r["ce"]) for r in csv.DictReader(f)]
    assert ce[-1] < 0.5 * ce[0]
    from streamcolor.training.gan import load_generator_from

    m = load_generator_from(run / "checkpoint.pt").eval().set_decoding(0.38, 1.0)
    y = torch.full((1, 1, 32, 32), float(cv2.cvtColor(colour[:1, :1], cv2.COLOR_RGB2GRAY)[0, 0])
                   / 255)
    with torch.no_grad():
        got = m(y)[0, :, 16, 16].numpy()
    from streamcolor.color import rgb_to_ycbcr

    want = rgb_to_ycbcr(colour[0, 0].astype(np.float32) / 255)[1:]
    assert np.linalg.norm(got - want) < 2 * cb.GRID


@pytest.mark.timeout(180)  # a hang is the failure this guards against
def test_batch_loader_workers_give_the_same_batches_in_order(data):
    from streamcolor.training.data import BatchLoader, CropPlan, ImageBank, make_batch

    bank = ImageBank(data, limit=4)
    plan = CropPlan(((3, 32, 2), (1, 40, 2), (2, 48, 2)))  # phase changes at steps 3 and 4
    assert [plan(s) for s in range(8)] == [(32, 2)] * 3 + [(40, 2)] + [(48, 2)] * 4
    # OpenCV's thread pool running in this process (as after any earlier OpenCV work): forked
    # workers inherited it half-alive and hung in their first OpenCV call
    cv2.setNumThreads(2)
    cv2.GaussianBlur(np.zeros((2048, 2048), np.float32), (31, 31), 5)
    sigchld = signal.getsignal(signal.SIGCHLD)
    inline = BatchLoader(bank, plan, seed=5, workers=0)
    pooled = BatchLoader(bank, plan, seed=5, workers=2)
    try:
        for step in range(1, 6):
            a, b = inline.get(step), pooled.get(step)
            if step == 1:  # PyTorch's own handler, for its workers, while they run
                assert signal.getsignal(signal.SIGCHLD) is not sigchld
            torch.testing.assert_close(a, b)
            torch.testing.assert_close(a, make_batch(bank, *plan(step), seed=5, step=step))
        # asking for another step (a resume) restarts there, never shifting the data
        torch.testing.assert_close(pooled.get(2), make_batch(bank, 32, 2, seed=5, step=2))
    finally:
        pooled.close()
    # and closing puts the process's own back (PyTorch's ran at every later child's exit)
    assert signal.getsignal(signal.SIGCHLD) is sigchld


def test_colourless_training_photos_are_dropped(tmp_path):
    from streamcolor.training.data import ImageBank

    cv2.imwrite(str(tmp_path / "gray.png"), np.full((40, 40, 3), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "colour.png"), colourful(3, 40, 40)[..., ::-1])
    bank = ImageBank(tmp_path, min_colorfulness=15)
    assert [p.name for p in bank.files] == ["colour.png"]
    assert [p.name for p in bank.dropped] == ["gray.png"]
    with pytest.raises(ValueError, match="colourfulness"):
        ImageBank(tmp_path, min_colorfulness=1e6)


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    from streamcolor.training.device import rng_state, set_rng_state

    np.random.seed(1)
    random.seed(2)
    torch.manual_seed(3)
    torch.save({"rng": rng_state()}, tmp_path / "s.pt")
    first = (np.random.rand(3).tolist(), random.random(), torch.rand(3).tolist())
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"])
    assert (np.random.rand(3).tolist(), random.random(), torch.rand(3).tolist()) == first


def test_devices():
    from streamcolor.training.device import data_workers, training_device

    assert training_device("cpu").type == "cpu"
    assert training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert data_workers(torch.device("cpu")) == 0 and data_workers(torch.device("cpu"), 3) == 3
    with pytest.raises(ModelError):
        training_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA"):
            training_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (optional)")
def test_hybrid_training_resumes_exactly_on_cuda(data, tmp_path, monkeypatch):
    _, straight = _killed_and_resumed(monkeypatch, data, tmp_path, device="cuda", workers=2)
    assert "cuda" in straight["rng"]


@pytest.mark.usefixtures("restore_logging")
def test_cli_temperature_and_class_weight(tmp_path, capsys):
    from mediautil import pattern_frame, write_gray_png

    from streamcolor import cli

    hybrid = tmp_path / "hybrid.safetensors"
    save_weights(hybrid_tiny(), hybrid, {"render_factor": 4})
    plain = tmp_path / "plain.safetensors"
    save_weights(create_generator("unet_tiny"), plain, {"render_factor": 4})
    img = write_gray_png(tmp_path / "in.png", pattern_frame(0, 64, 48))
    outs = {}
    for t in ("0.1", "2"):
        out = tmp_path / f"out{t}.png"
        assert cli.main(["colorize", str(img), "-o", str(out), "--model", str(hybrid),
                         "--temperature", t, "--class-weight", "1", "--runtime", "torch",
                         "-q"]) == 0
        outs[t] = cv2.imread(str(out))
    assert not np.array_equal(outs["0.1"], outs["2"])
    capsys.readouterr()
    out = tmp_path / "plain.png"
    assert cli.main(["colorize", str(img), "-o", str(out), "--model", str(plain),
                     "--temperature", "0.2", "--runtime", "torch", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classification head" in err[0] and not out.exists()
    with pytest.raises(SystemExit) as e:
        cli.main(["colorize", str(img), "-o", str(out), "--temperature", "0"])
    assert e.value.code == 2


def test_a_hybrids_decoding_is_part_of_a_batch_jobs_key(tmp_path):
    from streamcolor.jobs.batch import model_identity
    from streamcolor.jobs.worker import ModelOptions

    hybrid = tmp_path / "hybrid.safetensors"
    save_weights(hybrid_tiny(), hybrid, {"render_factor": 4})
    own = model_identity(ModelOptions(str(hybrid), runtime="torch"))
    assert (own["temperature"], own["class_weight"]) == (0.38, 0.5)
    other = model_identity(ModelOptions(str(hybrid), runtime="torch", temperature=0.2))
    assert other["temperature"] == 0.2 and other != own
    plain = tmp_path / "plain.safetensors"
    save_weights(create_generator("unet_tiny"), plain, {"render_factor": 4})
    assert "temperature" not in model_identity(ModelOptions(str(plain), runtime="torch"))


def test_the_gan_phase_trains_a_hybrid_generator(data, tmp_path):
    from streamcolor.training.gan import (
        CriticConfig,
        GanConfig,
        RenderConfig,
        pretrain_critic,
        render,
        train_gan,
    )

    pretrain(_hybrid_cfg(data, tmp_path / "g", phases=(Phase(64, 4, 2, False),)))
    gen = str(tmp_path / "g" / "checkpoint.pt")
    fakes = render(RenderConfig(train=str(data), generator=gen, run=str(tmp_path / "r"),
                                size=64, count=4, batch=2, bf16=False, device="cpu"))
    crit = pretrain_critic(CriticConfig(train=str(data), fakes=str(fakes),
                                        run=str(tmp_path / "c"), arch="critic_tiny", size=64,
                                        batch=2, steps=2, device="cpu"))
    train_gan(GanConfig(train=str(data), generator=gen, critic=str(crit),
                        run=str(tmp_path / "gan"), critic_arch="critic_tiny", size=64, batch=2,
                        steps=4, snapshot_images=2, bf16=False, feature_loss_pretrained=False,
                        critic_threshold=10.0, log_every=1, device="cpu"))
    with open(tmp_path / "gan" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    gen_rows = [r for r in rows if float(r["mode"]) == 1.0]
    assert len(gen_rows) == 2 and all(np.isfinite(float(r["ce"])) for r in gen_rows)
    snaps = sorted((tmp_path / "gan").glob("ckpt_*.pt"))
    from streamcolor.training.gan import load_generator_from

    assert load_generator_from(snaps[-1]).config.name == "unet_tiny_hybrid"
