"""A real Ctrl-C (SIGINT) to the command line: exit 130 and a playable partial video."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mediautil import leftovers, make_video, probe


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigint_mid_run_finalizes_playable_partial(tiny_weights, tmp_path):
    # Long enough (3000 frames) that the run cannot end between its first written frame and
    # the signal; tiny frames so the test stays quick.
    clip = make_video(tmp_path / "long.mp4", width=64, height=48, frames=3000, audio="aac")
    out = tmp_path / "out" / "colored.mp4"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamcolor", "colorize", str(clip), "-o", str(out),
         "--model", str(tiny_weights), "--threads", "1", "-q"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    deadline = time.monotonic() + 60
    while not leftovers(out.parent) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)  # the hidden temporary video appears with the first frame
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    partial = out.with_name("colored.partial.mp4")
    assert err.decode().strip() == f"streamcolor: interrupted; partial output kept at {partial}"
    assert not out.exists() and not leftovers(out.parent)
    info, src = probe(partial), probe(clip)  # decodes every frame: the partial plays
    assert 0 < info.frames < src.frames
    assert info.times == pytest.approx(src.times[: info.frames], abs=1e-4)
    assert info.audio and info.audio[0][1] > 0
