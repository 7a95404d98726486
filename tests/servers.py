"""Loopback servers for stream tests: MPEG-TS over raw TCP (a live camera that plays, stalls,
says nothing or hangs up) and HTTP that counts what it serves.  Each binds 127.0.0.1, serves
a bounded amount, and stops by itself."""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def ts_over_tcp(data: bytes, mode: str = "play", chunk: int = 18800, pace: float = 0.0,
                hold: float = 20.0) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` serving ``data`` to one client.

    ``play``: all of it, then hang up (the camera is gone); ``stall``: the first third, then
    silence for ``hold`` s (a frozen camera); ``silent``: accept and never send."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(30)
    done = threading.Event()

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            try:
                if mode == "silent":
                    done.wait(hold)
                elif mode == "stall":
                    conn.sendall(data[: len(data) // 3])
                    done.wait(hold)
                else:
                    for i in range(0, len(data), chunk):
                        conn.sendall(data[i:i + chunk])
                        if pace:
                            time.sleep(pace)
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        done.set()
        srv.close()
        t.join(timeout=5)


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files and counts requests and bytes; answers 500 after ``limit`` requests."""

    stats: dict
    limit: int | None = None

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.stats["requests"] += 1
        if self.limit is not None and self.stats["requests"] > self.limit:
            self.send_error(500, "second download refused")
            return
        super().do_GET()

    def copyfile(self, source, outputfile) -> None:
        data = source.read()
        self.stats["bytes"] += len(data)
        outputfile.write(data)


@contextlib.contextmanager
def counting_http(root: Path, limit: int | None = None) -> Iterator[tuple[str, dict]]:
    stats = {"requests": 0, "bytes": 0}
    handler = functools.partial(type("H", (CountingHandler,), {"stats": stats, "limit": limit}),
                                directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stats
    finally:
        server.shutdown()
        server.server_close()
