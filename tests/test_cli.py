"""Every bad input: one clear line on stderr, exit status 1, no traceback, nothing written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mediautil import (
    leftovers,
    make_audio_only,
    make_header_only,
    make_video,
    pattern_frame,
    probe,
    snapshot,
    write_gray_png,
)
from tinymodel import build_tiny_model

from streamcolor import cli

pytestmark = pytest.mark.usefixtures("restore_logging")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _real(tmp: Path) -> Path:
    return make_video(tmp / "real.mp4", frames=30, audio="aac")


def _image(tmp: Path) -> Path:
    return write_gray_png(tmp / "img.png", pattern_frame(0, 64, 48))


def _corrupt(tmp: Path) -> Path:
    p = tmp / "corrupt.mp4"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    return p


def _truncated(tmp: Path) -> Path:
    data = _real(tmp).read_bytes()
    p = tmp / "truncated.mp4"
    p.write_bytes(data[: int(len(data) * 0.3)])
    return p


def _empty_dir(tmp: Path) -> Path:
    (tmp / "frames").mkdir()
    return tmp / "frames"


def _zero_byte(tmp: Path) -> Path:
    p = tmp / "empty.mp4"
    p.touch()
    return p


def _wrong_arch_weights(tmp: Path) -> Path:
    from streamcolor.model.weights import save_weights

    p = tmp / "wrongarch.safetensors"
    save_weights(build_tiny_model(), p, {"render_factor": 4, "arch": "unet_lite0"})
    return p


def _bad_meta_weights(tmp: Path) -> Path:
    from safetensors.torch import save_file

    p = tmp / "badmeta.safetensors"
    save_file({"x": __import__("torch").zeros(2)}, str(p), metadata={"streamcolor": "{oops"})
    return p


# id -> setup(tmp) returning (input, output, needle that must be in the message, model or None)
CASES = {
    "missing_file": lambda t: (t / "missing.mp4", t / "out.mp4", str(t / "missing.mp4"), None),
    "missing_folder_glob": lambda t: (t / "nope" / "*.png", t / "out", str(t / "nope"), None),
    "corrupt_video": lambda t: (_corrupt(t), t / "out.mp4", str(t / "corrupt.mp4"), None),
    "truncated_video": lambda t: (_truncated(t), t / "out.mp4", str(t / "truncated.mp4"), None),
    "empty_folder": lambda t: (_empty_dir(t), t / "out.mp4", str(t / "frames"), None),
    "empty_folder_to_folder": lambda t: (_empty_dir(t), t / "outdir", str(t / "frames"), None),
    "zero_byte_mp4": lambda t: (_zero_byte(t), t / "out.mp4", str(t / "empty.mp4"), None),
    "header_only_mp4": lambda t: (make_header_only(t / "hdr.mp4"), t / "out.mp4",
                                  str(t / "hdr.mp4"), None),
    "audio_only_mp4": lambda t: (make_audio_only(t / "sound.mp4"), t / "out.mp4",
                                 str(t / "sound.mp4"), None),
    "ftp_url": lambda t: ("ftp://user:secret@host/x.mp4", t / "out.mp4",
                          "ftp://user:***@host/x.mp4", None),
    "rtsp_refused": lambda t: ("rtsp://admin:secret@127.0.0.1:1/stream", t / "out.mp4",
                               "rtsp://admin:***@127.0.0.1:1/stream", None),
    "output_is_input_video": lambda t: (_real(t), t / "real.mp4", str(t / "real.mp4"), None),
    "output_is_input_other_spelling": lambda t: (_real(t), t / "." / "sub" / ".." / "real.mp4",
                                                 "real.mp4", None),
    "output_is_input_image": lambda t: (_image(t), t / "img.png", str(t / "img.png"), None),
    "output_folder_missing_video": lambda t: (_real(t), t / "nodir" / "out.mp4",
                                              str(t / "nodir"), None),
    "output_folder_missing_image": lambda t: (_image(t), t / "nodir" / "out.png",
                                              str(t / "nodir"), None),
    "output_exists": lambda t: (_real(t), t / "taken.mp4", str(t / "taken.mp4"), None),
    "video_to_image_output": lambda t: (_real(t), t / "out.png", str(t / "out.png"), None),
    "image_to_video_output": lambda t: (_image(t), t / "out.mp4", str(t / "out.mp4"), None),
    "unknown_model": lambda t: (_real(t), t / "out.mp4", "nosuchmodel", "nosuchmodel"),
    "missing_weights_file": lambda t: (_real(t), t / "out.mp4", str(t / "gone.safetensors"),
                                       str(t / "gone.safetensors")),
}

XFAIL_CASES = {
    "weights_wrong_arch": lambda t: (_real(t), t / "out.mp4", "wrongarch.safetensors",
                                     str(_wrong_arch_weights(t))),
    "weights_bad_metadata": lambda t: (_real(t), t / "out.mp4", "badmeta.safetensors",
                                       str(_bad_meta_weights(t))),
}


def _run_case(case, tmp_path, weights, capsys, extra=()):
    src, out, needle, model = case(tmp_path)
    if out.name == "taken.mp4":
        out.write_bytes(b"previous result")
    before = snapshot(tmp_path)
    digest = _digest(src) if isinstance(src, Path) and src.is_file() else None
    capsys.readouterr()
    rc = cli.main(["colorize", str(src), "-o", str(out), "--model", model or str(weights),
                   *extra])
    captured = capsys.readouterr()
    return rc, captured, before, digest, src, out, needle


def _check_clean_failure(rc, captured, before, digest, src, out, needle, tmp_path):
    err_lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert rc == 1, captured
    assert len(err_lines) == 1, captured.err
    line = err_lines[0]
    assert line.startswith("streamcolor: error:"), line
    assert needle in line, (needle, line)
    assert "Traceback" not in captured.err + captured.out
    assert "secret" not in captured.err + captured.out
    # nothing written, nothing changed (input included), no temporary files
    assert snapshot(tmp_path) == before
    assert not leftovers(tmp_path)
    if out.parent.exists():
        assert not leftovers(out.parent)
    if digest is not None:
        assert _digest(src) == digest
    if out.name != "taken.mp4" and not (isinstance(src, Path) and out.resolve() == src.resolve()):
        assert not out.exists()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_one_line_error(name, tmp_path, tiny_weights, capsys):
    res = _run_case(CASES[name], tmp_path, tiny_weights, capsys)
    _check_clean_failure(*res, tmp_path)


@pytest.mark.parametrize("name", list(XFAIL_CASES))
def test_bad_weights_one_line_error(name, tmp_path, tiny_weights, capsys):
    res = _run_case(XFAIL_CASES[name], tmp_path, tiny_weights, capsys)
    _check_clean_failure(*res, tmp_path)


def test_bad_codec_quiet_one_line_error(tmp_path, tiny_weights, capsys):
    src = _real(tmp_path)
    res = _run_case(lambda t: (src, t / "out.mp4", str(t / "out.mp4"), None), tmp_path,
                    tiny_weights, capsys, extra=["--codec", "nosuchcodec", "-q"])
    _check_clean_failure(*res, tmp_path)


def test_bad_codec_one_line_error(tmp_path, tiny_weights, capsys):
    src = _real(tmp_path)
    res = _run_case(lambda t: (src, t / "out.mp4", str(t / "out.mp4"), None), tmp_path,
                    tiny_weights, capsys, extra=["--codec", "nosuchcodec"])
    _check_clean_failure(*res, tmp_path)


def test_folder_input_as_its_own_output_refused_even_with_overwrite(tmp_path, tiny_weights,
                                                                   capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_gray_png(folder / "f1.png", pattern_frame(1, 64, 48))
    before = snapshot(tmp_path)
    rc = cli.main(["colorize", str(folder), "-o", str(folder), "--overwrite", "--model",
                   str(tiny_weights)])
    assert rc == 1
    assert "output is the input" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_glob_input_as_its_own_output_refused(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_gray_png(folder / "f1.png", pattern_frame(1, 64, 48))
    write_gray_png(folder / "f2.png", pattern_frame(2, 64, 48))
    before = snapshot(tmp_path)
    digest = _digest(folder / "f1.png")
    rc = cli.main(["colorize", str(folder / "*.png"), "-o", str(folder), "--overwrite",
                   "--model", str(tiny_weights), "-q"])
    assert _digest(folder / "f1.png") == digest, "input frame overwritten"
    assert rc == 1 and snapshot(tmp_path) == before


def test_successful_run_and_overwrite(tmp_path, tiny_weights, capsys):
    src = make_video(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    assert cli.main(["colorize", str(src), "-o", str(out), "--model", str(tiny_weights),
                     "--precision", "fp32", "--batch-size", "2", "-q"]) == 0
    assert probe(out).frames == 6
    first = out.stat().st_mtime_ns
    # a second run without --overwrite refuses, with it replaces
    assert cli.main(["colorize", str(src), "-o", str(out), "--model", str(tiny_weights),
                     "-q"]) == 1
    assert out.stat().st_mtime_ns == first
    assert cli.main(["colorize", str(src), "-o", str(out), "--model", str(tiny_weights),
                     "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "colorized 6 frames" in err
    assert probe(out).frames == 6
    assert not leftovers(tmp_path)


def _subprocess(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "streamcolor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


SUBPROCESS_CASES = ["missing_file", "corrupt_video", "ftp_url"]


@pytest.fixture(scope="module")
def sub_runs(tmp_path_factory, tiny_weights):
    """Each case run once as ``python -m streamcolor`` (startup is slow): name -> result."""
    runs = {}
    for name in SUBPROCESS_CASES:
        tmp = tmp_path_factory.mktemp(name)
        src, out, needle, _ = CASES[name](tmp)
        before = snapshot(tmp)
        p = _subprocess(["colorize", str(src), "-o", str(out), "--model", str(tiny_weights)],
                        tmp)
        runs[name] = (p, needle, before, snapshot(tmp), out)
    return runs


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_subprocess_one_line_error(name, sub_runs):
    p, needle, before, after, out = sub_runs[name]
    assert p.returncode == 1, p
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("streamcolor: error:") and needle in lines[0], lines
    assert "Traceback" not in p.stderr + p.stdout
    assert "secret" not in p.stderr + p.stdout
    assert after == before
    assert not out.exists()


def test_subprocess_stderr_is_exactly_one_line(sub_runs):
    p = sub_runs["missing_file"][0]
    assert p.returncode == 1
    assert len(p.stderr.splitlines()) == 1, repr(p.stderr)


def test_subprocess_corrupt_video_prints_nothing_else(sub_runs):
    p = sub_runs["corrupt_video"][0]
    assert p.returncode == 1
    assert p.stdout.strip() == "", repr(p.stdout)


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["colorize", "x.mp4"])  # no -o
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["colorize", "x.mp4", "-o", "y.mp4", "--fps", "0"])
    assert e.value.code == 2
    assert "frame rate must be positive" in capsys.readouterr().err
