"""Per-camera health: counters, state, latency percentiles and histogram, rendered as the
``/healthz`` JSON and the Prometheus ``/metrics`` text."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable

import numpy as np

STATES = ("connecting", "live", "backoff", "stopped")
DROP_REASONS = ("stale", "overwritten", "record")
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0)
WINDOW = 1000  # latencies kept for the percentiles
RATE_WINDOW = 5.0  # seconds of frame times kept for the fps


class CameraStats:
    """Thread-safe counters of one camera (the reader, the model loop and the HTTP threads
    all touch them)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source  # already masked
        self._lock = threading.Lock()
        self.state = "connecting"
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.reconnects = 0
        self.stalls = 0
        self.last_error: str | None = None
        self.last_out: float | None = None  # wall time the newest colourised frame was made
        self._latencies: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._hist = [0] * (len(LATENCY_BUCKETS) + 1)
        self._lat_sum = 0.0
        self._in_times: collections.deque[float] = collections.deque()
        self._out_times: collections.deque[float] = collections.deque()

    def set_state(self, state: str, error: str | None = None) -> None:
        with self._lock:
            self.state = state
            if error is not None:
                self.last_error = error

    def frame_in(self) -> None:
        now = time.time()
        with self._lock:
            self.frames_in += 1
            _push(self._in_times, now)

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += n

    def frame_out(self, latency: float) -> None:
        now = time.time()
        with self._lock:
            self.frames_out += 1
            self.last_out = now
            self._latencies.append(latency)
            self._lat_sum += latency
            i = next((k for k, b in enumerate(LATENCY_BUCKETS) if latency <= b),
                     len(LATENCY_BUCKETS))
            self._hist[i] += 1
            _push(self._out_times, now)

    def reconnected(self, stalled: bool) -> None:
        with self._lock:
            self.reconnects += 1
            self.stalls += stalled

    def snapshot(self) -> dict[str, object]:
        now = time.time()
        with self._lock:
            lat = np.array(self._latencies) if self._latencies else None
            return {
                "state": self.state, "source": self.source,
                "frames_in": self.frames_in, "frames_out": self.frames_out,
                "dropped": sum(self.dropped.values()),
                "dropped_by_reason": dict(self.dropped), "reconnects": self.reconnects,
                "stalls": self.stalls,
                "latency_ms": {"p50": _pct(lat, 50), "p95": _pct(lat, 95),
                               "p99": _pct(lat, 99)},
                "last_frame_age_s": None if self.last_out is None else now - self.last_out,
                "fps_in": _rate(self._in_times, now), "fps_out": _rate(self._out_times, now),
                "last_error": self.last_error,
            }

    def histogram(self) -> tuple[list[int], int, float]:
        with self._lock:
            return list(self._hist), sum(self._hist), self._lat_sum


def _push(times: collections.deque[float], now: float) -> None:
    times.append(now)
    while times and times[0] < now - RATE_WINDOW:
        times.popleft()


def _rate(times: collections.deque[float], now: float) -> float:
    recent = [t for t in times if t >= now - RATE_WINDOW]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


def _pct(values: np.ndarray | None, q: float) -> float | None:
    return None if values is None else round(float(np.percentile(values, q)) * 1000.0, 1)


def healthz(cameras: Iterable[CameraStats]) -> dict[str, object]:
    return {"cameras": {c.name: c.snapshot() for c in cameras}}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(cameras: Iterable[CameraStats]) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    cams = list(cameras)
    snaps = {c.name: c.snapshot() for c in cams}
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, rows: list[tuple[str, float]]) -> None:
        out.append(f"# HELP streamcolor_{name} {help_text}")
        out.append(f"# TYPE streamcolor_{name} {kind}")
        out.extend(f"streamcolor_{name}{{{labels}}} {value:g}" for labels, value in rows)

    def cam(c: str, extra: str = "") -> str:
        return f'camera="{_label(c)}"{extra}'

    metric("frames_in_total", "counter", "Frames decoded from the camera.",
           [(cam(n), s["frames_in"]) for n, s in snaps.items()])
    metric("frames_out_total", "counter", "Colourised frames published.",
           [(cam(n), s["frames_out"]) for n, s in snaps.items()])
    metric("frames_dropped_total", "counter", "Frames dropped, by reason (stale: older than "
           "--max-latency; overwritten: a newer frame arrived first; record: recorder busy).",
           [(cam(n, f',reason="{r}"'), v) for n, s in snaps.items()
            for r, v in s["dropped_by_reason"].items()])  # type: ignore[union-attr]
    metric("reconnects_total", "counter", "Times the camera was lost and reconnected.",
           [(cam(n), s["reconnects"]) for n, s in snaps.items()])
    metric("stalls_total", "counter", "Times the camera stopped sending with its socket open.",
           [(cam(n), s["stalls"]) for n, s in snaps.items()])
    metric("camera_state", "gauge", "1 for the camera's current state.",
           [(cam(n, f',state="{st}"'), float(s["state"] == st)) for n, s in snaps.items()
            for st in STATES])
    metric("last_frame_age_seconds", "gauge", "Seconds since the newest colourised frame.",
           [(cam(n), s["last_frame_age_s"]) for n, s in snaps.items()
            if s["last_frame_age_s"] is not None])
    out.append("# HELP streamcolor_latency_seconds Arrival to publication of a frame.")
    out.append("# TYPE streamcolor_latency_seconds histogram")
    for c in cams:
        hist, count, total = c.histogram()
        acc = 0
        for b, n in zip((*LATENCY_BUCKETS, float("inf")), hist, strict=True):
            acc += n
            le = "+Inf" if b == float("inf") else f"{b:g}"
            labels = cam(c.name, ',le="' + le + '"')
            out.append(f"streamcolor_latency_seconds_bucket{{{labels}}} {acc}")
        out.append(f"streamcolor_latency_seconds_count{{{cam(c.name)}}} {count}")
        out.append(f"streamcolor_latency_seconds_sum{{{cam(c.name)}}} {total:g}")
    return "\n".join(out) + "\n"
