"""A real RTSP camera (GStreamer's RTSP server on 127.0.0.1) that is killed, frozen, or never
answers: ``colorize`` says so, keeps a playable partial, and honours Ctrl-C while connecting.
Reconnecting is ``streamcolor live``'s job, not this one's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cameras import RtspCamera, require_gstreamer, wait_for_connection
from mediautil import leftovers, probe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
require_gstreamer()


@pytest.fixture
def camera():
    cam = RtspCamera()
    yield cam.proc, cam.url()
    cam.close()


def _colorize(url, out, tiny_weights, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "streamcolor", "colorize", url, "-o",
                             str(out), "--model", str(tiny_weights), "--threads", "1", "-q",
                             *extra], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)


def _wait_for_frames(out: Path, proc, seconds: float = 60) -> None:
    """Until the hidden temporary video exists (the first frame was written), plus a bit."""
    deadline = time.monotonic() + seconds
    while not leftovers(out.parent) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    time.sleep(1.0)


def test_killed_camera_ends_the_run_with_a_partial(camera, tiny_weights, tmp_path):
    cam, url = camera
    out = tmp_path / "rec.mp4"
    proc = _colorize(url, out, tiny_weights, "--timeout", "5")
    _wait_for_frames(out, proc)
    cam.kill()  # PyAV's read loop just ends: no exception to notice it by
    _, err = proc.communicate(timeout=60)
    partial = tmp_path / "rec.partial.mp4"
    assert proc.returncode == 1, err
    n = probe(partial).frames
    assert n > 0 and not out.exists() and not leftovers(tmp_path)
    assert err.strip() == (f"streamcolor: error: {url}: the stream ended after {n} frames "
                           f"(partial output kept at {partial})")


def test_frozen_camera_times_out_with_a_partial(camera, tiny_weights, tmp_path):
    cam, url = camera
    out = tmp_path / "rec.mp4"
    proc = _colorize(url, out, tiny_weights, "--timeout", "2")
    _wait_for_frames(out, proc)
    cam.send_signal(signal.SIGSTOP)  # alive but silent: blocks forever without a time-out
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1, err
    partial = tmp_path / "rec.partial.mp4"
    assert probe(partial).frames > 0
    assert err.strip() == (f"streamcolor: error: {url}: timed out after 2 s without data "
                           f"(partial output kept at {partial})")


def test_ctrl_c_while_connecting_to_a_frozen_camera(camera, tiny_weights, tmp_path):
    cam, url = camera
    cam.send_signal(signal.SIGSTOP)
    proc = _colorize(url, tmp_path / "rec.mp4", tiny_weights, "--timeout", "60")
    # Not a fixed sleep: a loaded machine can take longer than that to start up.
    wait_for_connection(proc, int(url.rsplit(":", 1)[1].split("/")[0]))
    time.sleep(0.5)  # inside the connect: RTSP's OPTIONS request sent, no answer coming
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 3, "Ctrl-C waited for the connection time-out"
    assert proc.returncode == 130, err
    assert err.strip() == "streamcolor: interrupted; nothing was written"
    assert list(tmp_path.iterdir()) == []
