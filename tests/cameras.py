"""Real RTSP cameras for tests: GStreamer's RTSP server (``tests/peers/rtsp_camera.py``) run
with Debian's /usr/bin/python3 on a free loopback port, awaited on its READY line, ended by
PID.  Missing GStreamer skips the tests locally and fails them under ``CI=true``."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

PEER = Path(__file__).resolve().parent / "peers" / "rtsp_camera.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def gstreamer_ok() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


def require_gstreamer() -> None:
    """Skip the calling module without GStreamer, except under CI, where that is a failure."""
    if gstreamer_ok():
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError("GStreamer's RTSP server is missing (.ci/run installs it)")
    pytest.skip("GStreamer RTSP server not installed", allow_module_level=True)


class RtspCamera:
    """One camera process; ``kill``/``restart`` keep its port, ``freeze``/``thaw`` SIGSTOP it."""

    def __init__(self, *args: str, port: int = 0) -> None:
        self.args = list(args)
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> RtspCamera:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(PEER), "--port", str(self.port),
                                      *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().split()  # type: ignore[union-attr]
        assert line[:1] == ["READY"], f"the camera did not start: {line}"
        self.port = int(line[1])
        return self

    def url(self, mount: str = "/cam", auth: str | None = None) -> str:
        creds = f"{auth}@" if auth else ""
        return f"rtsp://{creds}127.0.0.1:{self.port}{mount}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.start()

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir() if fd_dir.exists() else ():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def has_connection_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket whose remote end is 127.0.0.1:``port``
    (read from /proc: the kernel completes a connection even to a SIGSTOPped server)."""
    inodes = _socket_inodes(pid)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, inode = fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_for_connection(proc: subprocess.Popen, port: int, seconds: float = 60) -> None:
    """Until ``proc`` has connected to ``port`` (its start-up, imports and model load, done)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if has_connection_to(proc.pid, port):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {proc.pid} did not connect to port {port} in {seconds} s"
                         f" (exit code {proc.poll()})")
