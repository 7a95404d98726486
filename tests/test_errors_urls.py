"""Error classes, URL classification and credential redaction (also in CLI log lines)."""

from __future__ import annotations

import logging

import pytest

from streamcolor import errors
from streamcolor.api import check_output
from streamcolor.cli import logs
from streamcolor.io.sources import open_source
from streamcolor.io.urls import is_url, redact, url_scheme


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.InputNotFoundError, FileNotFoundError),
        (errors.InvalidInputError, ValueError),
        (errors.UnsupportedURLError, ValueError),
        (errors.OutputError, OSError),
        (errors.ModelError, LookupError),
        (errors.WeightsIntegrityError, errors.ModelError),
        (errors.WeightsIntegrityError, LookupError),
        (errors.StreamLostError, ConnectionError),
    ],
)
def test_error_classes_subclass_both(cls, builtin):
    assert issubclass(cls, errors.StreamcolorError)
    assert issubclass(cls, builtin)
    e = cls("x")
    assert isinstance(e, Exception) and str(e) == "x"


def test_errors_are_catchable_as_builtins(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(ValueError):
        open_source(tmp_path / "empty.mp4")
    with pytest.raises(ValueError):
        open_source("gopher://host/x.mp4")
    img = tmp_path / "a.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.zeros((8, 8), np.uint8))
    with pytest.raises(OSError):
        check_output(open_source(img), img, overwrite=True)


def test_redact_hides_password():
    url = "rtsp://admin:hunter2@10.0.0.1/stream"
    assert redact(url) == "rtsp://admin:***@10.0.0.1/stream"
    assert "hunter2" not in redact(f"cannot open {url} (timeout)")
    two = redact("a rtsp://u:p1@h/s and http://v:p2@h:8080/x?y=1 end")
    assert "p1" not in two and "p2" not in two
    assert two == "a rtsp://u:***@h/s and http://v:***@h:8080/x?y=1 end"
    assert redact("rtsp://10.0.0.1/stream") == "rtsp://10.0.0.1/stream"
    assert redact("/plain/path:with@signs.mp4") == "/plain/path:with@signs.mp4"
    assert redact("rtsp://admin:pa:ss@h/s") == "rtsp://admin:***@h/s"


def test_redact_password_with_at_sign():
    assert "ss@" not in redact("rtsp://admin:p@ss@10.0.0.1/s")


def test_is_url_and_scheme():
    assert is_url("rtsp://h/s") and is_url("HTTP://h/x.mp4") and is_url("file:///tmp/x.mp4")
    assert not is_url("/tmp/x.mp4") and not is_url("C:\\x.mp4") and not is_url("x.mp4")
    assert url_scheme("RTSP://h/s") == "rtsp"


def _record(msg, args):
    return logging.LogRecord("streamcolor.test", logging.WARNING, __file__, 1, msg, args, None)


def test_cli_log_filter_masks_passwords():
    f = logs.RedactingFilter()
    r = _record("opening rtsp://admin:hunter2@10.0.0.1/stream", None)
    assert f.filter(r) is True
    assert r.getMessage() == "opening rtsp://admin:***@10.0.0.1/stream"
    r = _record("opening %s after %d tries", ("rtsp://admin:hunter2@10.0.0.1/stream", 3))
    f.filter(r)
    assert r.getMessage() == "opening rtsp://admin:***@10.0.0.1/stream after 3 tries"


def test_cli_logging_setup_masks_passwords(capsys, restore_logging):
    logs.setup_logging(verbose=1, quiet=False)
    log = logging.getLogger("streamcolor.io.sources")
    log.warning("lost stream %s", "rtsp://admin:hunter2@10.0.0.1/stream")
    log.info("retrying rtsp://admin:hunter2@10.0.0.1/stream")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "hunter2" not in text
    assert text.count("rtsp://admin:***@10.0.0.1/stream") == 2


def test_cli_log_filter_masks_non_str_args():
    f = logs.RedactingFilter()
    r = _record("stream failed: %s", (ConnectionError("rtsp://admin:hunter2@h/s: refused"),))
    f.filter(r)
    assert "hunter2" not in r.getMessage()


def test_cli_log_filter_keeps_mapping_args():
    f = logs.RedactingFilter()
    r = _record("opening %(url)s", ({"url": "rtsp://admin:hunter2@h/s"},))
    f.filter(r)
    assert r.getMessage() == "opening rtsp://admin:***@h/s"
