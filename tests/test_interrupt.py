"""Errors, stop requests and Ctrl-C mid-run: an explicit result (or the propagating
KeyboardInterrupt) and a playable partial output."""

from __future__ import annotations

import os
import signal
import time

import pytest
from mediautil import leftovers, make_video, probe

from streamcolor import cli
from streamcolor.api import colorize_path
from streamcolor.engine.pipeline import Pipeline
from streamcolor.engine.result import RunStatus
from streamcolor.engine.stop import StopToken
from streamcolor.io.sinks import FolderSink, VideoSink
from streamcolor.io.sources import Source, VideoSource, open_source
from streamcolor.model.colorizer import Colorizer


@pytest.fixture
def clip(tmp_path):
    (tmp_path / "in").mkdir()
    return make_video(tmp_path / "in" / "clip.mp4", frames=24, audio="aac")


class FailingSink(VideoSink):
    """A video sink whose ``write`` raises ``exc`` once ``after`` frames were written."""

    def __init__(self, *args, exc: BaseException, after: int, **kw) -> None:
        super().__init__(*args, **kw)
        self.exc, self.after = exc, after

    def write(self, frame, chroma) -> None:
        if self.frames_written == self.after:
            raise self.exc
        super().write(frame, chroma)


class FailingColorizer:
    """Wraps a Colorizer; its ``predict`` raises ``exc`` on call number ``on_call``."""

    def __init__(self, inner: Colorizer, exc: BaseException, on_call: int) -> None:
        self.inner, self.exc, self.on_call, self.calls = inner, exc, on_call, 0

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    def predict(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.on_call:
            raise self.exc
        return self.inner.predict(*args, **kwargs)


class FailingSource(Source):
    """Yields the frames of a video, then raises ``exc`` after ``after`` frames."""

    def __init__(self, path, exc: BaseException, after: int) -> None:
        self.inner = VideoSource(str(path))
        self.info = self.inner.info
        self.exc, self.after = exc, after

    def __iter__(self):
        for frame in self.inner:
            if frame.index == self.after:
                raise self.exc
            yield frame

    def close(self) -> None:
        self.inner.close()


def _check_partial(out, expected_frames, src):
    partial = out.with_name(f"{out.stem}.partial{out.suffix}")
    assert partial.exists()
    assert not out.exists()
    assert not leftovers(out.parent)
    info, ref = probe(partial), probe(src)  # probe decodes every frame: playable
    assert info.frames == expected_frames
    assert info.times == pytest.approx(ref.times[:expected_frames], abs=1e-4)
    assert (info.width, info.height) == (ref.width, ref.height)
    # audio kept up to where the video stops
    assert len(info.audio) == 1 and 0 < info.audio[0][1] < ref.audio[0][1]
    return partial


def test_sink_error_keeps_playable_partial_in_the_result(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = open_source(clip)
    sink = FailingSink(out, rate=src.info.rate, side=src.side, exc=RuntimeError("disk"),
                       after=6)
    result = Pipeline(colorizer).run(src, sink)
    partial = _check_partial(out, 6, clip)
    assert result.status is RunStatus.PARTIAL and not result.complete
    assert result.output == result.partial_output == partial
    assert result.frames == 6 and isinstance(result.error, RuntimeError)
    with pytest.raises(RuntimeError, match="disk"):
        result.raise_for_error()


def test_keyboard_interrupt_keeps_partial_then_propagates(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = open_source(clip)
    sink = FailingSink(out, rate=src.info.rate, side=src.side, exc=KeyboardInterrupt(),
                       after=6)
    with pytest.raises(KeyboardInterrupt):
        Pipeline(colorizer).run(src, sink)
    _check_partial(out, 6, clip)


def test_colorizer_error_via_colorize_path(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    failing = FailingColorizer(colorizer, RuntimeError("stop"), on_call=3)
    with pytest.raises(RuntimeError, match="stop"):  # check=True: raised, partial kept
        colorize_path(clip, out, failing)
    done = 2 * colorizer.batch_size  # two batches went through before the third failed
    _check_partial(out, done, clip)
    out2 = tmp_path / "out2.mp4"
    failing = FailingColorizer(colorizer, RuntimeError("stop"), on_call=3)
    result = colorize_path(clip, out2, failing, check=False)
    assert result.frames == done and result.partial_output == _check_partial(out2, done, clip)
    # a KeyboardInterrupt is never swallowed into a result
    failing = FailingColorizer(colorizer, KeyboardInterrupt(), on_call=3)
    with pytest.raises(KeyboardInterrupt):
        colorize_path(clip, tmp_path / "out3.mp4", failing, check=False)
    _check_partial(tmp_path / "out3.mp4", done, clip)


def test_stop_token_ends_run_cleanly_with_partial(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    stop = StopToken()
    calls = {"n": 0}

    class Stopping(FailingColorizer):
        def predict(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == 2:
                stop.request("SIGTERM")  # as the CLI's signal handler does
            return self.inner.predict(*a, **k)

    result = colorize_path(clip, out, Stopping(colorizer, RuntimeError(), -1), stop=stop)
    assert result.stopped_by == "SIGTERM" and result.error is None
    assert result.status is RunStatus.PARTIAL
    # the batch being colourised when the stop came is still written
    _check_partial(out, 2 * colorizer.batch_size, clip)


def test_exception_before_first_frame_leaves_nothing(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = open_source(clip)
    sink = FailingSink(out, rate=src.info.rate, side=src.side, exc=RuntimeError("x"), after=0)
    result = Pipeline(colorizer).run(src, sink)
    assert result.status is RunStatus.FAILED and result.output is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_source_exception_reaches_caller(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = FailingSource(clip, RuntimeError("decoder exploded"), after=10)
    sink = VideoSink(out, rate=src.info.rate, side=src.side)
    t0 = time.monotonic()
    result = Pipeline(colorizer).run(src, sink)
    assert time.monotonic() - t0 < 20
    assert isinstance(result.error, RuntimeError) and "decoder exploded" in str(result.error)
    assert not out.exists() and not leftovers(tmp_path)
    partial = tmp_path / "out.partial.mp4"
    assert result.output == partial  # the ten frames before the failure were written
    assert probe(partial).frames == 10


def test_source_exception_at_start(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = FailingSource(clip, OSError("gone"), after=0)
    result = Pipeline(colorizer).run(src, VideoSink(out, rate=src.info.rate))
    assert isinstance(result.error, OSError) and result.status is RunStatus.FAILED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_folder_sink_interrupted_keeps_written_frames(colorizer, clip, tmp_path):
    out = tmp_path / "frames"
    failing = FailingColorizer(colorizer, RuntimeError("x"), on_call=2)
    result = Pipeline(failing).run(open_source(clip), FolderSink(out))
    partial = tmp_path / "frames.partial"
    assert result.partial_output == partial and not out.exists()
    assert sorted(p.name for p in partial.iterdir()) == \
        [f"frame_{i:06d}.png" for i in range(1, colorizer.batch_size + 1)]
    assert not leftovers(tmp_path)


def test_cli_ctrl_c_exit_130_with_partial(tiny_weights, clip, tmp_path, capsys, monkeypatch,
                                          restore_logging):
    calls = {"n": 0}
    real_predict = Colorizer.predict

    def predict(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, to the CLI's handler
        return real_predict(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "predict", predict)
    out = tmp_path / "cli.mp4"
    rc = cli.main(["colorize", str(clip), "-o", str(out), "--model", str(tiny_weights),
                   "--batch-size", "4", "--precision", "fp32", "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 130
    partial = tmp_path / "cli.partial.mp4"
    assert err == f"streamcolor: interrupted; partial output kept at {partial}"
    _check_partial(out, 8, clip)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


class SlowColorizer(FailingColorizer):
    """A colorizer slower than decoding (as in real use): each batch takes ``delay`` s."""

    def __init__(self, inner: Colorizer, delay: float) -> None:
        super().__init__(inner, RuntimeError("unused"), on_call=-1)
        self.delay = delay

    def predict(self, *args, **kwargs):
        time.sleep(self.delay)
        return super().predict(*args, **kwargs)


def test_source_error_keeps_frames_decoded_before_it(colorizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    src = FailingSource(clip, RuntimeError("bad data"), after=10)
    result = Pipeline(SlowColorizer(colorizer, 0.3)).run(src, VideoSink(out, rate=src.info.rate))
    assert "bad data" in str(result.error) and result.partial_output is not None
    # every frame read before the failure, although the model was slower than the reader
    assert probe(result.partial_output).frames == 10
