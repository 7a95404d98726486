"""Issue 9's list of broken promises under hostile and clumsy input, one test (or a few) per
item, in its order.  Each of these failed before the fix it covers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cameras import wait_for_connection
from mediautil import leftovers, luma_planes, make_video, pattern_frame, probe, write_gray_png
from servers import counting_http, ts_over_tcp

from streamcolor import cli
from streamcolor.api import EncodeOptions, colorize_path
from streamcolor.errors import InvalidInputError, OutputError, StreamLostError
from streamcolor.io.atomic import partial_path_for, temp_path_for
from streamcolor.io.sources import open_source
from streamcolor.io.urls import redact

pytestmark = pytest.mark.usefixtures("restore_logging")
ROOT = Path(__file__).resolve().parents[1]
FFMPEG = shutil.which("ffmpeg")
need_ffmpeg = pytest.mark.skipif(
    FFMPEG is None and os.environ.get("CI") != "true",
    reason="Debian ffmpeg is the reference decoder here (.ci/run installs it)")


def _cli(capsys, *args):
    capsys.readouterr()
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, [ln for ln in out.err.splitlines() if ln.strip()], out.out


def _sub(*args, timeout=120, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "streamcolor", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True, **kw)


def _ts_bytes(tmp: Path, frames: int = 60, audio: bool = True) -> bytes:
    clip = make_video(tmp / "cam.ts", width=64, height=48, frames=frames,
                      audio="aac" if audio else None)
    return clip.read_bytes()


# 1. names with [ ] ? * are paths when they exist ---------------------------------------------

@pytest.mark.parametrize("name", ["clip [1080p].mp4", "what?.mp4", "star*.mp4"])
def test_existing_name_with_glob_characters_is_a_path(name, tmp_path, tiny_weights, capsys):
    src = make_video(tmp_path / name, frames=5)
    out = tmp_path / f"out {name}"
    rc, err, _ = _cli(capsys, "colorize", src, "-o", out, "--model", tiny_weights, "-q")
    assert rc == 0, err
    assert probe(out).frames == 5
    rc, err, table = _cli(capsys, "eval", out, "-r", src, "--no-ssim")
    assert rc == 0, err
    assert "5" in table


def test_folder_and_image_names_with_brackets(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "shots [day 1]"
    folder.mkdir()
    for i in range(3):
        write_gray_png(folder / f"f{i}.png", pattern_frame(i, 32, 24))
    rc, err, _ = _cli(capsys, "colorize", folder, "-o", tmp_path / "out [1]/", "--model",
                      tiny_weights, "-q")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "out [1]").iterdir()) == \
        ["f0.png", "f1.png", "f2.png"]
    # a real glob still works, and one that matches nothing is still an error
    rc, err, _ = _cli(capsys, "colorize", tmp_path / "shots*" / "*.png", "-o",
                      tmp_path / "globbed/", "--model", tiny_weights, "-q")
    assert rc == 0, err
    rc, err, _ = _cli(capsys, "colorize", tmp_path / "nothing*" / "*.png", "-o",
                      tmp_path / "none/", "--model", tiny_weights, "-q")
    assert rc == 1 and "zero frames" in err[0]


# 2. SIGTERM, SIGHUP and a second Ctrl-C keep the job ---------------------------------------

@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # long enough that no run ends before its signal; tiny frames keep it quick
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", width=64, height=48,
                      frames=3000, audio="aac")


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize(("signals", "code", "word"), [
    ([signal.SIGTERM], 143, "terminated (SIGTERM)"),
    ([signal.SIGHUP], 129, "hung up (SIGHUP)"),
    ([signal.SIGINT, signal.SIGINT, signal.SIGINT], 130, "interrupted"),
    ([signal.SIGTERM, signal.SIGINT], 143, "terminated (SIGTERM)"),
])
def test_signals_finalise_a_playable_partial(signals, code, word, long_clip, tiny_weights,
                                             tmp_path):
    out = tmp_path / "out" / "colored.mp4"
    out.parent.mkdir()
    proc = _sub("colorize", long_clip, "-o", out, "--model", tiny_weights, "--threads", "1",
                "-q")
    deadline = time.monotonic() + 60
    while not leftovers(out.parent) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)  # the hidden temporary video appears with the first frame
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)
    for s in signals:  # a burst: the later ones arrive while the first is being handled
        proc.send_signal(s)
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    partial = out.with_name("colored.partial.mp4")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1] == f"streamcolor: {word}; partial output kept at {partial}", err
    assert "Traceback" not in err
    assert not out.exists() and not leftovers(out.parent)  # no hidden temporary left
    info, src = probe(partial), probe(long_clip)
    assert 0 < info.frames < src.frames
    assert info.times == pytest.approx(src.times[: info.frames], abs=1e-4)
    assert info.audio and info.audio[0][1] > 0


# 3. phone videos come out upright ------------------------------------------------------------

@need_ffmpeg
@pytest.mark.parametrize("angle", [90, 270, 180])
def test_display_rotation_is_applied_like_ffmpeg(angle, tmp_path, tiny_weights, capsys):
    plain = make_video(tmp_path / "plain.mp4", width=64, height=48, frames=4)
    phone = tmp_path / "phone.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-i", str(plain),
                    "-c", "copy", "-metadata:s:v:0", f"rotate={angle}", str(phone)], check=True)
    # FFmpeg's own autorotated decode is the reference
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(phone), "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-"], check=True, capture_output=True).stdout
    w, h = (48, 64) if angle in (90, 270) else (64, 48)
    frame_bytes = w * h * 3 // 2
    want = [np.frombuffer(raw[i:i + w * h], np.uint8).reshape(h, w)
            for i in range(0, len(raw), frame_bytes)]
    out = tmp_path / "out.mp4"
    rc, err, _ = _cli(capsys, "colorize", phone, "-o", out, "--model", tiny_weights, "--crf",
                      "0", "-q")
    assert rc == 0, err
    got = luma_planes(out)
    assert len(got) == len(want) == 4
    for a, b in zip(got, want, strict=True):
        assert a.shape == (h, w)
        assert np.array_equal(a, b)


# 4. HTTP(S) inputs are read once -------------------------------------------------------------

def test_http_input_is_downloaded_once_with_its_audio(tmp_path, colorizer):
    root = tmp_path / "www"
    root.mkdir()
    make_video(root / "clip.ts", frames=20, audio="aac")
    out = tmp_path / "out.mp4"
    # the server refuses every request after the first: a second download would fail
    with counting_http(root, limit=1) as (base, stats):
        url = base.replace("http://", "http://viewer:s3cret@") + "/clip.ts"
        result = colorize_path(url, out, colorizer)
    assert result.complete and stats["requests"] == 1
    assert stats["bytes"] == (root / "clip.ts").stat().st_size
    info = probe(out)
    assert info.frames == 20 and info.audio and info.audio[0][1] > 0


# 5. a lost live stream says so ---------------------------------------------------------------

def test_stream_that_hangs_up_keeps_partial_and_fails(tmp_path, tiny_weights, capsys):
    data = _ts_bytes(tmp_path, frames=40)
    out = tmp_path / "out.mp4"
    with ts_over_tcp(data, "play") as url:
        rc, err, _ = _cli(capsys, "colorize", url, "-o", out, "--model", tiny_weights, "-q",
                          "--timeout", "5")
    partial = tmp_path / "out.partial.mp4"
    assert rc == 1 and len(err) == 1
    assert err[0] == f"streamcolor: error: {url}: the stream ended after 40 frames " \
                     f"(partial output kept at {partial})"
    assert not out.exists() and probe(partial).frames == 40
    assert probe(partial).audio  # a stream URL without a video suffix keeps its audio


def test_stream_lost_is_a_streamlost_error(tmp_path, colorizer):
    with ts_over_tcp(_ts_bytes(tmp_path, frames=12, audio=False), "play") as url:
        result = colorize_path(url, tmp_path / "o.mp4", colorizer, check=False)
    assert isinstance(result.error, StreamLostError) and isinstance(result.error,
                                                                    ConnectionError)


def test_frozen_stream_times_out_with_partial(tmp_path, tiny_weights, capsys):
    data = _ts_bytes(tmp_path, frames=90, audio=False)
    out = tmp_path / "out.mp4"
    t0 = time.monotonic()
    with ts_over_tcp(data, "stall") as url:
        rc, err, _ = _cli(capsys, "colorize", url, "-o", out, "--model", tiny_weights, "-q",
                          "--timeout", "1")
    assert time.monotonic() - t0 < 15
    assert rc == 1 and len(err) == 1
    assert "timed out after 1 s without data" in err[0] and "partial output kept at" in err[0]
    assert "Immediate exit requested" not in err[0]
    assert 0 < probe(tmp_path / "out.partial.mp4").frames < 90


def test_silent_stream_times_out_with_one_line(tmp_path, tiny_weights, capsys):
    with ts_over_tcp(b"", "silent") as url:
        rc, err, _ = _cli(capsys, "colorize", url, "-o", tmp_path / "o.mp4", "--model",
                          tiny_weights, "-q", "--timeout", "1")
    assert rc == 1 and err == [f"streamcolor: error: {url}: timed out after 1 s without data"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_while_connecting_is_honoured(tmp_path, tiny_weights):
    with ts_over_tcp(b"", "silent", hold=30) as url:
        proc = _sub("colorize", url, "-o", tmp_path / "o.mp4", "--model", tiny_weights,
                    "--timeout", "30", "-q")
        wait_for_connection(proc, int(url.rsplit(":", 1)[1].split("/")[0]))
        time.sleep(0.3)  # connected, waiting for a first packet that never comes
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 3, "Ctrl-C waited for the connection time-out"
    assert proc.returncode == 130, err
    assert err.strip() == "streamcolor: interrupted; nothing was written"


def _wait_until_it_loads_torch(proc: subprocess.Popen, limit: float = 60.0) -> None:
    """Until the child maps torch's library: it is inside ``main`` (torch is imported there,
    never at the top of the CLI), still starting up.  A fixed sleep raced a loaded machine:
    sent too early, the signal killed the interpreter before it was up."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if "libtorch_cpu" in Path(f"/proc/{proc.pid}/maps").read_text():
                return
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.002)
    raise AssertionError(f"the child never loaded torch (exit {proc.poll()})")


def test_ctrl_c_while_starting_up_is_one_line(tmp_path, tiny_weights, long_clip):
    """Ctrl-C during the seconds of imports and model loading, before the stop handlers are
    installed: one line and 130, not a KeyboardInterrupt traceback."""
    proc = _sub("colorize", long_clip, "-o", tmp_path / "o.mp4", "--model", tiny_weights, "-q")
    _wait_until_it_loads_torch(proc)  # in main, torch still importing
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "streamcolor: interrupted; nothing was written"
    assert list(tmp_path.iterdir()) == []


# 6. truncated and damaged files --------------------------------------------------------------

def _faststart_clip(tmp: Path, frames: int = 40) -> Path:
    """An MP4 whose index comes first (as web and phone files have), so half of it still
    opens and says it should hold ``frames`` frames."""
    path = tmp / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "10", "g": "5"}
        for i in range(frames):
            g = pattern_frame(i, 64, 48)
            vf = av.VideoFrame.from_ndarray(np.repeat(g[..., None], 3, 2), format="rgb24")
            for p in vs.encode(vf.reformat(format="yuv420p")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def test_truncated_file_is_partial_with_its_reason(tmp_path, tiny_weights, capsys):
    full = _faststart_clip(tmp_path)
    half = tmp_path / "half.mp4"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "out.mp4"
    rc, err, _ = _cli(capsys, "colorize", half, "-o", out, "--model", tiny_weights, "-q")
    assert rc == 1 and len(err) == 1
    partial = tmp_path / "out.partial.mp4"
    n = probe(partial).frames
    assert 5 < n < 40
    assert err[0] == (f"streamcolor: error: {half}: ends after {n} of 40 frames "
                      f"({n / 25:.2f} s of 1.60 s): the file is truncated (partial output kept "
                      f"at {partial})")
    assert not out.exists()


def test_damage_mid_file_is_concealed_not_fatal(tmp_path, colorizer, caplog):
    full = _faststart_clip(tmp_path, frames=40)
    data = bytearray(full.read_bytes())
    rng = np.random.default_rng(5)
    mid = len(data) // 2
    data[mid:mid + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    # reference: every frame a decoder that skips bad packets gets out of this file
    ref = 0
    with av.open(str(damaged)) as c:
        for pkt in c.demux(video=0):
            with contextlib.suppress(av.error.InvalidDataError):
                ref += len(pkt.decode())
    result = colorize_path(damaged, tmp_path / "out.mp4", colorizer)
    assert result.complete and result.frames == ref >= 35
    assert probe(tmp_path / "out.mp4").frames == ref


# 7. huge still images ------------------------------------------------------------------------

def _png_header_only(path: Path, width: int, height: int) -> Path:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + chunk + \
        zlib.crc32(chunk).to_bytes(4, "big")
    path.write_bytes(data + b"\0" * 64)
    return path


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, tiny_weights,
                                                               capsys):
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    t0 = time.monotonic()
    rc, err, _ = _cli(capsys, "colorize", bomb, "-o", tmp_path / "out.png", "--model",
                      tiny_weights)
    assert time.monotonic() - t0 < 5
    assert rc == 1 and err == [f"streamcolor: error: {bomb}: 30000x30000 is 900 megapixels, "
                               "over the limit of 268 (set STREAMCOLOR_MAX_PIXELS to allow "
                               "more)"]


def test_pixel_limit_applies_to_real_images_and_can_be_raised(tmp_path, tiny_weights, capsys,
                                                              monkeypatch):
    img = write_gray_png(tmp_path / "img.png", pattern_frame(0, 200, 100))
    monkeypatch.setenv("STREAMCOLOR_MAX_PIXELS", "10000")
    rc, err, _ = _cli(capsys, "colorize", img, "-o", tmp_path / "o.png", "--model",
                      tiny_weights)
    assert rc == 1 and "200x100" in err[0] and "over the limit" in err[0]
    monkeypatch.setenv("STREAMCOLOR_MAX_PIXELS", "20000")
    rc, err, _ = _cli(capsys, "colorize", img, "-o", tmp_path / "o.png", "--model",
                      tiny_weights, "-q")
    assert rc == 0, err


def test_composition_works_in_bands(rng):
    """The float work of composing a large frame is a few bands, not ~46 bytes a pixel."""
    import tracemalloc

    from streamcolor.compose import compose_rgb

    h, w = 3000, 4000
    luma = rng.integers(0, 256, (h, w), dtype=np.uint8)
    chroma = (rng.random((224, 288, 2), dtype=np.float32) - 0.5) * 0.4
    tracemalloc.start()
    out = compose_rgb(luma, chroma)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    assert peak < 3 * h * w + 64e6, f"{peak / (h * w):.1f} bytes per pixel"


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
@pytest.mark.parametrize("runtime", ["torch", "auto"])
def test_out_of_memory_is_one_line(runtime, tmp_path, tiny_weights):
    """With torch the model fits and the image does not; with the default runtime the
    conversion may run out first: one line either way."""
    img = tmp_path / "big.png"
    assert cv2.imwrite(str(img), np.full((6000, 6000), 128, np.uint8))
    code = (
        "import resource, sys\n"
        "from streamcolor.cli import main\n"
        "import av, av.logging, cv2, rich.console, rich.logging, torch, openvino\n"
        "import streamcolor.api, streamcolor.model.colorizer, streamcolor.cli.progress\n"
        "soft = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (soft + 60 * 2**20, resource.RLIM_INFINITY))\n"
        f"sys.exit(main(['colorize', {str(img)!r}, '-o', {str(tmp_path / 'o.png')!r},"
        f" '--model', {str(tiny_weights)!r}, '--runtime', {runtime!r}, '--threads', '1',"
        " '-q']))\n")  # one thread: libgomp aborts on its own when it cannot start threads
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               STREAMCOLOR_CACHE=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 1, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "memory" in lines[0] and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "o.png").exists() and not leftovers(tmp_path)


# 8. audio kept in every container the README names --------------------------------------------

@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "opus"), (".mpg", "mp2"),
                                               (".mkv", "aac"), (".mov", "aac")])
def test_audio_kept_or_reencoded_for_the_container(suffix, codec, media, colorizer, tmp_path):
    out = tmp_path / f"out{suffix}"
    result = colorize_path(media["aac"], out, colorizer)
    assert result.complete
    info = probe(out)
    assert info.frames == 12
    assert info.audio and info.audio[0][0] == codec and info.audio[0][1] > 0


# 9. odd options and paths --------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--threads", "-2"], ["--threads", "0"],
                                  ["--threads", "100000"], ["--render-factor", "0"],
                                  ["--render-factor", "65"], ["--batch-size", "0"],
                                  ["--batch-size", "-3"], ["--batch-size", "100000"],
                                  ["--crf", "99"], ["--timeout", "0"]])
def test_bad_numbers_are_usage_errors(args, media, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["colorize", str(media["plain"]), "-o", str(tmp_path / "o.mp4"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and args[0] in err
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_named_like_a_video_refused_before_work(media, tmp_path, tiny_weights,
                                                                capsys):
    (tmp_path / "x.mp4").mkdir()
    rc, err, _ = _cli(capsys, "colorize", media["plain"], "-o", tmp_path / "x.mp4",
                      "--overwrite", "--model", tiny_weights)
    assert rc == 1 and err == [f"streamcolor: error: {tmp_path / 'x.mp4'}: is a folder, not a "
                               "video file (end the name with / to write frames into it)"]
    assert list(tmp_path.iterdir()) == [tmp_path / "x.mp4"]


def test_longest_valid_output_name_works_and_its_partial_fits(media, tmp_path, colorizer):
    name = "n" * 250 + ".mp4"  # 254 bytes: the limit is 255
    out = tmp_path / name
    assert colorize_path(media["plain"], out, colorizer).complete
    assert probe(out).frames == 8 and not leftovers(tmp_path)
    assert len(temp_path_for(out).name.encode()) <= 255
    assert len(partial_path_for(out).name.encode()) <= 255
    assert partial_path_for(out).suffix == ".mp4"


def test_broken_models_index_is_one_line(tmp_path, media, capsys, monkeypatch):
    (tmp_path / "models.json").write_text("{not json")
    monkeypatch.setenv("STREAMCOLOR_MODELS", str(tmp_path))
    rc, err, _ = _cli(capsys, "colorize", media["plain"], "-o", tmp_path / "o.mp4")
    assert rc == 1 and len(err) == 1
    assert err[0].startswith(f"streamcolor: error: {tmp_path / 'models.json'}: cannot read the "
                             "model index (not valid JSON")
    rc, err, _ = _cli(capsys, "models")
    assert rc == 1 and len(err) == 1


class Gadget:
    def __reduce__(self):
        return (print, ("pwned",))


def test_train_render_with_a_pickled_generator_is_one_line(tmp_path, capsys):
    import torch

    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": Gadget()}, evil)
    (tmp_path / "train").mkdir()
    write_gray_png(tmp_path / "train" / "a.png", pattern_frame(0, 64, 64))
    rc = cli.main(["train", "render", "--train", str(tmp_path / "train"), "--generator",
                   str(evil), "--run", str(tmp_path / "run"), "--count", "1"])
    err = capsys.readouterr()
    lines = [ln for ln in err.err.splitlines() if ln.strip() and "INFO" not in ln]
    assert rc == 1, err.err
    assert "pwned" not in err.out
    assert lines[-1].startswith(f"streamcolor train: error: {evil}: not a plain tensor "
                                "checkpoint")
    assert "Traceback" not in err.err


# 10. eval on size changes and tiny frames ----------------------------------------------------

def test_eval_of_a_mixed_size_folder(tmp_path, tiny_weights, capsys):
    src = tmp_path / "mixed"
    src.mkdir()
    for i, (w, h) in enumerate([(64, 48), (64, 48), (40, 30), (40, 30), (64, 48)]):
        write_gray_png(src / f"f{i}.png", pattern_frame(i, w, h))
    rc, err, _ = _cli(capsys, "colorize", src, "-o", tmp_path / "col/", "--model",
                      tiny_weights, "-q")
    assert rc == 0, err
    js = tmp_path / "m.json"
    rc, err, _ = _cli(capsys, "eval", tmp_path / "col", "--input", src, "--json", js)
    assert rc == 0, err
    m = json.loads(js.read_text())["metrics"]["output"]
    assert m["frames"] == 5 and m["cuts"] == 2  # the two size changes are skipped pairs
    assert m["warp_error"] is not None


def test_eval_of_tiny_frames(tmp_path, capsys):
    frames = [np.full((8, 6, 3), 40 + 10 * i, np.uint8) for i in range(4)]
    folder = tmp_path / "tiny"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"t{i}.png"), f)
    rc, err, _ = _cli(capsys, "eval", folder, "-r", folder)
    assert rc == 0, err


# 11-13. silent defaults, -v, unwritable video suffixes --------------------------------------

def test_verbose_flag_after_the_subcommand(media, tmp_path, tiny_weights, capsys):
    rc, err, _ = _cli(capsys, "colorize", media["plain"], "-o", tmp_path / "o.mp4", "-v",
                      "--model", tiny_weights)
    assert rc == 0, err


@pytest.mark.parametrize("suffix", [".gif", ".ogv", ".mp44", ".v2"])
def test_unwritable_or_unknown_output_suffix_refused(suffix, media, tmp_path, tiny_weights,
                                                     capsys):
    out = tmp_path / f"out{suffix}"
    rc, err, _ = _cli(capsys, "colorize", media["plain"], "-o", out, "--model", tiny_weights)
    assert rc == 1 and len(err) == 1
    assert err[0].startswith(f"streamcolor: error: {out}: unknown output type '{suffix}'")
    assert list(tmp_path.iterdir()) == []


def test_trailing_slash_or_no_suffix_is_a_folder(media, tmp_path, tiny_weights, capsys):
    rc, err, _ = _cli(capsys, "colorize", media["plain"], "-o", f"{tmp_path / 'a.v2'}/",
                      "--model", tiny_weights, "-q")
    assert rc == 0, err
    assert len(list((tmp_path / "a.v2").glob("*.png"))) == 8


def test_missing_parent_folders_of_a_folder_output_are_created(media, tmp_path, colorizer):
    out = tmp_path / "a" / "b" / "frames"
    assert colorize_path(media["plain"], out, colorizer).complete
    assert len(list(out.glob("*.png"))) == 8 and not leftovers(out.parent)


# Weaker ones ---------------------------------------------------------------------------------

def test_no_library_noise_before_the_error_line(tmp_path, tiny_weights, media):
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    cases = [
        ["colorize", bad_png, "-o", tmp_path / "o.png"],
        ["colorize", media["plain"], "-o", tmp_path / "o.mp4", "--codec", "libx265",
         "--preset", "nosuchpreset"],
        ["colorize", media["plain"], "-o", tmp_path / "o2.mp4", "--preset", "nosuchpreset"],
    ]
    for args in cases:
        proc = _sub(*args, "--model", tiny_weights, "-q")
        out, err = proc.communicate(timeout=120)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1, (args, err)
        assert lines[0].startswith("streamcolor: error:"), err
        assert out == ""


def test_output_to_stdout_and_input_from_stdin_refused(media, tmp_path, tiny_weights, capsys):
    rc, err, _ = _cli(capsys, "colorize", media["plain"], "-o", "-", "--model", tiny_weights)
    assert rc == 1 and "writing to standard output is not supported" in err[0]
    rc, err, _ = _cli(capsys, "colorize", "-", "-o", tmp_path / "o.mp4", "--model",
                      tiny_weights)
    assert rc == 1 and "reading from standard input is not supported" in err[0]


def test_size_change_mid_video_is_said(tmp_path, colorizer, caplog):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, (w, h) in enumerate([(64, 48)] * 3 + [(32, 24)] * 2):
        write_gray_png(folder / f"f{i}.png", pattern_frame(i, w, h))
    result = colorize_path(folder, tmp_path / "o.mp4", colorizer)
    assert result.complete and probe(tmp_path / "o.mp4").frames == 5
    said = [w for w in result.warnings if "scaled to fit" in w]
    assert said == [f"{tmp_path / 'o.mp4'}: frame 3 is 32x24 but the video is 64x48: frames "
                    "of another size are scaled to fit"]
    assert any("scaled to fit" in r.getMessage() for r in caplog.records)


def _with_subtitles(tmp: Path) -> Path:
    """An MKV with a video stream and one SubRip subtitle ("hello there", 0-0.3 s)."""
    srt = tmp / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,300\nhello there\n\n")
    path = tmp / "subs.mkv"
    with av.open(str(srt)) as subs, av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        ss = out.add_stream_from_template(subs.streams.subtitles[0])
        for i in range(10):
            vf = av.VideoFrame.from_ndarray(
                np.repeat(pattern_frame(i, 64, 48)[..., None], 3, 2), format="rgb24")
            for p in vs.encode(vf.reformat(format="yuv420p")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        for pkt in subs.demux(subs.streams.subtitles[0]):
            if pkt.size:
                pkt.stream = ss
                out.mux(pkt)
    return path


def test_subtitles_kept_in_mkv_and_dropping_them_is_said(tmp_path, colorizer):
    src = _with_subtitles(tmp_path)
    out = tmp_path / "o.mkv"
    assert colorize_path(src, out, colorizer).complete
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "subtitle"]
        assert [bytes(p) for p in c.demux(subtitles=0) if p.size] == [b"hello there"]
    result = colorize_path(src, tmp_path / "o.mp4", colorizer)
    assert result.complete
    assert any("subtitle stream 1" in w and "cannot be stored in" in w and "dropped" in w
               for w in result.warnings), result.warnings


def test_ten_bit_input_stays_ten_bit(tmp_path, colorizer):
    src = make_video(tmp_path / "ten.mp4", frames=5, pix_fmt="yuv420p10le")
    out = tmp_path / "o.mp4"
    result = colorize_path(src, out, colorizer, encode=EncodeOptions(options={"qp": "0"}))
    assert result.complete
    with av.open(str(src)) as a, av.open(str(out)) as b:
        fa, fb = list(a.decode(video=0)), list(b.decode(video=0))
        assert fb[0].format.name == "yuv420p10le"
        for x, y in zip(fa, fb, strict=True):
            ya = np.frombuffer(x.planes[0], "<u2").reshape(-1, x.planes[0].line_size // 2)
            yb = np.frombuffer(y.planes[0], "<u2").reshape(-1, y.planes[0].line_size // 2)
            assert np.array_equal(ya[:48, :64], yb[:48, :64])  # the 10-bit luma, exactly
    # a codec without a 10-bit mode says so
    result = colorize_path(src, tmp_path / "o.mpg", colorizer)
    assert result.complete
    assert any("10-bit input written as 8-bit" in w for w in result.warnings)


def test_overwrite_into_a_folder_leaves_no_stale_frames(tmp_path, colorizer, media):
    out = tmp_path / "frames"
    colorize_path(media["plain"], out, colorizer)  # 8 frames
    assert len(list(out.iterdir())) == 8
    short = make_video(tmp_path / "short.mp4", frames=3)
    colorize_path(short, out, colorizer, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in (1, 2, 3)]
    assert not leftovers(tmp_path) and sorted(p.name for p in tmp_path.iterdir()) == \
        ["frames", "short.mp4"]


def test_overwrite_refuses_a_folder_holding_other_files(tmp_path, colorizer, media):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="holds other files than frames"):
        colorize_path(media["plain"], out, colorizer, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"


def test_partial_never_replaces_an_existing_file(tmp_path, tiny_weights, capsys):
    data = _ts_bytes(tmp_path, frames=10, audio=False)
    (tmp_path / "out.partial.mp4").write_bytes(b"an earlier partial")
    with ts_over_tcp(data, "play") as url:
        rc, err, _ = _cli(capsys, "colorize", url, "-o", tmp_path / "out.mp4", "--model",
                          tiny_weights, "-q")
    assert rc == 1 and err[0].endswith(f"(partial output kept at {tmp_path / 'out.partial-2.mp4'})")
    assert (tmp_path / "out.partial.mp4").read_bytes() == b"an earlier partial"
    assert probe(tmp_path / "out.partial-2.mp4").frames == 10


def test_macos_resource_forks_are_not_frames(tmp_path, colorizer):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        write_gray_png(folder / f"f{i}.png", pattern_frame(i, 32, 24))
    (folder / "._f0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    result = colorize_path(folder, tmp_path / "out/", colorizer)
    assert result.frames == 3


@pytest.mark.parametrize(("url", "secret"), [
    ("rtsp://cam/live?user=admin&password=s3cr3t&channel=1", "s3cr3t"),
    ("rtsp://admin:pa/ss@127.0.0.1:1/live", "pa/ss"),
    ("http://127.0.0.1:1/x.mp4?token=abcdef", "abcdef"),
])
def test_credentials_masked_in_query_strings_and_slashed_passwords(url, secret, tmp_path,
                                                                   tiny_weights, capsys):
    assert secret not in redact(url)
    rc, err, _ = _cli(capsys, "colorize", url, "-o", tmp_path / "o.mp4", "--model",
                      tiny_weights, "--timeout", "2")
    assert rc == 1 and len(err) == 1 and secret not in err[0] and "***" in err[0]


def test_eval_json_not_replaced_silently_and_checked_first(tmp_path, media, capsys):
    js = tmp_path / "m.json"
    js.write_text("precious")
    rc, err, _ = _cli(capsys, "eval", media["plain"], "--json", js)
    assert rc == 1 and "already exists (use --overwrite" in err[0]
    assert js.read_text() == "precious"
    rc, err, _ = _cli(capsys, "eval", media["plain"], "--json", js, "--overwrite")
    assert rc == 0 and json.loads(js.read_text())["metrics"]
    t0 = time.monotonic()
    rc, err, _ = _cli(capsys, "eval", media["plain"], "--json", tmp_path / "nodir" / "m.json")
    assert rc == 1 and "does not exist" in err[0] and time.monotonic() - t0 < 2


# Python API: clear TypeError/ValueError ------------------------------------------------------

def test_api_rejects_bad_frames_clearly(colorizer):
    ok = np.zeros((24, 32), np.uint8)
    with pytest.raises(TypeError, match="numpy array"):
        colorizer.colorize([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"2-D luma array \(H, W\), got shape \(2, 3, 4, 5\)"):
        colorizer.colorize(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="int64"):
        colorizer.predict([ok.astype(np.int64)])
    with pytest.raises(ValueError, match="NaN or infinite"):
        colorizer.predict([np.full((24, 32), np.nan, np.float32)])
    with pytest.raises(ValueError, match="one size; frame 0 is 32x24, frame 1 is 16x24"):
        colorizer.predict([ok, np.zeros((24, 16), np.uint8)])
    with pytest.raises(ValueError, match="empty"):
        colorizer.colorize(np.zeros((0, 5), np.uint8))
    with pytest.raises(TypeError, match="sequence of frames"):
        colorizer.predict(ok)
    # the sample types the CLI takes, the API takes: uint16 in, uint16 out
    rgb16 = colorizer.colorize(pattern_frame(1, 32, 24).astype(np.uint16) * 257)
    assert rgb16.dtype == np.uint16 and rgb16.shape == (24, 32, 3)


def test_frames_carry_stream_and_arrival_time(media):
    t0 = time.time()
    with open_source(media["plain"]) as src:
        frames = list(src)
    assert all(f.stream_id == "0" and t0 <= f.arrived_at <= time.time() for f in frames)
    assert frames[0].captured_at is None and frames[0].latency >= 0


def test_unsupported_stream_errors_are_invalid_input():
    with pytest.raises(InvalidInputError):
        open_source("rtsp://127.0.0.1:1/nothing", timeout=2)
