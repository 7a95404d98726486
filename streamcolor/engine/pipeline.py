"""source -> batcher -> model -> smoother -> sink, with decoding and encoding overlapped.

A reader thread decodes into a bounded queue, the calling thread batches frames, runs the
model and then the per-stream chroma filter (temporal smoothing, in frame order), a writer
thread encodes from a second bounded queue.  The filter deliberately runs on the model's
thread: on a CPU, a third busy thread makes torch's OpenMP workers spin-wait, and in an
ad-hoc comparison during development the smoother cost clearly more throughput on the
writer thread than here.

Memory is bounded by the queue sizes, not by the length of the input.  A run always ends in
an explicit :class:`~streamcolor.engine.result.RunResult`:

* the source ends: the sink is closed, the output gets its final name (``COMPLETE``);
* a stage fails (bad data, a lost stream, a full disk): the frames read before the failure
  are still written, the sink keeps a playable ``NAME.partial.EXT`` (``PARTIAL``, or
  ``FAILED`` when nothing was written) and the error is in the result;
* a :class:`~streamcolor.engine.stop.StopToken` is set (the CLI sets it on SIGINT, SIGTERM
  and SIGHUP): no new frames are taken, the frames already colourised are written, and the
  partial output is kept;
* a ``KeyboardInterrupt`` (no stop token in use) ends the run the same way and is then
  re-raised, as any cleanup code would.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from streamcolor.engine.result import RunResult, RunStatus
from streamcolor.engine.stop import StopToken
from streamcolor.errors import InvalidInputError
from streamcolor.frames import Frame
from streamcolor.io.sinks import Sink
from streamcolor.io.sources import Source

log = logging.getLogger(__name__)

_END = object()
POLL = 0.1  # seconds between checks of the stop flags while a stage waits


class _Failure:
    """Queued by the reader in place of the next frame when the source fails, so the frames
    read before the failure are still colourised and written before the error is raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ChromaModel(Protocol):
    """The model stage as the pipeline sees it (a :class:`~streamcolor.Colorizer`)."""

    @property
    def batch_size(self) -> int: ...

    def predict(self, lumas: Sequence[np.ndarray],
                full_range: bool | Sequence[bool] = True) -> np.ndarray: ...


class ChromaFilter(Protocol):
    """Per-stream state between model and sink (temporal smoothing goes here)."""

    def update(self, frame: Frame, chroma: np.ndarray) -> np.ndarray: ...


class Passthrough:
    def update(self, frame: Frame, chroma: np.ndarray) -> np.ndarray:
        return chroma


class _Stage(threading.Thread):
    """A worker thread that records its exception and signals the shared halt event."""

    def __init__(self, name: str, target: Callable[[], None], halt: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.halt = halt
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:
            self.error = e
            self.halt.set()


def _put(q: queue.Queue, item: object, give_up: Callable[[], bool]) -> bool:
    """Blocking put that gives up when ``give_up()`` turns true."""
    while not give_up():
        try:
            q.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False


class Pipeline:
    def __init__(self, model: ChromaModel, queue_size: int = 8) -> None:
        self.model = model
        self.queue_size = queue_size

    def run(self, source: Source, sink: Sink, chroma_filter: ChromaFilter | None = None,
            progress: Callable[[int], None] | None = None,
            stop: StopToken | None = None) -> RunResult:
        stop = stop or StopToken()
        halt = threading.Event()  # a stage failed: every stage stops at once
        q_in: queue.Queue = queue.Queue(maxsize=max(self.queue_size, self.model.batch_size * 2))
        q_out: queue.Queue = queue.Queue(maxsize=self.queue_size)
        filt = chroma_filter or Passthrough()
        start = time.perf_counter()
        written = 0

        def reader_gives_up() -> bool:
            return halt.is_set() or stop.is_set()

        def read() -> None:
            n = 0
            try:
                for frame in source:
                    if not _put(q_in, frame, reader_gives_up):
                        return
                    n += 1
                if n == 0:
                    raise InvalidInputError(f"{source.info.label}: zero frames")
            except Exception as e:
                _put(q_in, _Failure(e), halt.is_set)
                return
            _put(q_in, _END, reader_gives_up)

        def write() -> None:
            nonlocal written
            while True:
                try:
                    item = q_out.get(timeout=POLL)
                except queue.Empty:
                    if halt.is_set():
                        return
                    continue
                if item is _END:
                    return
                frame, chroma = item
                sink.write(frame, chroma)
                written += 1
                if progress:
                    progress(1)

        reader = _Stage("streamcolor-reader", read, halt)
        writer = _Stage("streamcolor-writer", write, halt)
        reader.start()
        writer.start()
        failure: BaseException | None = None
        ended = False
        try:
            ended = self._infer(q_in, q_out, filt, halt, stop, source.info.live)
        except BaseException as e:
            failure = e
            halt.set()
        if not halt.is_set():
            _put(q_out, _END, halt.is_set)  # the writer drains what was computed
        writer.join()
        halt.set()  # the reader may still be decoding ahead: stop it
        reader.join(timeout=5)
        error = failure or writer.error or reader.error
        stopped_by = stop.reason if stop.is_set() and not ended and error is None else None
        output, status = None, RunStatus.COMPLETE
        if error is None and stopped_by is None:
            try:
                output = sink.close()  # the encoder flush counts in the run's time
            except Exception as e:
                error = e
        if error is not None or stopped_by is not None:
            output = self._abort(sink)
            status = RunStatus.PARTIAL if output is not None else RunStatus.FAILED
            log.info("stopped after %d frames (%s); partial output: %s", written,
                     stopped_by or error, output)
        if not reader.is_alive():  # never close a container another thread still decodes
            source.close()
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: cleaned up, now on their way
        warnings = tuple(getattr(source, "warnings", ())) + tuple(getattr(sink, "warnings", ()))
        return RunResult(written, time.perf_counter() - start, output, status, error,
                         stopped_by, warnings)

    @staticmethod
    def _abort(sink: Sink) -> object:
        try:
            return sink.abort()
        except Exception as abort_error:
            log.error("could not finalise the partial output: %s", abort_error)
            return None

    def _infer(self, q_in: queue.Queue, q_out: queue.Queue, filt: ChromaFilter,
               halt: threading.Event, stop: StopToken, live: bool) -> bool:
        """Batch, predict and filter until the source ends (True) or a stop (False)."""
        bs = self.model.batch_size
        pending: Frame | None = None
        failure: _Failure | None = None
        ended = False
        while not ended:
            if stop.is_set() or halt.is_set():
                return False
            batch: list[Frame] = []
            if pending is not None:
                batch.append(pending)
                pending = None
            while len(batch) < bs:
                try:
                    # Files: wait to fill the batch.  Live: take what has arrived.
                    item = q_in.get(timeout=POLL) if (not batch or not live) else \
                        q_in.get_nowait()
                except queue.Empty:
                    if halt.is_set() or (stop.is_set() and not batch):
                        return False
                    if batch and (live or stop.is_set()):
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
            chroma = self.model.predict([f.luma for f in batch], [f.full_range for f in batch])
            for f, c in zip(batch, chroma, strict=True):
                if not _put(q_out, (f, filt.update(f, c)), halt.is_set):
                    return False
        if failure is not None:
            raise failure.error
        return True
