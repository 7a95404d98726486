"""Asking a run to stop cleanly, from a signal handler or another thread."""

from __future__ import annotations

import threading


class StopToken:
    """A one-way flag with a reason.  Every stage polls it; setting it never raises, so it is
    safe to call from a signal handler, and the first reason wins."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.requests = 0  # how often a stop was asked for (a second Ctrl-C, ...)

    def request(self, reason: str = "stop requested") -> None:
        self.requests += 1
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class StopRequested(Exception):
    """Raised where a blocking step (connecting to a stream) gives up for a stop request."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
