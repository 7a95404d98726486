"""``streamcolor batch``: a resumable job over a folder or glob of rasters.

plan (inputs, sequences, what the manifest says is done) → tasks → an engine (in process,
``workers`` processes, or Ray Data) running :class:`~streamcolor.jobs.worker.Worker` → one
writer appending manifest records as results come back.

The same command run again continues: done-and-unchanged inputs are skipped (size, mtime and
the job key match, the output is there), changed ones are redone, failed ones retried, and
stale temporary files of a killed run are removed.  ``overwrite`` redoes everything.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamcolor.engine.stop import StopRequested, StopToken
from streamcolor.errors import InvalidInputError, OutputError
from streamcolor.io.atomic import TEMP_MARK, write_bytes_atomic
from streamcolor.io.rasters import RASTER_SUFFIXES
from streamcolor.jobs.manifest import FAILED_NAME, Fingerprint, JobLock, Manifest, job_key
from streamcolor.jobs.raster import RasterSettings
from streamcolor.jobs.worker import Item, ModelOptions, Task, Worker, WorkerConfig

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


@dataclass
class BatchOptions:
    model: ModelOptions = field(default_factory=ModelOptions)
    settings: RasterSettings = field(default_factory=RasterSettings)
    sequence: bool = False
    overwrite: bool = False
    engine: str = "local"
    workers: int = 1
    ray_address: str | None = None


@dataclass
class BatchResult:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    stopped_by: str | None = None
    failed_list: Path | None = None
    manifest: Path | None = None
    lost: int = 0  # in flight when a worker died or the job stopped (redone by a rerun)

    @property
    def files_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------- discovery
def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def _is_ours(path: Path) -> bool:
    return path.name.startswith(".")  # hidden: our temporaries, lock, dotfiles


def discover(input_: str, out_dir: Path) -> tuple[Path, list[Path]]:
    """(base folder, raster files under it, sorted) for a folder (recursive), a glob or one
    file; the output folder is never read as input."""
    p = Path(input_)
    out_abs = out_dir.resolve()

    def keep(f: Path) -> bool:
        if not f.is_file() or f.suffix.lower() not in RASTER_SUFFIXES or _is_ours(f):
            return False
        r = f.resolve()
        return out_abs not in r.parents

    if p.is_dir():
        base = p
        files = [f for f in p.rglob("*") if keep(f)
                 and not any(part.startswith(".") for part in f.relative_to(p).parts[:-1])]
    elif p.is_file():
        base, files = p.parent, [p] if keep(p) else []
        if not files:
            raise InvalidInputError(f"{p}: not a raster type batch reads "
                                    f"({', '.join(RASTER_SUFFIXES)})")
    elif glob.has_magic(input_):
        base = _glob_base(input_)
        files = [Path(f) for f in glob.glob(input_, recursive=True) if keep(Path(f))]
    else:
        raise InvalidInputError(f"{input_}: no such file or folder")
    files = sorted(files, key=lambda f: str(f.relative_to(base)))
    if not files:
        raise InvalidInputError(f"{input_}: no raster files ({', '.join(RASTER_SUFFIXES)})")
    return base, files


def sequence_order(files: list[Path]) -> list[Path]:
    """Frames of one place in time order: by acquisition-date tag where every file has one,
    else by name."""
    from streamcolor.io.rasters import open_raster

    dates: list[str | None] = []
    for f in files:
        try:
            with open_raster(f) as r:
                dates.append(r.info.acquired)
        except Exception:  # an unreadable frame is recorded as failed by its worker
            dates.append(None)
    if all(dates):
        return [f for _, f in sorted(zip(dates, files, strict=True), key=lambda t: (t[0], t[1]))]
    return sorted(files)


def make_tasks(base: Path, files: list[Path], out_dir: Path, sequence: bool) -> list[Task]:
    def item(f: Path) -> Item:
        rel = f.relative_to(base).as_posix()
        return Item(rel, str(f), str(out_dir / rel))

    if not sequence:
        return [Task([item(f)]) for f in files]
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    return [Task([item(f) for f in sequence_order(group)], sequence=True)
            for _, group in sorted(by_folder.items())]


# ----------------------------------------------------------------------------- the job
def model_identity(m: ModelOptions) -> dict[str, Any]:
    """The model's name, sha256, render factor and runtime, resolved without loading it."""
    from streamcolor.model.runtime.loader import resolve_runtime
    from streamcolor.model.weights import resolve_model

    record = resolve_model(m.model)
    sha = record.sha256 or (record.verify() if record.format == "safetensors" else None)
    rf = m.render_factor or record.contract.render_factor
    return {"name": record.name, "sha256": sha, "render_factor": rf,
            "runtime": resolve_runtime(m.runtime, m.device, record.format),
            "precision": m.precision, "device": m.device,
            "saturation": m.saturation if m.saturation is not None
            else float(record.meta.get("saturation", 1.0)),
            **_decoding(record.contract, m)}


def _decoding(contract: Any, m: ModelOptions) -> dict[str, float]:
    """A hybrid model's decoding as the job key sees it (nothing for other models, so their
    keys stay as they were)."""
    if not contract.hybrid:
        return {}
    return {"temperature": m.temperature if m.temperature is not None
            else contract.temperature,
            "class_weight": m.class_weight if m.class_weight is not None
            else contract.class_weight}


def remove_stale_temporaries(out_dir: Path) -> int:
    n = 0
    for f in out_dir.rglob(f".*{TEMP_MARK}*"):
        if f.is_file():
            f.unlink(missing_ok=True)
            n += 1
    return n


Progress = Callable[[int, int], None]  # (files finished, files total)


def run_batch(input_: str, out_dir: str | Path, options: BatchOptions,
              stop: StopToken | None = None, progress: Progress | None = None,
              tile_progress: Callable[[str, int, int], None] | None = None) -> BatchResult:
    """Run (or resume) the job; per-file errors are recorded, not raised.

    ``progress(files finished, files)`` follows the job; ``tile_progress(name, tiles done,
    tiles)`` the tiles of a large raster (one process only)."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    if options.engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {options.engine!r}")
    if options.workers < 1:
        raise ValueError("workers must be >= 1")
    base, files = discover(input_, out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the output folder ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: the output folder is not writable")
    ident = model_identity(options.model)
    key = job_key({"model": ident, "settings": options.settings.key(),
                   "sequence": options.sequence})
    result = BatchResult(total=len(files))
    stop = stop or StopToken()
    with JobLock(out), Manifest(out) as manifest:
        result.manifest = manifest.path
        stale = remove_stale_temporaries(out)
        if stale:
            log.info("removed %d temporary file(s) of an interrupted run", stale)
        tasks = []
        for task in make_tasks(base, files, out, options.sequence):
            todo = options.overwrite or not all(
                manifest.is_done(i.rel, Fingerprint.of(Path(i.src)), key, Path(i.dst))
                for i in task.items)
            if todo:
                tasks.append(task)
            else:
                result.skipped += len(task.items)
        finished = result.skipped
        if progress:
            progress(finished, result.total)
        config = WorkerConfig(options.model, options.settings, key, ident)

        def record(recs: list[dict[str, Any]]) -> None:
            nonlocal finished
            for rec in recs:
                manifest.append(rec)
                if rec["status"] == "done":
                    result.done += 1
                else:
                    result.failed += 1
                    log.warning("%s: %s", rec["input"], rec.get("error"))
            finished += len(recs)
            if progress:
                progress(finished, result.total)

        try:
            if tasks:
                _run_engine(tasks, config, options, stop, record, tile_progress)
        finally:
            remove_stale_temporaries(out)  # what a stopped or dead worker left
            result.failed_list = _write_failed_list(out, manifest, files, base)
    result.seconds = time.perf_counter() - t0
    result.lost = result.total - result.done - result.skipped - result.failed
    if stop.is_set():
        result.stopped_by = stop.reason
    return result


def _write_failed_list(out: Path, manifest: Manifest, files: list[Path], base: Path,
                       ) -> Path | None:
    path = out / FAILED_NAME
    rels = {f.relative_to(base).as_posix() for f in files}
    lines = [f"{rel}: {rec.get('error')}" for rel, rec in sorted(manifest.records.items())
             if rel in rels and rec.get("status") == "failed"]
    if not lines:
        path.unlink(missing_ok=True)
        return None
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    return path


def _run_engine(tasks: list[Task], config: WorkerConfig, options: BatchOptions,
                stop: StopToken, record: Callable[[list[dict[str, Any]]], None],
                tile_progress: Callable[[str, int, int], None] | None) -> None:
    if options.engine == "ray":
        from streamcolor.jobs.ray_engine import run_on_ray

        for recs in run_on_ray(tasks, config, options.workers, options.ray_address, stop):
            record(recs)
        return
    if options.workers == 1:
        worker = Worker(config)
        worker.on_tiles = tile_progress
        worker.colorizer  # noqa: B018 (a model that cannot load fails the job, not each file)
        for task in tasks:
            if stop.is_set():
                return
            try:
                record(worker.run(task, stop))
            except StopRequested:
                return
        return
    for recs in _run_pool(tasks, config, options.workers, stop):
        record(recs)


def threads_per_worker(workers: int, threads: int | None) -> int:
    from streamcolor.model.runtime.threads import available_cpus

    return threads or max(1, available_cpus() // workers)


def _run_pool(tasks: list[Task], config: WorkerConfig, workers: int, stop: StopToken,
              ) -> Iterator[list[dict[str, Any]]]:
    """``workers`` processes (spawned: no forked torch/OpenVINO state), at most two tasks in
    flight each.  A dead worker (killed, out of memory) breaks the pool: the tasks in flight
    are recorded failed (a rerun retries them) and a new pool takes the rest."""
    import multiprocessing as mp
    from dataclasses import replace

    threads = threads_per_worker(workers, config.model.threads)
    config = replace(config, model=replace(config.model, threads=threads))
    pending = list(reversed(tasks))
    while pending and not stop.is_set():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init, initargs=(config, threads))
        inflight: dict[Future, Task] = {}
        broken = False
        try:
            while (pending or inflight) and not stop.is_set() and not broken:
                while pending and len(inflight) < 2 * workers:
                    t = pending.pop()
                    inflight[pool.submit(_run_one, t.to_dict())] = t
                done, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = inflight.pop(fut)
                    try:
                        recs = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        recs = [_died(i, config.key) for i in task.items]
                    yield recs
            if broken:
                log.warning("a worker process died; %d task(s) in flight recorded as failed",
                            len(inflight) + 1)
                for fut, task in inflight.items():
                    try:
                        yield fut.result(timeout=0)
                    except Exception:
                        yield [_died(i, config.key) for i in task.items]
                inflight.clear()
        finally:
            _shutdown(pool, kill=stop.is_set() or broken)


def _init(config: WorkerConfig, threads: int) -> None:
    from streamcolor.jobs.worker import init_process

    init_process(config, threads)


def _run_one(task: dict[str, Any]) -> list[dict[str, Any]]:
    from streamcolor.jobs.worker import run_in_process

    return run_in_process(task)


def _died(item: Item, key: str) -> dict[str, Any]:
    return {"input": item.rel, "status": "failed", "key": key,
            "error": "its worker process died (killed, or out of memory)"}


def _shutdown(pool: ProcessPoolExecutor, kill: bool) -> None:
    if kill:
        procs = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=10)
    else:
        pool.shutdown(wait=True)

