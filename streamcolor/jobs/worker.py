"""The unit of batch work and the worker that does it, the same in every engine (in process,
``--workers N`` processes, Ray actors): a task is one file, or one sequence of files in
order; the worker holds one model and returns a manifest record per file."""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streamcolor.engine.stop import StopRequested, StopToken
from streamcolor.errors import StreamcolorError, is_allocation_failure
from streamcolor.jobs.manifest import Fingerprint
from streamcolor.jobs.raster import RasterSettings, TileSmoothers, colorize_raster, compute_stretch
from streamcolor.model.weights import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelOptions:
    model: str | None = None
    render_factor: int | None = None
    device: str = "auto"
    runtime: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    saturation: float | None = None
    temperature: float | None = None  # hybrid head decoding (None: the model's)
    class_weight: float | None = None


@dataclass
class Item:
    rel: str  # path relative to the input's base (and the output folder)
    src: str
    dst: str


@dataclass
class Task:
    items: list[Item]
    sequence: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"items": [asdict(i) for i in self.items], "sequence": self.sequence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls([Item(**i) for i in d["items"]], d["sequence"])


@dataclass
class WorkerConfig:
    model: ModelOptions
    settings: RasterSettings
    key: str
    model_info: dict[str, Any] = field(default_factory=dict)


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    msg = text[0] if text else ""
    if isinstance(e, StreamcolorError):
        return msg[:500]
    return f"{type(e).__name__}: {msg}"[:500]


class Worker:
    """Holds the model (loaded on first use) and runs tasks."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._colorizer: Any = None
        self.on_tiles: Any = None  # (file name, tiles done, tiles) within a large raster

    @property
    def colorizer(self) -> Any:
        if self._colorizer is None:
            from streamcolor.model.colorizer import Colorizer
            from streamcolor.model.runtime import configure_threads
            from streamcolor.model.runtime.loader import resolve_runtime
            from streamcolor.model.weights import resolve_model

            m = self.config.model
            kind = resolve_runtime(m.runtime, m.device, resolve_model(m.model).format)
            if kind == "torch":  # torch's threads are process-wide
                configure_threads(m.threads)
            self._colorizer = Colorizer(m.model, render_factor=m.render_factor, device=m.device,
                                        runtime=m.runtime, precision=m.precision,
                                        threads=None if kind == "torch" else m.threads,
                                        saturation=m.saturation,
                                        temperature=m.temperature,
                                        class_weight=m.class_weight)
        return self._colorizer

    def run(self, task: Task, stop: StopToken | None = None) -> list[dict[str, Any]]:
        settings = self.config.settings
        stretch = None
        smoothers = None
        records: list[dict[str, Any]] = []
        if task.sequence:
            paths = [Path(i.src) for i in task.items]
            try:
                stretch = compute_stretch(paths, settings, "sequence")
            except StopRequested:
                raise
            except Exception as e:  # the whole sequence fails with the one reason
                log.debug("%s", traceback.format_exc())
                return [self._failed(i, e) for i in task.items]
            if settings.temporal_strength > 0:
                smoothers = TileSmoothers(settings.temporal_strength)
        for item in task.items:
            records.append(self._one(item, stretch, smoothers, stop))
        return records

    def _one(self, item: Item, stretch: Any, smoothers: Any, stop: StopToken | None,
             ) -> dict[str, Any]:
        src, dst = Path(item.src), Path(item.dst)
        t0 = time.perf_counter()
        try:
            fp = Fingerprint.of(src)
            res = colorize_raster(src, dst, self.colorizer, self.config.settings, stretch,
                                  smoothers, self.config.model_info, stop, self.on_tiles)
            return {"input": item.rel, "status": "done", "key": self.config.key,
                    "size": fp.size, "mtime_ns": fp.mtime_ns, "output": item.rel,
                    "output_size": dst.stat().st_size, "sha256": sha256_file(dst),
                    "stretch": res.stretch.key(), "tiles": res.tiles,
                    "seconds": round(time.perf_counter() - t0, 4)}
        except StopRequested:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if not isinstance(e, StreamcolorError):
                log.debug("%s: %s", src, traceback.format_exc())
            return self._failed(item, e)

    def _failed(self, item: Item, e: BaseException) -> dict[str, Any]:
        reason = "out of memory" if is_allocation_failure(e) else one_line(e)
        fp = None
        with contextlib.suppress(OSError):
            fp = Fingerprint.of(Path(item.src))
        return {"input": item.rel, "status": "failed", "key": self.config.key,
                "size": fp.size if fp else None, "mtime_ns": fp.mtime_ns if fp else None,
                "error": reason.replace(item.src, item.rel) if reason.startswith(item.src)
                else reason}


# --------------------------------------------------------------- process-pool entry points
_WORKER: Worker | None = None


def init_process(config: WorkerConfig, torch_threads: int) -> None:
    """A pool process: ignore the terminal's Ctrl-C (the parent stops the job), die with the
    parent, one model."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    from streamcolor.model.runtime import configure_threads

    configure_threads(torch_threads)
    global _WORKER
    _WORKER = Worker(config)


def run_in_process(task: dict[str, Any]) -> list[dict[str, Any]]:
    assert _WORKER is not None, "init_process was not called"
    return _WORKER.run(Task.from_dict(task))


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a SIGKILLed job leaves no workers)."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except OSError:
        pass
