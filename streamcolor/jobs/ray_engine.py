"""``--engine ray``: the same tasks and worker on Ray Data (``pip install "streamcolor[ray]"``).

A list of tasks (paths, never ``read_images``, which silently turns 16-bit TIFF into 8-bit)
→ ``map_batches`` with a callable class holding the model (loaded once per actor, its threads
set per actor) → manifest records back to the driver, which alone writes the manifest.

Traps handled: actors asking for whole CPUs would take every CPU of a small machine and
starve the tasks that feed them, so each actor asks for a fraction; a local instance is
given the node address 127.0.0.1 (Ray 2.60's GCS and raylet still listen on all interfaces,
checked with ``ss``; Ray's token authentication, on by default there, guards them); the
instance this job started is shut down when it ends (never ``ray stop``, which kills every
Ray process on the machine by name).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from streamcolor.engine.stop import StopToken
from streamcolor.errors import StreamcolorError
from streamcolor.jobs.worker import Task, Worker, WorkerConfig

log = logging.getLogger(__name__)

ACTOR_CPU_SHARE = 0.5  # of the CPUs each actor's threads use, what it reserves from Ray


class RayNotInstalledError(StreamcolorError, ImportError):
    pass


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayNotInstalledError('--engine ray needs Ray: pip install "streamcolor[ray]"') \
            from None
    return ray


class RayWorker:
    """One actor: one model, one task per batch row."""

    def __init__(self, config: WorkerConfig, threads: int) -> None:
        from streamcolor.model.runtime import configure_threads

        configure_threads(threads)
        self.worker = Worker(config)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = []
        for text in batch["task"]:
            task = Task.from_dict(json.loads(str(text)))
            out.append(json.dumps(self.worker.run(task)))
        return {"records": np.array(out, dtype=object)}


def start_ray(address: str | None, cpus: int) -> bool:
    """Join ``address`` or start a local instance on 127.0.0.1; True when this call started
    (and so must shut down) Ray."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if not log.isEnabledFor(logging.DEBUG):  # Ray Data's INFO lines would hide the progress
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(num_cpus=cpus, _node_ip_address="127.0.0.1", **common)
    return True


def run_on_ray(tasks: list[Task], config: WorkerConfig, workers: int, address: str | None,
               stop: StopToken) -> Iterator[list[dict[str, Any]]]:
    from streamcolor.jobs.batch import threads_per_worker
    from streamcolor.model.runtime.threads import available_cpus

    ray = _import_ray()
    threads = threads_per_worker(workers, config.model.threads)
    config = replace(config, model=replace(config.model, threads=threads))
    started = start_ray(address, available_cpus())
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items([{"task": json.dumps(t.to_dict())} for t in tasks],
                                 override_num_blocks=max(1, min(len(tasks), 200)))
        actors = max(1, min(workers, len(tasks)))
        # a few tasks per call: Ray's per-call overhead is paid once per batch, while every
        # actor still gets several batches (balance, and records arrive as batches finish)
        per_call = max(1, min(16, len(tasks) // (4 * actors)))
        ds = ds.map_batches(RayWorker, fn_constructor_args=(config, threads),
                            batch_size=per_call,
                            compute=ray.data.ActorPoolStrategy(size=actors),
                            num_cpus=ACTOR_CPU_SHARE * threads, batch_format="numpy")
        for row in ds.iter_rows():
            yield json.loads(row["records"])
            if stop.is_set():
                return
    finally:
        if started:
            ray.shutdown()
