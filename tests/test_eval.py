"""``streamcolor eval`` and the evaluation API on synthesized colour clips; the smoother in the
pipeline and on the command line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from mediautil import make_video, write_rgb_video
from scenes import compose, moving_object, noisy

from streamcolor import cli
from streamcolor.api import colorize_path
from streamcolor.eval.evaluation import evaluate_paths, evaluate_sequences
from streamcolor.temporal.smoother import TemporalSmoother

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Ground truth, a flickering colourisation of it, and its gray input (12 frames)."""
    root = tmp_path_factory.mktemp("evalclips")
    scene = moving_object(frames=12, h=96, w=128, size=24)
    truth = [compose(y, c) for y, c in zip(scene.lumas, scene.chroma, strict=True)]
    flicker = [compose(y, c) for y, c in
               zip(scene.lumas, noisy(scene.chroma, 0.05), strict=True)]
    frames = root / "flicker_frames"
    frames.mkdir()
    for i, f in enumerate(flicker):
        cv2.imwrite(str(frames / f"f{i}.png"), f[..., ::-1])
    return {
        "truth": write_rgb_video(root / "truth.mp4", truth),
        "flicker": write_rgb_video(root / "flicker.mp4", flicker),
        "gray": write_rgb_video(root / "gray.mp4",
                                [np.repeat(y[..., None], 3, 2) for y in scene.lumas]),
        "short": write_rgb_video(root / "short.mp4", truth[:7]),
        "frames": frames,
        "small": write_rgb_video(root / "small.mp4", [f[:64, :96] for f in truth]),
    }


def test_identical_output_and_reference(clips):
    r = evaluate_paths(clips["truth"], clips["truth"])
    out, ref = r["output"], r["reference"]
    assert out.frames == ref.frames == 12
    assert out.psnr == 100.0 and out.ssim == pytest.approx(1.0)
    assert out.colorfulness_gap == 0.0
    assert out.warp_error == pytest.approx(ref.warp_error)
    assert out.cdc == pytest.approx(ref.cdc)
    assert len(out.per_frame["warp_error"]) == 11 and len(out.per_frame["cdc_d1"]) == 11


def test_flicker_is_measured_against_the_truth(clips):
    r = evaluate_paths(clips["flicker"], clips["truth"], clips["gray"])
    out, ref = r["output"], r["reference"]
    assert out.warp_error > 2 * ref.warp_error
    assert out.cdc > 2 * ref.cdc
    assert 20 < out.psnr < 60 and out.ssim < 1.0
    assert out.colorfulness_gap > 0


def test_no_reference_reports_the_no_reference_metrics(clips):
    r = evaluate_paths(clips["frames"])
    assert set(r) == {"output"}
    out = r["output"]
    assert out.psnr is None and out.ssim is None and out.colorfulness_gap is None
    assert out.cdc > 0 and out.warp_error > 0 and out.colorfulness > 0


def test_candidates_share_one_flow():
    scene = moving_object(frames=6)
    truth = [compose(y, c) for y, c in zip(scene.lumas, scene.chroma, strict=True)]
    r = evaluate_sequences({"a": truth, "b": list(truth)}, truth, scene.lumas)
    assert r["a"].warp_error == r["b"].warp_error == r["reference"].warp_error


def test_cli_eval_writes_table_json_and_plot(clips, tmp_path, capsys):
    js, png = tmp_path / "m.json", tmp_path / "flicker.png"
    code = cli.main(["eval", str(clips["flicker"]), "-r", str(clips["truth"]),
                     "--input", str(clips["gray"]), "--json", str(js), "--plot", str(png)])
    assert code == 0
    table = capsys.readouterr().out
    assert "CDC" in table and "reference" in table
    doc = json.loads(js.read_text())
    assert doc["metrics"]["output"]["frames"] == 12
    assert doc["metrics"]["output"]["cdc"] > doc["metrics"]["reference"]["cdc"]
    assert "DIS" in doc["flow"]
    assert len(doc["per_frame"]["output"]["warp_error"]) == 11
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 100
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("case, message", [
    ("short", "frame counts must match"),
    ("small", "is 96x64, but in"),
    ("missing", "no such file or folder"),
])
def test_cli_eval_bad_inputs(clips, tmp_path, capsys, case, message):
    out = tmp_path / "nothing.mp4" if case == "missing" else clips[case]
    js = tmp_path / "m.json"
    code = cli.main(["eval", str(out), "-r", str(clips["truth"]), "--json", str(js)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and message in err
    assert (str(out) in err) or (str(clips["truth"]) in err)
    assert not js.exists()


def test_colorize_smooths_by_default_and_strength_zero_is_per_frame(colorizer, tmp_path):
    clip = make_video(tmp_path / "in.mp4", width=96, height=64, frames=10)
    on = colorize_path(clip, tmp_path / "on", colorizer)
    off = colorize_path(clip, tmp_path / "off", colorizer, temporal_strength=0)
    assert on.frames == off.frames == 10
    a = [cv2.imread(str(p)) for p in sorted((tmp_path / "on").iterdir())]
    b = [cv2.imread(str(p)) for p in sorted((tmp_path / "off").iterdir())]
    np.testing.assert_array_equal(a[0], b[0])  # the first frame has no history
    assert any(not np.array_equal(x, y) for x, y in zip(a[1:], b[1:], strict=True))
    # a custom filter replaces the default smoother
    seen = []

    class Spy(TemporalSmoother):
        def update(self, frame, chroma):
            seen.append(frame.index)
            return super().update(frame, chroma)

    colorize_path(clip, tmp_path / "spy", colorizer, chroma_filter=Spy(0.5))
    assert seen == list(range(10))


@pytest.mark.parametrize("value", ["1.5", "-0.1", "x"])
def test_cli_rejects_bad_strength(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as e:
        cli.main(["colorize", "in.mp4", "-o", str(tmp_path / "o.mp4"),
                  "--temporal-strength", value])
    assert e.value.code == 2
    assert "--temporal-strength" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_cli_eval_never_overwrites_an_input(clips, tmp_path, capsys, flag):
    import shutil

    victim = tmp_path / "ref.mp4"
    shutil.copy(clips["truth"], victim)
    before = victim.read_bytes()
    code = cli.main(["eval", str(clips["flicker"]), "-r", str(victim), flag, str(victim)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "refusing to overwrite" in err
    assert victim.read_bytes() == before
