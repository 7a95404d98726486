"""source -> batcher -> model -> smoother -> sink, with decoding and encoding overlapped.

A reader thread decodes into a bounded queue, the calling thread batches frames, runs the
model and then the per-stream chroma filter (temporal smoothing, in frame order), a writer
thread encodes from a second bounded queue.  The filter deliberately runs on the model's
thread: on a CPU, a third busy thread makes torch's OpenMP workers spin-wait, and in an
ad-hoc comparison during development the smoother cost clearly more throughput on the
writer thread than here.
Memory is bounded by the queue sizes, not by the length of the input.  The first exception
in any stage stops the others and is re-raised in the caller; on any stop (error, Ctrl-C,
lost stream) the sink finalises a playable partial output.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from streamcolor.errors import InvalidInputError
from streamcolor.frames import Frame
from streamcolor.io.sinks import Sink
from streamcolor.io.sources import Source
from streamcolor.model.colorizer import Colorizer

log = logging.getLogger(__name__)

_END = object()


class _Failure:
    """Queued by the reader in place of the next frame when the source fails, so the frames
    read before the failure are still colourised and written before the error is raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ChromaFilter(Protocol):
    """Per-stream state between model and sink (temporal smoothing goes here)."""

    def update(self, frame: Frame, chroma: np.ndarray) -> np.ndarray: ...


class Passthrough:
    def update(self, frame: Frame, chroma: np.ndarray) -> np.ndarray:
        return chroma


@dataclass
class RunResult:
    frames: int
    seconds: float
    output: Path | None
    complete: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Stage(threading.Thread):
    """A worker thread that records its exception and signals the shared stop event."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.stop = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:
            self.error = e
            self.stop.set()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Blocking put that gives up when the pipeline is stopping."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class Pipeline:
    def __init__(self, colorizer: Colorizer, queue_size: int = 8) -> None:
        self.colorizer = colorizer
        self.queue_size = queue_size

    def run(self, source: Source, sink: Sink, chroma_filter: ChromaFilter | None = None,
            progress: Callable[[int], None] | None = None) -> RunResult:
        stop = threading.Event()
        q_in: queue.Queue = queue.Queue(maxsize=max(self.queue_size, self.colorizer.batch_size * 2))
        q_out: queue.Queue = queue.Queue(maxsize=self.queue_size)
        filt = chroma_filter or Passthrough()
        live = source.info.live
        start = time.perf_counter()
        counted = 0

        def read() -> None:
            n = 0
            try:
                for frame in source:
                    if not _put(q_in, frame, stop):
                        return
                    n += 1
                if n == 0:
                    raise InvalidInputError(f"{source.info.label}: zero frames")
            except Exception as e:
                _put(q_in, _Failure(e), stop)
                return
            _put(q_in, _END, stop)

        def write() -> None:
            nonlocal counted
            while True:
                try:
                    item = q_out.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                if item is _END:
                    return
                frame, chroma = item
                sink.write(frame, chroma)
                counted += 1
                if progress:
                    progress(1)

        reader = _Stage("streamcolor-reader", read, stop)
        writer = _Stage("streamcolor-writer", write, stop)
        reader.start()
        writer.start()
        interrupted: BaseException | None = None
        try:
            self._infer(q_in, q_out, filt, stop, live)
        except BaseException as e:
            interrupted = e
        # Let the writer drain what was computed, unless it already failed.
        if interrupted is None and not stop.is_set():
            _put(q_out, _END, stop)
        elif interrupted is not None:
            stop.set()
        writer.join()
        stop.set()
        reader.join(timeout=5)
        if not reader.is_alive():  # never close a container another thread still decodes
            source.close()
        error = interrupted or writer.error or reader.error
        if error is not None:
            partial = None
            try:
                partial = sink.abort()
            except Exception as abort_error:
                log.error("could not finalise the partial output: %s", abort_error)
            if partial is not None:
                log.warning("stopped after %d frames; partial output kept at %s", counted, partial)
            error.partial_output = partial  # type: ignore[attr-defined]
            error.frames_done = counted  # type: ignore[attr-defined]
            raise error
        out = sink.close()  # the encoder flush counts in the run's time
        return RunResult(counted, time.perf_counter() - start, out, True)

    def _infer(self, q_in: queue.Queue, q_out: queue.Queue, filt: ChromaFilter,
               stop: threading.Event, live: bool) -> None:
        bs = self.colorizer.batch_size
        pending: Frame | None = None
        failure: _Failure | None = None
        ended = False
        while not ended:
            batch: list[Frame] = []
            if pending is not None:
                batch.append(pending)
                pending = None
            while len(batch) < bs:
                try:
                    # Files: wait to fill the batch.  Live: take what has arrived.
                    item = q_in.get(timeout=0.1) if (not batch or not live) else q_in.get_nowait()
                except queue.Empty:
                    if stop.is_set():
                        return
                    if batch and live:
                        break
                    continue
                if item is _END or isinstance(item, _Failure):
                    ended = True
                    failure = item if isinstance(item, _Failure) else None
                    break
                if batch and item.luma.shape != batch[0].luma.shape:
                    pending = item
                    break
                batch.append(item)
            if not batch:
                continue
            chroma = self.colorizer.predict([f.luma for f in batch],
                                            [f.full_range for f in batch])
            for f, c in zip(batch, chroma, strict=True):
                if not _put(q_out, (f, filt.update(f, c)), stop):
                    return
        if failure is not None:
            raise failure.error
