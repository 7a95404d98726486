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
