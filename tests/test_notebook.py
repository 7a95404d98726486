"""examples/colorize_photos.ipynb runs top to bottom in a real Jupyter kernel and colours."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "colorize_photos.ipynb"
KERNEL = "python3"
CELL_TIMEOUT = 120  # seconds per cell; the whole notebook takes a few seconds here


def _jupyter():
    """nbformat, nbclient and the kernel spec, or a failure saying what to install (a missing
    kernel must not turn into a skip that hides a broken notebook)."""
    try:
        import nbclient
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError as e:
        pytest.fail(f"{e}: the notebook test needs nbclient, nbformat and ipykernel "
                    "(pip install -e '.[dev]')")
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        pytest.fail(f"no Jupyter kernel {KERNEL!r}: pip install ipykernel (in the '.[dev]' extra)")
    return nbformat, nbclient


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return output.get("data", {}).get("text/plain", "")


def test_notebook_is_stored_clean():
    nbformat, _ = _jupyter()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is None and cell.outputs == [], cell.source[:60]
            assert not cell.source.lstrip().startswith(("!", "%")), "no shell or magics"


def test_notebook_runs(tmp_path, monkeypatch):
    nbformat, nbclient = _jupyter()
    copy = tmp_path / NOTEBOOK.name
    shutil.copyfile(NOTEBOOK, copy)
    nb = nbformat.read(copy, as_version=4)

    # The kernel is a subprocess: it inherits the session's converted-model cache (conftest)
    # and one torch thread (2 busy cores make spinning OpenMP threads crawl); Jupyter's and
    # IPython's own files go to the test's folder, not the user's.
    assert os.environ.get("STREAMCOLOR_CACHE"), "conftest sets the session's model cache"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter_runtime"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "IPYTHONDIR": str(tmp_path / "ipython"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # figures as image/png
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # no debugger note on stderr
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT, allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}})  # run in examples/, like a user
    client.execute(env=env)  # raises CellExecutionError naming the cell that failed
    nbformat.write(nb, copy)  # the executed copy, for a look when this fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{cell.source[:60]!r} raised {errors[0].ename}"
        stderr = "".join(o.text for o in cell.outputs if o.get("name") == "stderr")
        assert "Traceback" not in stderr and "WARNING" not in stderr.upper(), stderr

    def pngs(cell) -> int:
        return sum("image/png" in o.get("data", {}) for o in cell.outputs)

    def cell_with(text: str):
        return next(c for c in code if text in c.source)

    listed = "".join(_text(o) for o in cell_with("load_gray(p)").outputs)
    n_photos = len(listed.strip().splitlines())  # one line per photo loaded
    assert n_photos >= 1, listed
    assert pngs(cell_with("def show_row")) == n_photos  # before/after, a figure per photo
    assert pngs(cell_with("for rf in")) == 1  # the render_factor figure
    assert pngs(cell_with("for t in (")) == 1  # the temperatures (the default is a hybrid)

    # The last cell prints a JSON line of measures taken on the notebook's own images.
    last = "".join(_text(o) for o in code[-1].outputs).strip().splitlines()
    summary = json.loads(last[-1])
    chroma = summary["mean_chroma"]  # the default model on the sample, by saturation
    # The 1915 street is a low-chroma scene (about 1.3 here), but a gray output gives 0.
    assert chroma["0"] < 0.05, chroma
    assert chroma["1"] > 0.6, chroma
    assert chroma["1.5"] > 1.3 * chroma["1"], chroma
    by_photo = summary["mean_chroma_by_photo"]
    assert len(by_photo) == n_photos
    assert by_photo["detroit_1915"] == pytest.approx(chroma["1"], rel=1e-3)
    if n_photos > 1:  # the data set's photos are there: portraits take far more colour
        assert max(by_photo.values()) > 5.0, by_photo
    assert summary["luma_mean_abs_error"] < 1.0, summary  # the input's own luminance
