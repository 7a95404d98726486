"""``streamcolor batch``: options → :func:`streamcolor.jobs.batch.run_batch`, a progress bar
over files and a one-line summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamcolor.engine.stop import StopToken
from streamcolor.jobs.batch import BatchOptions, BatchResult, run_batch
from streamcolor.jobs.raster import RasterSettings
from streamcolor.jobs.stretch import parse_stretch
from streamcolor.jobs.worker import ModelOptions


def options_from(a: argparse.Namespace) -> BatchOptions:
    settings = RasterSettings(
        percentiles=parse_stretch(a.stretch) if a.stretch else (1.0, 99.0),
        stretch_8bit=a.stretch is not None, overlap=a.overlap,
        temporal_strength=a.temporal_strength if a.sequence else 0.0)
    model = ModelOptions(a.model, a.render_factor, a.device, a.runtime, a.precision, a.threads,
                         a.saturation, a.temperature, a.class_weight)
    return BatchOptions(model=model, settings=settings, sequence=a.sequence,
                        overwrite=a.overwrite, engine=a.engine, workers=a.workers,
                        ray_address=a.ray_address)


def summary(r: BatchResult, out: Path) -> str:
    rate = f"{r.files_per_second:.2f} files/s" if r.done else "nothing to do"
    return (f"batch: {r.done} done, {r.skipped} skipped, {r.failed} failed of {r.total} files "
            f"in {r.seconds:.1f} s ({rate}) -> {out}")


def run_batch_command(a: argparse.Namespace, stop: StopToken) -> tuple[int, str | None]:
    from rich.console import Console

    from streamcolor.cli.app import STOP_WORDS
    from streamcolor.cli.progress import make_progress
    from streamcolor.cli.signals import exit_code

    try:
        options = options_from(a)
    except ValueError as e:
        return 2, f"streamcolor batch: error: {e}"
    console = Console(stderr=True)
    progress = None if a.quiet else make_progress(console, unit="files/s")
    task = None

    def advance(done: int, total: int) -> None:
        nonlocal task
        if progress is None:
            return
        if task is None:
            task = progress.add_task("files", total=total, completed=done)
            progress.start()
        else:
            progress.update(task, completed=done)

    tiles_task = None

    def tiles(name: str, done: int, total: int) -> None:
        nonlocal tiles_task
        if progress is None:
            return
        if tiles_task is None:
            tiles_task = progress.add_task(name, total=total, unit="tiles/s")
        progress.update(tiles_task, description=name, completed=done, total=total)

    try:
        result = run_batch(a.input, a.output, options, stop=stop, progress=advance,
                           tile_progress=tiles)
    finally:
        if progress is not None and task is not None:
            progress.stop()
    if result.stopped_by is not None:
        word = STOP_WORDS.get(result.stopped_by, "stopped")
        done = result.done + result.skipped
        return exit_code(result.stopped_by), (
            f"streamcolor: {word}; {done} of {result.total} files done ({result.failed} "
            "failed); the same command continues")
    if result.failed:
        return 1, (f"streamcolor: error: {result.failed} of {result.total} files failed "
                   f"(listed in {result.failed_list}); {result.done} done, {result.skipped} "
                   "skipped")
    if not a.quiet:
        console.print(summary(result, a.output), highlight=False, soft_wrap=True)
    return 0, None
