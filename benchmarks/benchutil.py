"""Helpers shared by the benchmark scripts: logging, timing spread, machine noise."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and (max - min) / median in percent of repeated measurements."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": med,
        "min": lo,
        "max": hi,
        "spread_pct": 100.0 * (hi - lo) / med if med > 0 else None,
        "n": len(values),
    }


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx512_bf16", "amx", "avx2")))
    except OSError:
        pass
    return []


def _busy_cpu_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal (guest is already inside user)
    v = [int(x) for x in first[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class NoiseProbe:
    """Load average and the share of the machine's CPU taken by *other* processes."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.busy0 = _busy_cpu_seconds()
        self.own0 = _own_cpu_seconds()
        self.load0 = os.getloadavg()

    def result(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        busy1 = _busy_cpu_seconds()
        own = _own_cpu_seconds() - self.own0
        ncpu = os.cpu_count() or 1
        other = None
        if self.busy0 is not None and busy1 is not None and wall > 0:
            other = max(0.0, (busy1 - self.busy0 - own) / (wall * ncpu))
        return {
            "seconds": wall,
            "loadavg_before": list(self.load0),
            "loadavg_after": list(os.getloadavg()),
            "own_cpu_share": own / (wall * ncpu) if wall > 0 else None,
            "other_cpu_share": other,
        }


def write_results(doc: dict[str, Any], out: str | Path,
                  markdown: Any) -> None:
    """``out`` (JSON) and its ``.md`` twin from ``markdown(doc)``, which is also printed."""
    import json

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    text = markdown(doc)
    path.with_suffix(".md").write_text(text)
    print(text)
    log(f"wrote {path} and {path.with_suffix('.md')}")
