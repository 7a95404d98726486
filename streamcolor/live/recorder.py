"""Recordings of a live camera: ``DIR/NAME/<start time>.mp4`` segments.

Each segment is an H.264 MP4 with the source's luma and the model's chroma (the video sink
of ``colorize``), timestamps from 0 in each, written under a hidden temporary name
(``.NAME.tmp-PID.part``) and renamed when it is closed, so every ``.mp4`` in the folder is
complete and plays.  A segment ends after ``segment`` seconds (the next frame starts a new
one; our encoder starts every segment on a keyframe), when the camera is lost, and when the
recorder stops.  ``keep`` bounds the number of segments per camera (oldest deleted first).
The writer runs on its own thread behind a bounded queue: a slow disk drops frames from the
recording (counted) rather than delaying the live view.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from streamcolor.errors import OutputError
from streamcolor.frames import Frame
from streamcolor.io.sinks import VideoSink
from streamcolor.live.stats import CameraStats

log = logging.getLogger(__name__)

_CUT = object()
_STOP = object()
TIME_BASE = Fraction(1, 1000)  # segment timestamps in milliseconds of wall time


def segment_name(start: float, taken: set[str]) -> str:
    """``YYYYmmdd-HHMMSS.mp4`` (local time) of ``start``, made unique within ``taken``."""
    base = time.strftime("%Y%m%d-%H%M%S", time.localtime(start))
    name, n = f"{base}.mp4", 2
    while name in taken:
        name, n = f"{base}_{n}.mp4", n + 1  # sorts after the first: time order
    return name


class SegmentRecorder:
    """Segments of one camera in ``folder``."""

    def __init__(self, folder: Path, stats: CameraStats, segment: float = 60.0,
                 keep: int | None = None, rate: Fraction = Fraction(25),
                 max_queue: int = 100) -> None:
        self.folder = folder
        self.stats = stats
        self.segment = segment
        self.keep = keep
        self.rate = rate
        self.segments_closed = 0
        self.errors: list[str] = []
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._sink: VideoSink | None = None
        self._start = 0.0
        self._last_ms = -1
        self._index = 0
        self._closed_generation = -1
        self._segment_generation = 0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"streamcolor-rec-{stats.name}")

    def start(self) -> SegmentRecorder:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def write(self, frame: Frame, chroma: np.ndarray) -> None:
        """Hand a colourised frame over (never blocks; a full queue drops it, counted)."""
        try:
            self._q.put_nowait((frame, chroma))
        except queue.Full:
            self.stats.drop("record")

    def cut(self, generation: int) -> None:
        """Close the current segment: connection ``generation`` of the camera was lost.  Its
        frames still on their way (taken by the model before the loss) are not recorded."""
        self._q.put((_CUT, generation))

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, close the segment, end the thread."""
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                self._close()
                return
            if item[0] is _CUT:
                self._closed_generation = max(self._closed_generation, item[1])
                self._close()
                continue
            frame, chroma = item
            generation = frame.extra.get("generation", 0)
            if generation <= self._closed_generation:
                continue  # from a connection that was lost: its segment is closed
            if self._sink is not None and generation != self._segment_generation:
                self._close()  # a new connection starts a new segment
            try:
                self._write(frame, chroma)
            except OutputError as e:  # a full disk, say: drop this segment, keep trying
                self.errors.append(str(e))
                log.error("%s: recording: %s", self.stats.name, e)
                self._abort()

    def _write(self, frame: Frame, chroma: np.ndarray) -> None:
        t = frame.captured_at or frame.arrived_at or time.time()
        if self._sink is not None and t - self._start >= self.segment:
            self._close()
        if self._sink is None:
            self._segment_generation = frame.extra.get("generation", 0)
            taken = {p.name for p in self.folder.glob("*.mp4")}
            self._sink = VideoSink(self.folder / segment_name(t, taken), rate=self.rate,
                                   container_format="mp4")
            self._start, self._last_ms, self._index = t, -1, 0
        ms = max(round((t - self._start) * 1000), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        seg_frame = Frame(frame.luma, self._index, ms, TIME_BASE, frame.full_range,
                          extra=frame.extra, bit_depth=frame.bit_depth,
                          stream_id=frame.stream_id, arrived_at=frame.arrived_at,
                          captured_at=frame.captured_at)
        self._index += 1
        self._sink.write(seg_frame, chroma)

    def _close(self) -> None:
        if self._sink is None:
            return
        sink, self._sink = self._sink, None
        try:
            path = sink.close()
        except OutputError as e:
            self.errors.append(str(e))
            log.error("%s: recording: %s", self.stats.name, e)
            return
        self.segments_closed += 1
        log.info("%s: segment %s (%d frames)", self.stats.name, path.name, sink.frames_written)
        self._prune()

    def _abort(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            with contextlib.suppress(OutputError):
                sink.abort()  # what was written stays, finalised, as NAME.partial.mp4

    def _prune(self) -> None:
        if not self.keep:
            return
        done = sorted(p for p in self.folder.glob("*.mp4") if not p.name.startswith("."))
        for old in done[:-self.keep]:
            try:
                old.unlink()
            except OSError as e:
                log.warning("%s: cannot delete old segment %s (%s)", self.stats.name, old,
                            e.strerror)
