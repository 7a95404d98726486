"""The live page in a real browser: Debian's Chromium driven by Playwright loads ``/``, shows
the MJPEG stream of a real RTSP camera, in colour and moving."""

from __future__ import annotations

import os
import shutil
import threading

import cv2
import numpy as np
import pytest
from cameras import RtspCamera, require_gstreamer

from streamcolor.color import colorfulness
from streamcolor.engine.stop import StopToken
from streamcolor.live.camera import parse_source
from streamcolor.live.runner import LiveOptions, LiveRunner
from streamcolor.live.server import LiveServer

require_gstreamer()
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None
if sync_playwright is None or not shutil.which(CHROMIUM):
    if os.environ.get("CI") == "true":
        raise RuntimeError("Chromium or Playwright is missing (.ci/run installs them)")
    pytest.skip("Chromium or Playwright not installed", allow_module_level=True)


def _png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_page_shows_the_camera_in_colour_and_updating(colorizer, tmp_path):
    cam = RtspCamera("--size", "320x240")
    runner = LiveRunner([parse_source(f"porch={cam.url()}", 0)], colorizer, LiveOptions())
    server = LiveServer("127.0.0.1", 0, runner.views, runner.stats).start()
    stop = StopToken()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS,
                headless=True, viewport={"width": 900, "height": 600})
            try:
                page = ctx.new_page()
                page.goto(server.url)
                page.wait_for_function(
                    "document.querySelector('#img-porch').naturalWidth > 0", timeout=30000)
                page.wait_for_function(
                    "document.querySelector('#cap-porch .state').textContent === 'live'",
                    timeout=15000)
                img = page.locator("#img-porch")
                first = _png(img.screenshot())
                page.wait_for_timeout(1000)
                second = _png(img.screenshot())
                page.screenshot(path=str(tmp_path / "page.png"))
                caption = page.locator("#cap-porch").inner_text()
            finally:
                ctx.close()
    finally:
        stop.request("test over")
        thread.join(30)
        server.stop()
        cam.close()
    assert first.shape[1] >= 300  # the stream's 320 px, as drawn
    assert colorfulness(first) > 3.0, colorfulness(first)  # colour, not gray
    assert first.shape == second.shape  # the layout does not jump as the caption updates
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 1.0  # moving
    assert "live" in caption and "fps" in caption
