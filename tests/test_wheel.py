"""The package as a user gets it: a built wheel, installed into a fresh virtual environment
(no checkout on its path), colorizes the shipped sample with its own shipped model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from mediautil import probe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of the files git would commit: an in-tree build/ would keep stale
    # modules and put them in the wheel.
    src = tmp_path_factory.mktemp("src") / "streamcolor"
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(out)], check=True, timeout=300,
                   cwd=out)
    (whl,) = out.glob("streamcolor-*.whl")
    return whl


def test_wheel_ships_models_and_no_stray_packages(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for model in ("stable", "artistic", "base"):
        assert f"streamcolor/model/shipped/{model}.safetensors" in names
    assert "streamcolor/model/shipped/models.json" in names
    assert "streamcolor/training/cli.py" in names
    tops = {n.split("/")[0] for n in names if not n.startswith("streamcolor-")}
    assert tops == {"streamcolor"}, tops  # no top-level 'training' or 'tests'


def test_wheel_in_a_fresh_venv_colorizes_the_sample(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # The dependencies (torch, av, ...) come from this interpreter's site-packages; the
    # streamcolor package itself only from the wheel.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMCOLOR_MODELS")}
    env["OMP_NUM_THREADS"] = "1"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--ignore-installed", str(wheel)], check=True, env=env, timeout=300,
                   cwd=tmp_path)
    where = subprocess.run(
        [str(py), "-c", "import streamcolor, streamcolor.model.weights as w; "
         "print(streamcolor.__file__); print(w.list_models()['stable'].path)"],
        check=True, env=env, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert all(p.startswith(str(env_dir)) for p in where), where  # not the checkout
    out = tmp_path / "colorized.mp4"
    p = subprocess.run([str(env_dir / "bin" / "streamcolor"), "colorize",
                        str(ROOT / "samples" / "carphone_gray.mp4"), "-o", str(out),
                        "--threads", "1"], env=env, capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "with stable on openvino" in p.stderr and "at render factor 16" in p.stderr
    assert probe(out).frames == probe(ROOT / "samples" / "carphone_gray.mp4").frames
