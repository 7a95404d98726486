"""Threads, in one place: how many cores this process really has, how many threads each runtime
gets, and how torch waits.

Measured on the 2-core machine (``benchmarks/bench_engine.py``, section ``pairs``): torch with
its default OpenMP threads *spins* while it waits, so two busy processes on the same cores
collapse it by an order of magnitude; with ``OMP_WAIT_POLICY=PASSIVE`` it keeps most of its
solo speed next to a neighbour.  OpenVINO (TBB) shares the cores fairly with 2 threads.

Nothing in the library changes a process-wide setting on its own: the command line calls
:func:`prefer_passive_waiting` before torch is imported and :func:`configure_threads` once;
a library user may call them too.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)

OMP_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _cgroup_cpus() -> float | None:
    """CPUs allowed by the cgroup's quota (v2 ``cpu.max``, v1 ``cfs_quota_us``), if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers
    narrow both)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def max_threads() -> int:
    """The most threads accepted: one per logical CPU of the machine (more only
    oversubscribes the cores; OpenMP crashes on absurd counts)."""
    return max(os.cpu_count() or 1, available_cpus())


def check_threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or \
            not 1 <= threads <= max_threads():
        raise ValueError(f"threads must be a whole number in 1..{max_threads()} "
                         f"(this machine has {os.cpu_count()} CPUs), got {threads!r}")
    return threads


def threads_for(pipelines: int = 1, threads: int | None = None) -> int:
    """Threads for one runtime: ``threads`` if given, else the available CPUs shared among
    the ``pipelines`` that run in this process at once (live mode runs one per camera)."""
    if threads is not None:
        return check_threads(threads) or 1
    return max(1, available_cpus() // max(1, pipelines))


def prefer_passive_waiting() -> bool:
    """Make torch's OpenMP threads sleep instead of spin while they wait, unless the user
    chose a wait policy.  Only effective before torch starts its thread pool (call it before
    importing torch); returns whether it set the policy."""
    if any(v in os.environ for v in OMP_WAIT_VARS):
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (process-wide) to ``threads`` (default: the CPUs
    this process may use); returns the count set.  ``ValueError`` outside 1..max_threads()."""
    n = threads_for(1, threads)
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        log.debug("torch uses %d threads", n)
    return n
