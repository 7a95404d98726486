"""Signals become stop requests: SIGINT (Ctrl-C), SIGTERM (``timeout``, ``kill``, systemd,
Docker) and SIGHUP (a closed terminal) all end a run the same clean way, with the partial
output finalised.  Further signals while it finishes are noted, never acted on, so a second
Ctrl-C cannot break the finalisation."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from streamcolor.engine.stop import StopToken

log = logging.getLogger(__name__)

HANDLED = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                if s is not None)


def exit_code(reason: str | None) -> int:
    """128 + the signal's number for a stop by signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
    if reason:
        with contextlib.suppress(KeyError):
            return 128 + int(signal.Signals[reason])
    return 130


@contextlib.contextmanager
def stop_on_signals(token: StopToken, restore: bool = True) -> Iterator[StopToken]:
    """Within the block, SIGINT/SIGTERM/SIGHUP request ``token`` to stop instead of killing
    the process; the previous handlers come back afterwards, unless ``restore`` is False (the
    process is about to exit: a late signal must not kill it after its partial output was
    reported).  Outside the main thread (where Python cannot install handlers) the block runs
    without them."""
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        first = not token.is_set()
        token.request(name)
        if not first:
            # Deferred: finishing the partial output is under way and must not be broken.
            print(f"streamcolor: {name} received again; still finishing the partial output",
                  file=sys.stderr, flush=True)

    previous = {}
    for s in HANDLED:
        with contextlib.suppress(OSError, ValueError):
            previous[s] = signal.signal(s, handle)
    try:
        yield token
    finally:
        if restore:
            for s, h in previous.items():
                with contextlib.suppress(OSError, ValueError, TypeError):
                    signal.signal(s, h)
        else:
            # Python puts the default handlers back while it shuts down, so a late signal
            # would still kill the process after its outcome was reported; an ignored one
            # stays ignored (any thread may receive it: torch's OpenMP workers too).
            for s in previous:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(s, signal.SIG_IGN)
