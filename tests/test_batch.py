"""``streamcolor batch``: mirrored outputs, the manifest, resume after a real SIGINT and
SIGKILL equal to an uninterrupted run, bad files recorded while the rest is done, local
worker processes equal to one process, sequences."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from streamcolor import cli
from streamcolor.jobs.batch import BatchOptions, run_batch, sequence_order
from streamcolor.jobs.manifest import FAILED_NAME, MANIFEST_NAME
from streamcolor.jobs.raster import RasterSettings
from streamcolor.jobs.stretch import Stretch
from streamcolor.jobs.worker import ModelOptions

ROOT = Path(__file__).resolve().parents[1]
SAT = ROOT.parent / "shared" / "data" / "satellite"


def _geotiff(path: Path, data: np.ndarray, tags: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype.name, crs=CRS.from_epsg(32633),
                       transform=Affine(10, 0, 500000, 0, -10, 4600000), compress="deflate",
                       nodata=0) as ds:
        ds.write(data)
        if tags:
            ds.update_tags(**tags)
    return path


def _scene(rng, h: int, w: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = 3000 + 2000 * np.sin(xx / (15.0 + seed)) * np.cos(yy / 23.0)
    return (base + rng.normal(0, 80, (h, w))).clip(1, 65535).astype(np.uint16)[None]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A folder of 16-bit GeoTIFFs (some in a subfolder), an 8-bit PNG, a 16-bit PNG."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("tiles")
    for i in range(6):
        _geotiff(root / f"t{i:02d}.tif", _scene(rng, 96, 128, i))
    for i in range(3):
        _geotiff(root / "sub" / f"s{i}.tif", _scene(rng, 70, 90, 10 + i))
    cv2.imwrite(str(root / "sub" / "photo.png"), rng.integers(0, 256, (50, 60), np.uint8))
    cv2.imwrite(str(root / "p16.png"), _scene(rng, 40, 50, 20)[0])
    for f in root.rglob("*"):
        if f.is_file():
            f.chmod(0o444)
    return root


def _opts(tiny_weights, **kw) -> BatchOptions:
    model = ModelOptions(str(tiny_weights), runtime="torch", threads=1)
    return BatchOptions(model=model, **kw)


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.startswith(("streamcolor-", "."))}


def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / MANIFEST_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tree, tiny_weights, tmp_path_factory):
    """An uninterrupted single-process run: the outputs every other run must equal."""
    out = tmp_path_factory.mktemp("ref")
    res = run_batch(str(tree), out, _opts(tiny_weights))
    assert (res.done, res.skipped, res.failed) == (11, 0, 0)
    return _outputs(out)


def test_outputs_mirror_the_input_keep_format_and_depth(tree, reference):
    assert sorted(reference) == sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")
                                       if p.is_file())
    with rasterio.MemoryFile(reference["sub/s1.tif"]) as mf, mf.open() as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint16" and ds.crs == CRS.from_epsg(32633)
    png = cv2.imdecode(np.frombuffer(reference["p16.png"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (40, 50, 3)


def test_rerun_skips_what_is_done_and_redoes_what_changed(tree, tiny_weights, tmp_path,
                                                          reference):
    out = tmp_path / "out"
    first = run_batch(str(tree), out, _opts(tiny_weights))
    assert first.done == 11 and _outputs(out) == reference
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.tif")}
    again = run_batch(str(tree), out, _opts(tiny_weights))
    assert (again.done, again.skipped) == (0, 11)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.tif")} == mtimes
    # a changed stretch is a different job: everything redone
    changed = run_batch(str(tree), out, _opts(tiny_weights,
                                              settings=RasterSettings(percentiles=(2, 98))))
    assert changed.done == 11
    tag = json.loads(rasterio.open(out / "t00.tif").tags()["STREAMCOLOR_STRETCH"])
    assert tag["percentiles"] == [2, 98]
    # an output deleted behind the job's back is redone, the rest skipped
    (out / "sub" / "s0.tif").unlink()
    res = run_batch(str(tree), out, _opts(tiny_weights,
                                          settings=RasterSettings(percentiles=(2, 98))))
    assert (res.done, res.skipped) == (1, 10)
    forced = run_batch(str(tree), out, _opts(tiny_weights, overwrite=True))
    assert forced.done == 11 and _outputs(out) == reference
    rec = _records(out)[-1]
    assert rec["status"] == "done" and len(rec["sha256"]) == 64 and rec["key"]
    assert {"size", "mtime_ns", "output_size", "stretch"} <= set(rec)


def test_a_changed_input_is_redone(tmp_path, tiny_weights):
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    for i in range(3):
        _geotiff(src / f"a{i}.tif", _scene(rng, 64, 64, i))
    out = tmp_path / "out"
    run_batch(str(src), out, _opts(tiny_weights))
    _geotiff(src / "a1.tif", _scene(rng, 64, 64, 7))
    res = run_batch(str(src), out, _opts(tiny_weights))
    assert (res.done, res.skipped) == (1, 2)


def test_bad_files_are_recorded_and_the_rest_done(tmp_path, tiny_weights, capsys,
                                                  restore_logging):
    rng = np.random.default_rng(1)
    src = tmp_path / "in"
    for i in range(3):
        _geotiff(src / f"ok{i}.tif", _scene(rng, 64, 64, i))
    (src / "broken.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 3)
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    rc = cli.main(["batch", str(src), "-o", str(out), "--model", str(tiny_weights),
                   "--runtime", "torch", "--threads", "1", "-q"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 1
    assert err[-1] == (f"streamcolor: error: 2 of 5 files failed (listed in "
                       f"{out / FAILED_NAME}); 3 done, 0 skipped")
    listed = (out / FAILED_NAME).read_text().splitlines()
    assert [ln.split(":")[0] for ln in listed] == ["broken.tif", "empty.png"]
    assert all(len(ln) > len("broken.tif: ") + 5 for ln in listed)
    failed = {r["input"]: r for r in _records(out) if r["status"] == "failed"}
    assert set(failed) == {"broken.tif", "empty.png"} and "error" in failed["broken.tif"]
    assert sorted(p.name for p in out.glob("*.tif")) == ["ok0.tif", "ok1.tif", "ok2.tif"]
    # fixed, the rerun does only the bad ones and the failure list goes away
    (src / "broken.tif").unlink()
    (src / "empty.png").unlink()
    rc = cli.main(["batch", str(src), "-o", str(out), "--model", str(tiny_weights),
                   "--runtime", "torch", "--threads", "1", "-q"])
    assert rc == 0 and not (out / FAILED_NAME).exists()


def test_stale_temporaries_are_removed_and_output_inside_input_is_not_read(tmp_path,
                                                                          tiny_weights):
    rng = np.random.default_rng(2)
    src = tmp_path / "in"
    _geotiff(src / "a.tif", _scene(rng, 64, 64, 0))
    out = src / "colour"  # inside the input folder
    out.mkdir()
    stale = out / ".a.tmp-999.tif"
    stale.write_bytes(b"half")
    res = run_batch(str(src), out, _opts(tiny_weights))
    assert res.total == 1 and not stale.exists()
    assert run_batch(str(src), out, _opts(tiny_weights)).total == 1


def test_missing_input_and_unwritable_output_are_one_line(tmp_path, tiny_weights, capsys):
    rc = cli.main(["batch", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "-q"])
    assert rc == 1
    assert capsys.readouterr().err.strip() == (f"streamcolor: error: {tmp_path / 'nope'}: "
                                               "no such file or folder")
    rc = cli.main(["batch", str(tmp_path), "-o", str(tmp_path / "o"), "--stretch", "9,1"])
    assert rc == 2 and "--stretch 9,1" in capsys.readouterr().err


# ---------------------------------------------------------------- interrupted, resumed
@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """Enough work (30 files of 384x384, 49 tiny-model tiles each) to interrupt mid-job."""
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("big")
    for i in range(30):
        _geotiff(root / f"b{i:02d}.tif", _scene(rng, 384, 384, i % 7))
    return root


@pytest.fixture(scope="module")
def big_reference(big_tree, tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("bigref")
    assert run_batch(str(big_tree), out, _opts(tiny_weights)).done == 30
    return _outputs(out)


def _batch_proc(src: Path, out: Path, tiny_weights: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "streamcolor", "batch", str(src), "-o",
                             str(out), "--model", str(tiny_weights), "--runtime", "torch",
                             "--threads", "1", "-q", *extra], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_records(out: Path, n: int, proc: subprocess.Popen, seconds: float = 120) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        m = out / MANIFEST_NAME
        if m.exists():
            done = m.read_text().count('"status": "done"')
            if done >= n:
                return done
        time.sleep(0.02)
    raise AssertionError(f"no {n} records (exit {proc.poll()}: {proc.stderr.read()})")


@pytest.mark.parametrize("sig,workers", [(signal.SIGKILL, "1"), (signal.SIGINT, "1"),
                                         (signal.SIGKILL, "2")])
def test_resume_after_a_real_signal_equals_an_uninterrupted_run(sig, workers, big_tree,
                                                                big_reference, tiny_weights,
                                                                tmp_path):
    out = tmp_path / "out"
    proc = _batch_proc(big_tree, out, tiny_weights, "--workers", workers)
    done = _wait_for_records(out, 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert done < 30, "the job finished before it could be interrupted"
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert err.strip().startswith("streamcolor: interrupted; ")
        assert err.strip().endswith("files done (0 failed); the same command continues")
        assert not [p for p in out.rglob(".*tmp-*")], "a stopped job leaves no temporaries"
    else:
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.5)  # pool workers die with their parent (PDEATHSIG)
    for name, data in _outputs(out).items():  # whatever has a final name is complete
        assert data == big_reference[name], name
    resumed = _batch_proc(big_tree, out, tiny_weights, "--workers", workers)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _outputs(out) == big_reference
    assert not [p for p in out.rglob(".*tmp-*")]
    skipped = sum(1 for r in _records(out) if r["status"] == "done")
    assert skipped >= 30


def test_two_local_workers_equal_one_process(big_tree, big_reference, tiny_weights, tmp_path):
    out = tmp_path / "w2"
    res = run_batch(str(big_tree), out, _opts(tiny_weights, workers=2))
    assert res.done == 30 and _outputs(out) == big_reference


# ---------------------------------------------------------------------------- sequences
def test_sequence_order_follows_acquisition_dates(tmp_path):
    rng = np.random.default_rng(4)
    dates = ["2021-03-01", "2020-12-01", "2021-01-15"]
    for name, d in zip(["a.tif", "b.tif", "c.tif"], dates, strict=True):
        _geotiff(tmp_path / name, _scene(rng, 32, 32, 0), {"ACQUISITION_DATE": d})
    order = [p.name for p in sequence_order(sorted(tmp_path.glob("*.tif")))]
    assert order == ["b.tif", "c.tif", "a.tif"]
    _geotiff(tmp_path / "d.tif", _scene(rng, 32, 32, 0))  # one without a date: by name
    assert [p.name for p in sequence_order(sorted(tmp_path.glob("*.tif")))] == \
        ["a.tif", "b.tif", "c.tif", "d.tif"]


def _chroma_steps(out: Path) -> float:
    """Mean frame-to-frame change of a colourised series' chroma (B-Y, R-Y in units of the
    stretch, i.e. as the model's chroma)."""
    prev, steps = None, []
    for f in sorted(out.glob("*.tif")):
        with rasterio.open(f) as ds:
            a = ds.read([1, 2, 3]).astype(np.float64)
            scale = Stretch.from_tag(ds.tags()["STREAMCOLOR_STRETCH"]).luma_scale
        y = 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]
        c = np.stack([a[2] - y, a[0] - y]) / scale
        if prev is not None:
            steps.append(np.abs(c - prev).mean())
        prev = c
    return float(np.mean(steps))


def test_sequence_shares_one_stretch_and_smooths_over_time(tiny_weights, tmp_path):
    if not SAT.is_dir():
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"{SAT} is missing")
        pytest.skip("needs ../shared/data/satellite")
    src = tmp_path / "cbers"
    src.mkdir()
    for f in sorted((SAT / "sequences" / "cbers4_awfi_sits_int16").glob("*.tif"))[:10]:
        (src / f.name).write_bytes(f.read_bytes())
    seq = tmp_path / "seq"
    res = run_batch(str(src), seq, _opts(tiny_weights, sequence=True, settings=RasterSettings(
        temporal_strength=0.9)))
    assert res.done == 10
    stretches = set()
    for f in seq.glob("*.tif"):
        with rasterio.open(f) as ds:
            stretches.add(ds.tags()["STREAMCOLOR_STRETCH"])
    assert len(stretches) == 1 and Stretch.from_tag(stretches.pop()).scope == "sequence"
    unsmoothed = tmp_path / "unsmoothed"  # the same shared stretch, no temporal smoothing
    run_batch(str(src), unsmoothed, _opts(tiny_weights, sequence=True,
                                          settings=RasterSettings(temporal_strength=0.0)))
    # real data: hazy and cloudy frames reset the smoother (scene cuts), the rest is smoothed
    assert _chroma_steps(seq) < 0.95 * _chroma_steps(unsmoothed)


def test_sequence_smoothing_removes_frame_to_frame_noise(tiny_weights, tmp_path):
    """One synthetic place seen 8 times with sensor noise: the colour stays put."""
    rng = np.random.default_rng(8)
    scene = _scene(rng, 80, 100, 3).astype(np.float64)
    src = tmp_path / "place"
    for i in range(8):
        noisy = (scene + rng.normal(0, 150, scene.shape)).clip(1, 65535).astype(np.uint16)
        _geotiff(src / f"f{i}.tif", noisy, {"ACQUISITION_DATE": f"2020-01-{i + 1:02d}"})
    steps = {}
    for strength in (0.0, 0.9):
        out = tmp_path / f"s{strength}"
        run_batch(str(src), out, _opts(tiny_weights, sequence=True,
                                       settings=RasterSettings(temporal_strength=strength)))
        steps[strength] = _chroma_steps(out)
    assert steps[0.9] < 0.5 * steps[0.0]


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids = (task / "children").read_text().split()
        out += [int(k) for k in kids]
    return out


def test_a_dead_worker_costs_its_files_and_a_rerun_finishes(big_tree, big_reference,
                                                            tiny_weights, tmp_path):
    out = tmp_path / "out"
    proc = _batch_proc(big_tree, out, tiny_weights, "--workers", "2")
    _wait_for_records(out, 2, proc)
    workers = []
    for pid in _children(proc.pid):  # the pool's processes (and multiprocessing's helpers)
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            workers.append(pid)
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "files failed" in err.strip().splitlines()[-1]
    failed = [r for r in _records(out) if r["status"] == "failed"]
    assert failed and all("worker process died" in r["error"] for r in failed)
    assert len(failed) <= 4  # at most the tasks in flight (two per worker)
    done = {r["input"] for r in _records(out) if r["status"] == "done"}
    assert len(done) + len(failed) == 30  # a new pool did the rest
    resumed = _batch_proc(big_tree, out, tiny_weights, "--workers", "2")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _outputs(out) == big_reference


def test_twelve_bit_and_sixteen_bit_versions_of_a_scene_get_the_same_colour(tmp_path,
                                                                           tiny_weights):
    """The stretch makes the model see the same picture whatever the bit depth: the 16-bit
    version's output is the 12-bit version's x 16 (to rounding)."""
    rng = np.random.default_rng(6)
    twelve = (_scene(rng, 120, 150, 2).astype(np.float64) / 16).astype(np.uint16)
    src = tmp_path / "in"
    _geotiff(src / "a12.tif", twelve)
    _geotiff(src / "a16.tif", twelve * 16)
    out = tmp_path / "out"
    run_batch(str(src), out, _opts(tiny_weights))
    a12 = rasterio.open(out / "a12.tif").read().astype(np.float64)
    a16 = rasterio.open(out / "a16.tif").read().astype(np.float64)
    assert twelve.max() < 4096
    assert np.abs(a16 - 16 * a12).max() <= 16 * 1.5
    assert np.abs(a12[0] - a12[2]).mean() > 1  # and there is colour to compare


def test_saturation_is_part_of_the_job_and_scales_the_colour(tmp_path, tiny_weights):
    rng = np.random.default_rng(9)
    src = tmp_path / "in"
    _geotiff(src / "a.tif", _scene(rng, 64, 80, 1))
    out = tmp_path / "out"

    def chroma() -> float:
        a = rasterio.open(out / "a.tif").read().astype(np.float64)
        return float(np.abs(a[0] - a[2]).mean())

    run_batch(str(src), out, _opts(tiny_weights))
    plain = chroma()
    opts = _opts(tiny_weights)
    opts.model = ModelOptions(str(tiny_weights), runtime="torch", threads=1, saturation=2.0)
    res = run_batch(str(src), out, opts)
    assert res.done == 1  # a different saturation is a different job: redone
    assert 1.6 * plain < chroma() < 2.4 * plain
