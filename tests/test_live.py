"""``streamcolor live`` against real RTSP cameras (GStreamer's RTSP server on 127.0.0.1):
bounded latency with a slow model, reconnect after a kill and a freeze, recordings, two
cameras, the HTTP view with health and metrics, masking, and the command itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from cameras import RtspCamera, require_gstreamer
from mediautil import probe

from streamcolor.color import colorfulness
from streamcolor.engine.stop import StopToken
from streamcolor.errors import StreamcolorError
from streamcolor.live.camera import backoff_delay, parse_source
from streamcolor.live.runner import LiveOptions, LiveRunner
from streamcolor.live.server import LiveServer, parse_bind

require_gstreamer()
ROOT = Path(__file__).resolve().parents[1]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with NO_PROXY.open(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def camera():
    cam = RtspCamera()
    yield cam
    cam.close()


class Running:
    """A LiveRunner on a background thread, stopped (and its cameras closed) on exit."""

    def __init__(self, runner: LiveRunner) -> None:
        self.runner = runner
        self.stop = StopToken()
        self.thread = threading.Thread(target=runner.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> LiveRunner:
        self.thread.start()
        return self.runner

    def __exit__(self, *exc: object) -> None:
        self.stop.request("test over")
        self.thread.join(30)
        assert not self.thread.is_alive()


def wait_for(cond, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


def out(runner: LiveRunner, name: str = "cam0") -> int:
    return runner.stats[name].frames_out


class Slow:
    """A colorizer that takes ``delay`` s a call (a model slower than the camera)."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.batches: list[int] = []

    def predict(self, lumas, full_range=True):
        time.sleep(self.delay)
        self.batches.append(len(lumas))
        return self.inner.predict(lumas, full_range)


def test_latency_stays_bounded_with_a_slow_model(camera, colorizer):
    latencies: list[tuple[float, float]] = []
    slow = Slow(colorizer, 0.15)  # ~6 fps of model for a 25 fps camera
    runner = LiveRunner([parse_source(camera.url(), 0)], slow, LiveOptions(max_latency=0.5),
                        on_publish=lambda n, f, c: latencies.append(
                            (time.monotonic(), time.time() - f.arrived_at)))
    with Running(runner):
        wait_for(lambda: out(runner) >= 5, 30, "first frames")
        time.sleep(8)
    lat = np.array([v for _, v in latencies[3:]])
    third = len(lat) // 3
    assert len(lat) >= 30
    assert lat.max() < 0.5 + 0.3, lat.max()  # never older than max-latency + one model step
    assert lat[-third:].mean() <= lat[:third].mean() + 0.05  # flat, not growing
    snap = runner.stats["cam0"].snapshot()
    assert snap["dropped_by_reason"]["overwritten"] > snap["frames_out"]  # newest wins


def test_stale_frames_are_dropped_before_inference(camera, colorizer):
    runner = LiveRunner([parse_source(camera.url(), 0)], Slow(colorizer, 0.2),
                        LiveOptions(max_latency=0.01))  # under a frame interval (40 ms)
    with Running(runner):
        wait_for(lambda: runner.stats["cam0"].dropped["stale"] >= 3, 30, "stale drops")


def test_killed_camera_reconnects_and_records_on(camera, colorizer, tmp_path):
    runner = LiveRunner([parse_source(camera.url(), 0)], colorizer,
                        LiveOptions(record=tmp_path / "rec", stall_timeout=3))
    with Running(runner):
        wait_for(lambda: out(runner) >= 10, 30, "frames before the kill")
        camera.kill()
        wait_for(lambda: runner.stats["cam0"].state != "live", 10, "loss noticed")
        time.sleep(2.0)  # an outage
        camera.restart()
        back = wait_for(lambda: runner.stats["cam0"].state == "live", 10, "reconnected")
        n = out(runner)
        wait_for(lambda: out(runner) >= n + 10, 10, "frames after the restart")
    assert back <= 5.0
    assert runner.stats["cam0"].reconnects == 1
    segments = sorted((tmp_path / "rec" / "cam0").iterdir())
    assert len(segments) >= 2, segments  # the loss closed the first segment
    for seg in segments:
        assert seg.suffix == ".mp4" and not seg.name.startswith("."), seg
        info = probe(seg)  # decodes every frame: complete and playable
        assert info.frames > 0 and info.times[0] == pytest.approx(0.0, abs=0.05)
        gaps = np.diff(info.times)
        assert gaps.max() < 1.0, (seg.name, gaps.max())  # no segment spans the outage


def test_frozen_camera_is_detected_and_recovers(camera, colorizer):
    runner = LiveRunner([parse_source(camera.url(), 0)], colorizer,
                        LiveOptions(stall_timeout=2))
    with Running(runner):
        wait_for(lambda: out(runner) >= 10, 30, "first frames")
        camera.freeze()  # alive, socket open, silent
        detected = wait_for(lambda: runner.stats["cam0"].state != "live", 10, "stall noticed")
        camera.thaw()
        wait_for(lambda: runner.stats["cam0"].state == "live", 15, "live again")
        n = out(runner)
        wait_for(lambda: out(runner) >= n + 10, 10, "frames after the freeze")
    assert detected <= 2 + 1 + 0.5  # stall-timeout + 1 s (+ polling)
    assert runner.stats["cam0"].stalls == 1


def test_two_cameras_batched_through_one_model(colorizer):
    cams = [RtspCamera(), RtspCamera()]
    try:
        specs = [parse_source(f"door={cams[0].url()}", 0), parse_source(f"yard={cams[1].url()}",
                                                                         1)]
        model = Slow(colorizer, 0.05)
        runner = LiveRunner(specs, model, LiveOptions())
        with Running(runner):
            wait_for(lambda: out(runner, "door") >= 15 and out(runner, "yard") >= 15, 30,
                     "both cameras")
        assert max(model.batches) == 2  # each step takes the newest frame of every camera
    finally:
        for c in cams:
            c.close()


def test_http_view_health_metrics_and_masking(colorizer, caplog):
    cam = RtspCamera("--auth", "viewer:s3cret")
    try:
        url = cam.url(auth="viewer:s3cret")
        runner = LiveRunner([parse_source(f"gate={url}", 0)], colorizer, LiveOptions())
        server = LiveServer("127.0.0.1", 0, runner.views, runner.stats).start()
        base = server.url
        with Running(runner):
            wait_for(lambda: out(runner, "gate") >= 10, 30, "frames")
            code, page = get(base)
            code_h, health = get(base + "healthz")
            code_m, metrics = get(base + "metrics")
            code_f, jpeg = get(base + "cameras/gate/frame.jpg")
            with NO_PROXY.open(base + "cameras/gate/stream.mjpg", timeout=10) as r:
                ctype = r.headers["Content-Type"]
                head = r.read(60000)
            code_404, _ = get(base + "cameras/nope/frame.jpg")
        server.stop()
    finally:
        cam.close()
    assert code == code_h == code_m == code_f == 200 and code_404 == 404
    text = page.decode() + health.decode() + metrics.decode() + caplog.text
    assert "s3cret" not in text and "viewer:***@" in page.decode()
    h = json.loads(health)["cameras"]["gate"]
    assert h["state"] == "live" and h["frames_out"] >= 10 and h["reconnects"] == 0
    assert set(h["latency_ms"]) >= {"p50", "p95"} and h["last_frame_age_s"] < 2
    m = metrics.decode()
    for line in ('streamcolor_frames_in_total{camera="gate"}',
                 'streamcolor_frames_dropped_total{camera="gate",reason="stale"}',
                 'streamcolor_camera_state{camera="gate",state="live"} 1',
                 'streamcolor_latency_seconds_bucket{camera="gate",le="+Inf"}',
                 "# TYPE streamcolor_latency_seconds histogram"):
        assert line in m, line
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (120, 160) and colorfulness(img[..., ::-1]) > 3.0
    assert ctype.startswith("multipart/x-mixed-replace") and head.count(b"\xff\xd8") >= 1


def test_token_required_beyond_the_loopback_and_checked(colorizer):
    runner = LiveRunner([parse_source("rtsp://127.0.0.1:1/cam", 0)], colorizer, LiveOptions())
    with pytest.raises(StreamcolorError, match="needs --http-token"):
        LiveServer("0.0.0.0", 0, runner.views, runner.stats)
    server = LiveServer("127.0.0.1", 0, runner.views, runner.stats, token="t0ken").start()
    try:
        assert get(server.url + "healthz")[0] == 401
        assert get(server.url + "healthz?token=wrong")[0] == 401
        assert get(server.url + "healthz?token=t0ken")[0] == 200
        assert get(server.url + "metrics", {"Authorization": "Bearer t0ken"})[0] == 200
        assert "?token=t0ken" in get(server.url + "?token=t0ken")[1].decode()
    finally:
        server.stop()
        runner.close()
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:81") == ("::1", 81)


def test_sources_names_devices_and_options():
    a = parse_source("rtsp://u:p@cam/live", 0, transport="udp")
    assert (a.name, a.input_format, a.options["rtsp_transport"]) == ("cam0", None, "udp")
    assert a.label == "rtsp://u:***@cam/live" and "probesize" in a.options
    b = parse_source("door=rtsp://cam/2", 1)
    assert (b.name, b.source) == ("door", "rtsp://cam/2")
    c = parse_source("/dev/video0", 2)  # a webcam (no v4l2 device here: the options only)
    assert (c.name, c.input_format) == ("cam2", "v4l2")
    d = parse_source("porch=/dev/video3", 3)
    assert (d.name, d.source, d.input_format) == ("porch", "/dev/video3", "v4l2")
    with pytest.raises(StreamcolorError, match="unsupported URL scheme"):
        parse_source("ftp://x/y", 0)
    with pytest.raises(StreamcolorError, match="not a stream URL or a camera device"):
        parse_source("movie.mp4", 0)
    import random

    delays = [backoff_delay(k, random.Random(1)) for k in range(8)]
    assert delays[0] < 0.7 and max(delays) <= 2.0 * 1.2  # capped: back within 5 s


def _live(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "streamcolor", "live", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.mark.parametrize("how", ["sigterm", "sigint", "duration"])
def test_cli_stops_cleanly_with_complete_segments(how, camera, tiny_weights, tmp_path):
    rec = tmp_path / "rec"
    extra = ["--duration", "6"] if how == "duration" else []
    proc = _live(camera.url(), "--record", rec, "--segment", "2", "--model", tiny_weights,
                 "--threads", "1", *extra)
    if how != "duration":
        wait_for(lambda: len(list((rec / "cam0").glob("*.mp4"))) >= 1, 60, "a first segment")
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    files = sorted((rec / "cam0").iterdir())
    assert files and all(f.suffix == ".mp4" and not f.name.startswith(".") for f in files), files
    for f in files:
        assert probe(f).frames > 0
    assert "cam0: " in err and "frames colorized" in err


def test_cli_refuses_bad_setups_in_one_line(tmp_path, tiny_weights):
    for args, needle in [(["movie.mp4"], "not a stream URL or a camera device"),
                         (["a=rtsp://x/1", "a=rtsp://x/2"], "camera names must differ"),
                         (["rtsp://x/1", "--http", "0.0.0.0:0"], "needs --http-token")]:
        proc = _live(*args, "--model", tiny_weights)
        _, err = proc.communicate(timeout=60)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and needle in lines[0], err


def test_recorder_never_mixes_connections(tmp_path):
    """A frame of a lost connection that reaches the recorder after the cut (the model took it
    before the loss) is not recorded, and a new connection starts a new segment."""
    from mediautil import pattern_frame

    from streamcolor.frames import Frame
    from streamcolor.live.recorder import SegmentRecorder
    from streamcolor.live.stats import CameraStats

    rec = SegmentRecorder(tmp_path / "cam", CameraStats("cam", "x"), segment=60).start()
    chroma = np.zeros((8, 8, 2), np.float32)
    t0 = time.time() - 100

    def frame(i: int, generation: int, t: float) -> Frame:
        return Frame(pattern_frame(i, 64, 48), i, arrived_at=t0 + t,
                     extra={"generation": generation})

    for i in range(5):
        rec.write(frame(i, 1, i * 0.04), chroma)
    rec.cut(1)
    rec.write(frame(5, 1, 0.2), chroma)  # late: taken before the loss
    for i in range(6):
        rec.write(frame(10 + i, 2, 12 + i * 0.04), chroma)  # reconnected 12 s later
    rec.write(frame(20, 3, 30), chroma)  # another connection, no cut seen (a quick blip)
    rec.stop()
    segs = sorted((tmp_path / "cam").iterdir())
    assert [probe(s).frames for s in segs] == [5, 6, 1]
    assert all(np.diff(probe(s).times).max(initial=0) < 1.0 for s in segs)
