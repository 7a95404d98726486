"""Thread settings of the runtimes, in one place.  Nothing in the library calls this on its
own: the command line does, and a library user may (torch's thread count is process-wide)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def max_threads() -> int:
    """The most threads :func:`configure_threads` accepts: one per logical CPU of the machine
    (more only oversubscribes the cores; OpenMP crashes on absurd counts)."""
    return max(os.cpu_count() or 1, available_cpus())


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (process-wide) to ``threads`` (default: the CPUs
    this process may use); returns the count set.  ``ValueError`` outside 1..max_threads()."""
    n = available_cpus() if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_threads():
        raise ValueError(f"threads must be a whole number in 1..{max_threads()} "
                         f"(this machine has {os.cpu_count()} CPUs), got {threads!r}")
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        log.debug("torch uses %d threads", n)
    return n
