"""The ``streamcolor live`` command over :class:`~streamcolor.live.runner.LiveRunner`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from streamcolor.engine.stop import StopToken
from streamcolor.errors import OutputError, StreamcolorError

log = logging.getLogger(__name__)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_live(a: argparse.Namespace, stop: StopToken) -> int:
    from streamcolor.live.camera import parse_source
    from streamcolor.live.runner import LiveOptions, LiveRunner
    from streamcolor.live.server import LiveServer, parse_bind
    from streamcolor.model.colorizer import Colorizer
    from streamcolor.model.runtime import configure_threads

    specs = [parse_source(text, i, a.transport) for i, text in enumerate(a.sources)]
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StreamcolorError(f"camera names must differ: {', '.join(dup)} twice")
    if a.record is not None:
        try:
            a.record.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{a.record}: cannot create the recording folder "
                              f"({e.strerror})") from None
        if not os.access(a.record, os.W_OK | os.X_OK):
            raise OutputError(f"{a.record}: recording folder is not writable")
    bind = parse_bind(a.http) if a.http else None
    configure_threads(a.threads)
    colorizer = Colorizer(a.model, render_factor=a.render_factor, device=a.device,
                          precision=a.precision, runtime=a.runtime,
                          batch_size=len(specs) if a.runtime != "torch" else None,
                          threads=None if a.runtime == "torch" else a.threads,
                          saturation=a.saturation, temperature=a.temperature,
                          class_weight=a.class_weight)
    options = LiveOptions(max_latency=a.max_latency, stall_timeout=a.stall_timeout,
                          temporal_strength=a.temporal_strength, record=a.record,
                          segment=a.segment, keep=a.keep)
    runner = LiveRunner(specs, colorizer, options)
    server = None
    if bind is not None:
        server = LiveServer(*bind, runner.views, runner.stats, a.http_token).start()
    if not a.quiet:
        where = f"; view at {server.url}" if server else ""
        _say(f"live: {len(specs)} camera(s) ({', '.join(f'{s.name}={s.label}' for s in specs)}) "
             f"with {colorizer.name} on {colorizer.description}{where}")
    try:
        runner.run(stop, a.duration)
    finally:
        if server is not None:
            server.stop()
    if not a.quiet:
        for name, st in runner.stats.items():
            s = st.snapshot()
            lat = s["latency_ms"]
            _say(f"{name}: {s['frames_out']} frames colorized of {s['frames_in']} received, "
                 f"{s['dropped']} dropped, {s['reconnects']} reconnects, latency p50 "
                 f"{lat['p50']} ms, p95 {lat['p95']} ms")  # type: ignore[index]
        for name, rec in runner.recorders.items():
            _say(f"{name}: {rec.segments_closed} segment(s) in {rec.folder}")
    return 0
