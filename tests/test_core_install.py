"""The core install is enough: the main commands run with every package that only an extra
(dev, onnx, ray, plot) brings hidden from imports, and with an empty conversion cache (so the
model really is converted, as on a fresh machine).  The dev environment has them all
installed, which is how a missing core dependency (onnx, needed by the OpenVINO conversion)
once went unnoticed: a fresh `pip install .` could not colorize."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"scikit-image": "skimage", "pytest-timeout": "pytest_timeout",
                "ray[data]": "ray", "ray": "ray"}
NOT_IMPORTED = {"ruff", "pytest"}  # tools, never imported by the package


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()


def extras_only() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r).split("[")[0] for r in project["dependencies"]}
    names = set()
    for reqs in project["optional-dependencies"].values():
        for r in reqs:
            n = _name(r)
            if n.split("[")[0] not in core and n not in NOT_IMPORTED:
                names.add(IMPORT_NAMES.get(n, n.split("[")[0].replace("-", "_")))
    return sorted(names)


BLOCKER = """
import sys, importlib.abc
HIDDEN = set({hidden!r})
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ImportError(f"{{name}} is not part of the core install (hidden by the test)")
        return None
sys.meta_path.insert(0, Hide())
import importlib.util
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):  # "is it installed?" answers no, as without the package
    if name.split(".")[0] in HIDDEN:
        return None
    return _find_spec(name, package)
importlib.util.find_spec = find_spec
from streamcolor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _core(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               STREAMCOLOR_CACHE=str(tmp_path / "empty_cache"))
    code = BLOCKER.format(hidden=extras_only())
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=600, stdin=subprocess.DEVNULL)


def test_the_hidden_list_is_what_the_extras_add():
    hidden = extras_only()
    assert {"onnxruntime", "ray", "playwright", "skimage"} <= set(hidden)
    assert "onnx" not in hidden and "openvino" not in hidden and "rasterio" not in hidden


def test_colorize_and_batch_run_on_the_core_install_alone(tmp_path):
    sample = ROOT / "samples" / "bikes_gray.mp4"
    p = _core(["colorize", str(sample), "-o", str(tmp_path / "c.mp4")], tmp_path)
    assert p.returncode == 0, p.stderr
    # converted for OpenVINO (the default on a CPU), not fallen back to torch
    assert "running it on torch" not in p.stderr and " on openvino " in p.stderr, p.stderr
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    import numpy as np
    import rasterio

    with rasterio.open(tiles / "t.tif", "w", driver="GTiff", width=96, height=64, count=1,
                       dtype="uint16") as ds:
        ds.write(np.arange(96 * 64, dtype=np.uint16).reshape(1, 64, 96) * 7)
    p = _core(["batch", str(tiles), "-o", str(tmp_path / "out"), "-q"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out" / "t.tif").exists()
