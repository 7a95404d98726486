"""The one training loop every stage shares: steps, logging, resumable checkpoints, snapshots.

A stage supplies named modules and optimisers (saved and restored together) and a ``step``
function that trains one step and returns the numbers to log.  Killing a run and rerunning
the same command continues from ``RUN_DIR/checkpoint.pt``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from streamcolor.training.device import rng_state, set_rng_state
from streamcolor.training.run import RunDir

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    step: int = 0
    images: int = 0  # training images the stage has consumed so far
    extra: dict[str, Any] = field(default_factory=dict)  # stage state (e.g. GAN mode)


def run_loop(run: RunDir, modules: Mapping[str, torch.nn.Module],
             optimizers: Mapping[str, torch.optim.Optimizer],
             step: Callable[[LoopState], dict[str, float]], total_steps: int, *,
             log_every: int = 25, checkpoint_every: int = 200,
             snapshot: Callable[[LoopState], str | None] | None = None,
             snapshot_modules: tuple[str, ...] = (), progress: bool | None = None,
             label: str = "train") -> LoopState:
    """Run ``step`` until ``total_steps``; ``snapshot(state)`` may name a snapshot file to keep
    after a step (the GAN phase keeps many, to find the inflection point), holding only
    ``snapshot_modules`` (default: all) and no optimiser state.  A rich progress bar with the
    latest losses is shown when ``progress`` is True, or (None) when stderr is a terminal."""
    state = LoopState()
    saved = run.load_state()
    # rows a killed run logged after its last checkpoint are redone: drop them, so log.csv
    # does not read 1, 2, 3, 4, 5, 4, 5, ...
    dropped = run.truncate_log(int(saved["step"]) if saved is not None else 0)
    if dropped:
        log.info("%s: dropped %d log rows after the last checkpoint", run.path, dropped)
    if saved is not None:
        for name, m in modules.items():
            m.load_state_dict(saved["modules"][name])
        for name, o in optimizers.items():
            o.load_state_dict(saved["optimizers"][name])
        state = LoopState(int(saved["step"]), int(saved["images"]), dict(saved["extra"]))
        if "rng" in saved:  # dropout etc. continue exactly as without the interruption
            set_rng_state(saved["rng"])
        log.info("resumed %s at step %d", run.path, state.step)

    def save(snapshot_name: str | None = None) -> None:
        keep = snapshot_modules or tuple(modules)
        run.save_state({"modules": {n: m.state_dict() for n, m in modules.items()},
                        "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                        "step": state.step, "images": state.images, "extra": state.extra,
                        "rng": rng_state()},
                       snapshot=snapshot_name,
                       snapshot_state={"modules": {n: modules[n].state_dict() for n in keep},
                                       "step": state.step, "images": state.images,
                                       "extra": state.extra})

    bar = None
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task(label, total=total_steps, completed=state.step)
        bar.start()
    t0 = time.perf_counter()
    start_images = state.images
    try:
        while state.step < total_steps:
            row = step(state)
            state.step += 1
            if bar is not None:
                bar.update(task, completed=state.step,
                           description=f"{label} " + " ".join(f"{k} {v:.3f}"
                                                              for k, v in row.items()))
            if state.step % log_every == 0 or state.step == total_steps:
                rate = (state.images - start_images) / max(time.perf_counter() - t0, 1e-9)
                out = {"step": state.step, "images": state.images,
                       **{k: round(float(v), 5) for k, v in row.items()},
                       "img_per_s": round(rate, 2)}
                run.log(out)
                log.info("%s", out)
            name = snapshot(state) if snapshot else None
            if name or state.step % checkpoint_every == 0 or state.step == total_steps:
                save(name)
    finally:
        if bar is not None:
            bar.stop()
    return state
