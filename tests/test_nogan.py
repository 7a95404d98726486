"""NoGAN stages 2-4 with tiny configs: critic registry and learning, every stage end to end
with resume, the inflection metrics and the selection rule."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch
from scenes import texture

from streamcolor.errors import ModelError
from streamcolor.eval.metrics import feature_stats, frechet_distance, orange_share
from streamcolor.model.networks import create_critic, list_critics
from streamcolor.training.gan import (
    CriticConfig,
    GanConfig,
    RenderConfig,
    critic_loss,
    pretrain_critic,
    render,
    train_gan,
)
from streamcolor.training.inflection import CheckpointMetrics, evaluate_run, select
from streamcolor.training.pretrain_generator import Phase, PretrainConfig
from streamcolor.training.pretrain_generator import train as pretrain


def colourful(seed: int, h: int = 72, w: int = 96) -> np.ndarray:
    """A textured image with saturated colour regions (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y = texture(h, w, seed)
    img = np.stack([y, y, y], axis=-1)
    for _ in range(3):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        img[y0:y0 + h // 2, x0:x0 + w // 2] *= rng.uniform(0.3, 1.3, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("nogan_data")
    for split, n, offset in (("train", 8, 0), ("val", 3, 100)):
        (root / split).mkdir()
        for i in range(n):
            cv2.imwrite(str(root / split / f"img{i}.png"), colourful(offset + i)[..., ::-1])
    return root


def test_critic_registry():
    assert {"critic_patch", "critic_tiny"} <= set(list_critics())
    c = create_critic("critic_tiny")
    out = c(torch.rand(2, 3, 64, 64))
    assert out.shape[0] == 2 and out.ndim == 2 and out.shape[1] > 1  # a map of patches
    with pytest.raises(ModelError):
        create_critic("nope")


def test_critic_learns_to_separate_real_from_fake():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        real = torch.from_numpy(np.stack([colourful(int(s), 32, 32)
                                          for s in rng.integers(0, 10_000, n)]))
        real = real.permute(0, 3, 1, 2).float() / 255
        fake = real.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)  # "colourised" = gray
        return real, fake.contiguous()

    critic = create_critic("critic_tiny")
    opt = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.0, 0.9))
    for _ in range(60):
        loss, _ = critic_loss(critic, *batch(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    critic.eval()
    with torch.no_grad():
        loss, acc = critic_loss(critic, *batch(32))
    assert acc > 0.9 and loss.item() < 0.4


def test_every_stage_runs_and_resumes(data, tmp_path):
    torch.manual_seed(0)
    train, val = str(data / "train"), str(data / "val")
    g1 = tmp_path / "g1"
    pretrain(PretrainConfig(train=train, run=str(g1), arch="unet_tiny",
                            phases=(Phase(64, 4, 3, True),), pretrained_encoder=False,
                            feature_loss_pretrained=False, bf16=False, checkpoint_every=1))
    fakes = render(RenderConfig(train=train, generator=str(g1 / "checkpoint.pt"),
                                run=str(tmp_path / "r1"), size=64, count=8, batch=4,
                                bf16=False))
    assert np.load(fakes).shape == (8, 64, 64, 3)
    crit = pretrain_critic(CriticConfig(train=train, fakes=str(fakes),
                                        run=str(tmp_path / "c1"), arch="critic_tiny", size=64,
                                        batch=4, steps=3))

    def gan(run: str, steps: int) -> dict:
        train_gan(GanConfig(train=train, generator=str(g1 / "checkpoint.pt"),
                            critic=str(crit), run=run, critic_arch="critic_tiny", size=64,
                            batch=4, steps=steps, snapshot_images=4, bf16=False,
                            feature_loss_pretrained=False, critic_threshold=10.0,
                            checkpoint_every=2, log_every=1))
        return torch.load(f"{run}/checkpoint.pt", weights_only=True)

    # a run killed after 4 steps and resumed to 8 ends exactly where an 8-step run ends
    gan(str(tmp_path / "gan_a"), 4)
    resumed = gan(str(tmp_path / "gan_a"), 8)
    straight = gan(str(tmp_path / "gan_b"), 8)
    assert resumed["step"] == straight["step"] == 8
    for k, v in straight["modules"]["generator"].items():
        torch.testing.assert_close(resumed["modules"]["generator"][k], v, msg=k)
    with open(tmp_path / "gan_a" / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 9))
    # threshold 10: the critic always hands over, so modes alternate critic/generator
    snaps = sorted((tmp_path / "gan_b").glob("ckpt_*.pt"))
    assert [p.name for p in snaps] == [f"ckpt_{n:08d}.pt" for n in (4, 8, 12, 16)]

    rows = evaluate_run(tmp_path / "gan_b", val, pretrained_features=False, render_factor=4)
    assert [r.name for r in rows] == ["start"] + [p.name for p in snaps]
    assert all(np.isfinite(r.psnr) and r.feature_distance >= 0 for r in rows)

    from streamcolor import cli
    from streamcolor.model.colorizer import Colorizer

    code = cli.main(["train", "select", str(tmp_path / "gan_b"), "--val", val, "--name",
                     "tinygan", "--out", str(tmp_path / "models"), "--render-factor", "4"])
    assert code == 0
    assert (tmp_path / "gan_b" / "inflection.png").exists()
    c = Colorizer(str(tmp_path / "models" / "tinygan.safetensors"), precision="fp32")
    assert c.record.meta["recipe"]["stage"].startswith("NoGAN GAN phase")
    assert c.colorize(np.zeros((32, 32), np.uint8)).shape == (32, 32, 3)
    # the margin rule measures every snapshot against a reference model's gain curve
    code = cli.main(["train", "select", str(tmp_path / "gan_b"), "--val", val, "--name",
                     "tinymargin", "--no-export", "--render-factor", "4", "--rule", "margin",
                     "--reference", str(tmp_path / "models" / "tinygan.safetensors")])
    assert code == 0
    from streamcolor.training.inflection import read_csv
    from streamcolor.training.pareto import margin_at

    # each way of measuring has its own cache: render factor 4 alone, and with the reference
    settings = {p: json.loads(p.read_text())
                for p in (tmp_path / "gan_b").glob("inflection-*.json")}
    assert sorted(s["reference"] is not None for s in settings.values()) == [False, True]
    table = next(p for p, s in settings.items() if s["reference"]).with_suffix(".csv")
    rows = read_csv(table)
    curve = [tuple(p) for p in json.loads((tmp_path / "gan_b" / "reference.json").read_text()
                                          )["curve"]]
    assert len(curve) == 8 and all(np.isfinite(r.cf_ratio) for r in rows)
    for r in rows:  # measured against that curve (NaN where it does not reach the ratio)
        m = margin_at(r.psnr, r.cf_ratio, curve)
        assert (m is None and np.isnan(r.margin)) or m == pytest.approx(r.margin)
    assert (tmp_path / "gan_b" / "reference.json").exists()


def _row(name, images, psnr, fd, drift):
    return CheckpointMetrics(name, images, psnr, 20.0, 5.0, fd, drift)


def test_selection_rule_on_synthetic_curves():
    start = _row("start", 0, 26.0, 10.0, 0.0)
    # FD falls then rises; PSNR sags late; orange drift creeps up late.
    curve = [(1, 25.95, 9.0, 0.000), (2, 25.8, 8.0, 0.001), (3, 25.7, 7.5, 0.002),
             (4, 25.6, 6.0, 0.009),  # best FD so far, but orange drift over the bound
             (5, 25.2, 5.0, 0.003),  # best FD overall, but PSNR 0.8 dB down
             (6, 25.6, 8.5, 0.004)]  # later, worse again
    rows = [_row(f"ckpt_{i}", i * 100, p, fd, d) for i, p, fd, d in curve]
    assert select(rows, start).name == "ckpt_3"
    assert select(rows, start, psnr_tolerance=1.0).name == "ckpt_5"
    assert select(rows, start, drift_tolerance=0.01).name == "ckpt_4"
    assert select([_row("ckpt_1", 100, 20.0, 1.0, 0.0)], start).name == "start"
    # the drift bound is against the truth, not the (undersaturated) start
    pale = _row("start", 0, 26.0, 10.0, -0.05)
    assert select([_row("ckpt_1", 100, 25.9, 9.0, -0.02)], pale).name == "ckpt_1"
    assert select([_row("ckpt_1", 100, 25.9, 9.0, 0.006)], pale).name == "start"
    # ties go to the earlier snapshot
    tie = [_row("ckpt_1", 100, 26.0, 3.0, 0.0), _row("ckpt_2", 200, 26.0, 3.0, 0.0)]
    assert select(tie, start).name == "ckpt_1"


def test_margin_rule_picks_the_most_psnr_above_the_free_gain_curve():
    from dataclasses import replace

    def row(name, margin, drift=0.0):
        return replace(_row(name, 0, 25.0, 5.0, drift), cf_ratio=0.8, margin=margin)

    start = row("start", 0.1)
    rows = [row("ckpt_1", 0.3), row("ckpt_2", 0.6, drift=0.02),  # too orange
            row("ckpt_3", 0.5), row("ckpt_4", float("nan"))]  # beyond the curve
    assert select(rows, start, rule="margin").name == "ckpt_3"
    assert select(rows, start, drift_tolerance=0.05, rule="margin").name == "ckpt_2"
    assert select([row("ckpt_1", -0.2)], start, rule="margin").name == "start"
    with pytest.raises(ValueError):
        select(rows, start, rule="nope")


def test_target_rule_picks_the_best_psnr_that_reaches_the_colourfulness():
    from dataclasses import replace

    def row(name, psnr, ratio, drift=0.0):
        return replace(_row(name, 0, psnr, 5.0, drift), cf_ratio=ratio)

    start = row("start", 26.0, 0.6)  # faithful but dull
    rows = [row("ckpt_1", 25.2, 0.84),  # not colourful enough
            row("ckpt_2", 25.0, 0.86), row("ckpt_3", 24.6, 0.95),
            row("ckpt_4", 25.4, 0.90, drift=0.01)]  # too orange
    assert select(rows, start, rule="target").name == "ckpt_2"
    assert select(rows, start, rule="target", min_ratio=0.8).name == "ckpt_1"
    assert select(rows, start, rule="target", drift_tolerance=0.02).name == "ckpt_4"
    assert select(rows, start, rule="target", min_ratio=0.99).name == "start"


def test_frechet_distance_hand_values(rng):
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([0.0], [[4.0]], [1.0], [[1.0]], eps=0) == pytest.approx(2.0)
    # diagonal: |dm|^2 + sum (sqrt(a) - sqrt(b))^2 = 2 + 1 + 4
    assert frechet_distance(np.zeros(2), np.diag([4.0, 9.0]), np.ones(2), np.eye(2),
                            eps=0) == pytest.approx(7.0)
    # identical distributions: 0; general case against scipy's sqrtm
    from scipy.linalg import sqrtm

    a = rng.normal(size=(50, 4))
    b = rng.normal(size=(60, 4)) * [1, 2, 0.5, 1] + 0.3
    (m1, c1), (m2, c2) = feature_stats(a), feature_stats(b)
    assert frechet_distance(m1, c1, m1, c1, eps=0) == pytest.approx(0.0, abs=1e-9)
    ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2)))
    assert frechet_distance(m1, c1, m2, c2, eps=0) == pytest.approx(ref, rel=1e-6)


def test_orange_share_hand_values():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = (230, 120, 30)  # saturated orange: hue ~28 deg, s 0.87
    img[0, 1] = (200, 160, 140)  # pale skin tone: s 0.3, not counted
    img[1, 0] = (30, 120, 230)  # blue
    img[1, 1] = (40, 20, 5)  # orange hue but too dark
    assert orange_share(img) == 0.25


def _pretrain_killed_at_step(monkeypatch, step: int, **cfg) -> None:
    """Stage 1 interrupted (KeyboardInterrupt) inside its ``step``-th step, like a kill."""
    import streamcolor.training.pretrain_generator as stage1

    real_loss = stage1.generator_loss
    calls = []

    def dies(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(stage1, "generator_loss", dies)
    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainConfig(**cfg))
    monkeypatch.setattr(stage1, "generator_loss", real_loss)


def test_generator_pretraining_resumes_exactly(data, tmp_path, monkeypatch):
    cfg = dict(train=str(data / "train"), arch="unet_tiny",
               phases=(Phase(64, 4, 2, True), Phase(64, 4, 3, False)),
               pretrained_encoder=False, feature_loss_pretrained=False, bf16=False,
               checkpoint_every=1, log_every=1)
    _pretrain_killed_at_step(monkeypatch, 4, run=str(tmp_path / "a"), **cfg)  # unfrozen phase
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["step"] == 3
    pretrain(PretrainConfig(run=str(tmp_path / "a"), **cfg))
    pretrain(PretrainConfig(run=str(tmp_path / "b"), **cfg))
    resumed = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    straight = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == straight["step"] == 5
    assert resumed["extra"]["arch"] == "unet_tiny"
    for k, v in straight["modules"]["generator"].items():
        torch.testing.assert_close(resumed["modules"]["generator"][k], v, msg=k)


def test_cycles_repeat_critic_pretraining_and_gan(data, tmp_path):
    from streamcolor.training.gan import cycle

    train = str(data / "train")
    pretrain(PretrainConfig(train=train, run=str(tmp_path / "g"), arch="unet_tiny",
                            phases=(Phase(64, 4, 1, True),), pretrained_encoder=False,
                            feature_loss_pretrained=False, bf16=False))
    last = cycle(train, str(tmp_path / "g" / "checkpoint.pt"), str(tmp_path / "art"), 2,
                 {"size": 64, "count": 8, "batch": 4, "bf16": False},
                 {"arch": "critic_tiny", "size": 64, "batch": 4, "steps": 2},
                 {"critic_arch": "critic_tiny", "size": 64, "batch": 4, "steps": 2,
                  "bf16": False, "feature_loss_pretrained": False, "snapshot_images": 4})
    assert last == tmp_path / "art" / "cycle_2" / "gan"
    for n in (1, 2):
        for stage in ("render", "critic", "gan"):
            assert (tmp_path / "art" / f"cycle_{n}" / stage / "config.json").exists()
    import json

    c2 = json.loads((tmp_path / "art" / "cycle_2" / "critic" / "config.json").read_text())
    g2 = json.loads((tmp_path / "art" / "cycle_2" / "gan" / "config.json").read_text())
    assert c2["init"] == g2["generator"] == str(tmp_path / "art" / "cycle_1" / "gan" /
                                                "checkpoint.pt")


def test_loop_shows_a_progress_bar_with_losses(tmp_path, monkeypatch):
    import rich.progress

    from streamcolor.training.loop import run_loop
    from streamcolor.training.run import RunDir

    seen = []

    class Recorder:
        def __init__(self, *a, **k):
            pass

        def add_task(self, description, total, completed):
            seen.append(("add", description, total, completed))
            return 0

        def update(self, task, completed, description):
            seen.append(("update", description, completed))

        def start(self):
            pass

        def stop(self):
            seen.append(("stop",))

    monkeypatch.setattr(rich.progress, "Progress", Recorder)
    lin = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)

    def step(state):
        loss = lin(torch.ones(1, 2)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        state.images += 1
        return {"loss": loss.item()}

    state = run_loop(RunDir(tmp_path / "r"), {"m": lin}, {"m": opt}, step, 3, progress=True,
                     label="demo", log_every=1)
    assert state.step == 3
    assert seen[0] == ("add", "demo", 3, 0) and seen[-1] == ("stop",)
    updates = [u for u in seen if u[0] == "update"]
    assert [u[2] for u in updates] == [1, 2, 3]
    assert all(u[1].startswith("demo loss ") for u in updates)
    assert (tmp_path / "r" / "log.csv").read_text().count("\n") == 4  # header + 3 steps


@pytest.mark.parametrize("argv, names", [
    (["select", "{tmp}/nope", "--val", "{tmp}", "--name", "x"], "nope"),
    (["render", "--train", "{tmp}/nodata", "--generator", "{tmp}/g.pt", "--run", "{tmp}/r"],
     "nodata"),
    (["critic", "--train", "{tmp}", "--fakes", "{tmp}/nofakes.npy", "--run", "{tmp}/c"],
     "nofakes.npy"),
])
def test_train_bad_paths_give_one_line(tmp_path, capsys, argv, names, data):
    from streamcolor.training.cli import main

    if argv[0] == "critic":  # real training images, missing fakes
        argv = [*argv]
        argv[argv.index("{tmp}")] = str(data / "train")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith("streamcolor train: error:")
    assert names in err


def test_fine_tuning_a_plain_generator_with_the_colourfulness_hinge(data, tmp_path):
    """A shipped-style generator (spectral norm baked in) fine-tuned with the hinge: the run
    starts from those weights, logs the hinge, exports, and continues as a plain model."""
    from streamcolor.model.weights import save_weights
    from streamcolor.training.export import export
    from streamcolor.training.gan import load_generator_from

    torch.manual_seed(0)
    train = str(data / "train")
    g1 = tmp_path / "g1"
    pretrain(PretrainConfig(train=train, run=str(g1), arch="unet_tiny",
                            phases=(Phase(64, 4, 2, True),), pretrained_encoder=False,
                            feature_loss_pretrained=False, bf16=False, checkpoint_every=1))
    shipped = tmp_path / "start.safetensors"
    save_weights(load_generator_from(g1 / "checkpoint.pt"), shipped, {"render_factor": 4})
    ft = tmp_path / "ft"
    pretrain(PretrainConfig(train=train, run=str(ft), arch="unet_tiny", init=str(shipped),
                            phases=(Phase(64, 4, 3, False),), pretrained_encoder=False,
                            feature_loss_pretrained=False, bf16=False, checkpoint_every=1,
                            cf_weight=0.1))
    log = (ft / "log.csv").read_text()
    assert "cf_hinge" in log.splitlines()[0]
    model = load_generator_from(ft / "checkpoint.pt")
    assert not any("parametrizations" in k for k in model.state_dict())
    out = export(ft, "ft", tmp_path / "models", 4, None)
    assert out.exists()


def test_resume_does_not_duplicate_log_rows(data, tmp_path, monkeypatch):
    """Killed after logging steps past its last checkpoint, a resumed run logs each step
    once: 1, 2, 3, 4, 5, not 1, 2, 3, 3, 4, 5."""
    import csv

    cfg = dict(train=str(data / "train"), arch="unet_tiny", phases=(Phase(64, 4, 5, True),),
               pretrained_encoder=False, feature_loss_pretrained=False, bf16=False,
               checkpoint_every=2, log_every=1)
    _pretrain_killed_at_step(monkeypatch, 4, run=str(tmp_path / "a"), **cfg)

    def steps() -> list[int]:
        with open(tmp_path / "a" / "log.csv", newline="") as f:
            return [int(r["step"]) for r in csv.DictReader(f)]

    assert steps() == [1, 2, 3]  # step 3 logged, but the checkpoint is at step 2
    pretrain(PretrainConfig(run=str(tmp_path / "a"), **cfg))
    assert steps() == [1, 2, 3, 4, 5]
