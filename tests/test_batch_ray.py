"""``--engine ray``: the same outputs as one process, on a real local Ray instance
(``ray.init(num_cpus=2)`` on 127.0.0.1, shut down by the fixture; never ``ray stop``).

Ray is an optional extra: without it this module skips locally and fails under CI=true."""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_batch import _geotiff, _opts, _outputs, _scene

from streamcolor.jobs.batch import run_batch

try:
    import ray
except ImportError:  # pragma: no cover - depends on the install
    if os.environ.get("CI") == "true":
        raise RuntimeError('Ray is missing: CI installs ".[dev,ray]"') from None
    pytest.skip('needs Ray (pip install "streamcolor[ray]")', allow_module_level=True)


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("raytiles")
    for i in range(6):
        _geotiff(root / f"r{i}.tif", _scene(rng, 150, 170, i))
    (root / "bad.tif").write_bytes(b"not a tiff")
    return root


@pytest.mark.timeout(300)
def test_ray_engine_equals_one_process_and_records_bad_files(ray_instance, tiles,
                                                             tiny_weights, tmp_path):
    ref = tmp_path / "ref"
    one = run_batch(str(tiles), ref, _opts(tiny_weights))
    assert (one.done, one.failed) == (6, 1)
    out = tmp_path / "ray"
    res = run_batch(str(tiles), out, _opts(tiny_weights, engine="ray", workers=2))
    assert (res.done, res.failed) == (6, 1)
    assert _outputs(out) == _outputs(ref)
    assert ray.is_initialized(), "a job must not shut down a Ray instance it did not start"
    again = run_batch(str(tiles), out, _opts(tiny_weights, engine="ray", workers=2))
    assert (again.done, again.skipped, again.failed) == (0, 6, 1)  # the bad one retried
