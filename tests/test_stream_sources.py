"""Network sources, against servers on the loopback interface only."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from mediautil import make_video, probe

from streamcolor.api import colorize_path
from streamcolor.errors import InvalidInputError, StreamcolorError
from streamcolor.io.sources import open_source


@pytest.fixture()
def http_server(tmp_path: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_video_is_colorized_with_frames_and_timestamps(http_server, colorizer, tmp_path):
    root, base = http_server
    clip = make_video(root / "clip.ts", width=64, height=48, frames=9)
    out = tmp_path / "out" / "colored.mp4"
    out.parent.mkdir()
    result = colorize_path(f"{base}/clip.ts", out, colorizer)
    src, dst = probe(clip), probe(out)
    assert result.frames == src.frames == dst.frames == 9
    assert dst.times == pytest.approx(src.times, abs=1e-6)


def test_http_missing_file_is_one_clear_error(http_server):
    _, base = http_server
    with pytest.raises(StreamcolorError) as err:
        open_source(f"{base}/nothing.ts")
    assert "nothing.ts" in str(err.value)
    assert "\n" not in str(err.value)


def test_refused_stream_error_masks_password():
    # Port 9 on loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(InvalidInputError) as err:
        open_source("rtsp://admin:hunter2@127.0.0.1:9/live")
    msg = str(err.value)
    assert "hunter2" not in msg
    assert "admin:***@127.0.0.1" in msg


def test_http_error_with_credentials_masks_password(http_server):
    _, base = http_server
    url = base.replace("http://", "http://viewer:s3cret@") + "/nothing.ts"
    with pytest.raises(StreamcolorError) as err:
        open_source(url)
    msg = str(err.value)
    assert "s3cret" not in msg and "viewer:***@" in msg and "nothing.ts" in msg
