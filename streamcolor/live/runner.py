"""``streamcolor live``: several cameras, one model, bounded latency.

One reader per camera keeps only its newest frame (:mod:`.camera`).  The model loop takes,
at each step, the newest frame of every camera that has one, drops those older than
``max_latency`` (age from arrival, counted as ``stale``), runs the frames of one size as one
batch, smooths each camera's chroma with its own :class:`~streamcolor.TemporalSmoother`
(reset when the camera reconnects), and publishes: to the browser view, to the recorder and
to the camera's statistics.  Nothing waits on a slow consumer, so latency cannot grow with
run time whatever the model's speed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamcolor.engine.stop import StopToken
from streamcolor.frames import Frame
from streamcolor.live.camera import Camera, CameraSpec
from streamcolor.live.recorder import SegmentRecorder
from streamcolor.live.stats import CameraStats
from streamcolor.live.view import CameraView
from streamcolor.temporal.smoother import DEFAULT_STRENGTH, TemporalSmoother

log = logging.getLogger(__name__)


@dataclass
class LiveOptions:
    max_latency: float = 0.5  # seconds from arrival; older frames are dropped unprocessed
    stall_timeout: float = 5.0  # seconds without data before a camera counts as lost
    temporal_strength: float = DEFAULT_STRENGTH
    record: Path | None = None
    segment: float = 60.0
    keep: int | None = None


class LiveRunner:
    """Runs the cameras until ``stop`` is set (or ``duration`` seconds pass)."""

    def __init__(self, specs: Sequence[CameraSpec], colorizer: object,
                 options: LiveOptions | None = None,
                 on_publish: Callable[[str, Frame, np.ndarray], None] | None = None) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must differ: {', '.join(names)}")
        self.options = options or LiveOptions()
        self.colorizer = colorizer
        self._wake = threading.Event()
        self.cameras = [Camera(s, self.options.stall_timeout, on_frame=self._wake.set,
                               on_lost=self._lost) for s in specs]
        self.views = {c.name: CameraView(c.name) for c in self.cameras}
        self.stats: dict[str, CameraStats] = {c.name: c.stats for c in self.cameras}
        self.recorders: dict[str, SegmentRecorder] = {}
        if self.options.record is not None:
            for c in self.cameras:
                self.recorders[c.name] = SegmentRecorder(
                    self.options.record / c.name, c.stats, self.options.segment,
                    self.options.keep)
        s = self.options.temporal_strength
        self._smoothers = {c.name: TemporalSmoother(s) if s > 0 else None for c in self.cameras}
        self._generation = dict.fromkeys(self.views, 0)
        self._on_publish = on_publish

    def _lost(self, cam: Camera) -> None:
        rec = self.recorders.get(cam.name)
        if rec is not None:
            rec.cut(cam.generation)  # a lost camera closes its segment

    def run(self, stop: StopToken | None = None, duration: float | None = None) -> None:
        stop = stop or StopToken()
        for r in self.recorders.values():
            r.start()
        for c in self.cameras:
            c.start()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not self._step():
                    self._wake.wait(0.05)
                    self._wake.clear()
        finally:
            self.close()

    def _step(self) -> bool:
        """One model step over the newest frames; False when there was none."""
        now = time.time()
        taken: list[tuple[Camera, Frame]] = []
        for cam in self.cameras:
            frame = cam.take()
            if frame is None:
                continue
            if now - (frame.captured_at or frame.arrived_at or now) > self.options.max_latency:
                cam.stats.drop("stale")
                continue
            taken.append((cam, frame))
        if not taken:
            return False
        by_shape: dict[tuple[int, ...], list[tuple[Camera, Frame]]] = {}
        for cam, frame in taken:
            by_shape.setdefault(frame.luma.shape, []).append((cam, frame))
        for group in by_shape.values():
            chroma = self.colorizer.predict([f.luma for _, f in group],  # type: ignore[attr-defined]
                                            [f.full_range for _, f in group])
            for (cam, frame), c in zip(group, chroma, strict=True):
                self._publish(cam, frame, c)
        return True

    def _publish(self, cam: Camera, frame: Frame, chroma: np.ndarray) -> None:
        smoother = self._smoothers[cam.name]
        if smoother is not None:
            generation = frame.extra.get("generation", cam.generation)
            if generation != self._generation[cam.name]:
                self._generation[cam.name] = generation
                smoother.reset()  # a reconnected camera starts a new shot
            chroma = smoother.update(frame, chroma)
        self.views[cam.name].update(frame, chroma)
        rec = self.recorders.get(cam.name)
        if rec is not None:
            rec.write(frame, chroma)
        cam.stats.frame_out(time.time() - (frame.captured_at or frame.arrived_at or time.time()))
        if self._on_publish is not None:
            self._on_publish(cam.name, frame, chroma)

    def close(self) -> None:
        """Stop the readers, finish the recordings (complete segments), close the views."""
        for c in self.cameras:
            c.stop()
        for r in self.recorders.values():
            r.stop()
        for c in self.cameras:
            if not c.join(self.options.stall_timeout + 5):
                log.warning("%s: reader did not stop in time", c.name)
        for v in self.views.values():
            v.close()

