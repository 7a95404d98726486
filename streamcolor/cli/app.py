"""Command line: a thin layer over :mod:`streamcolor.api`.

Exit codes: 0 done, 1 a streamcolor error (one line on stderr), 2 usage, and 128 + the
signal's number when a signal stopped the run (130 SIGINT, 143 SIGTERM, 129 SIGHUP); a
stopped run keeps its partial output.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from streamcolor.cli.logs import setup_logging
from streamcolor.cli.signals import exit_code, stop_on_signals
from streamcolor.engine.stop import StopRequested, StopToken
from streamcolor.errors import StreamcolorError, is_allocation_failure
from streamcolor.io.urls import redact

STOP_WORDS = {"SIGINT": "interrupted", "SIGTERM": "terminated (SIGTERM)",
              "SIGHUP": "hung up (SIGHUP)"}


def _fraction(text: str) -> Fraction:
    try:
        f = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r}") from None
    if f <= 0:
        raise argparse.ArgumentTypeError(f"frame rate must be positive: {text!r}")
    return f


def _int_in(lo: int, hi: int | Callable[[], int]) -> Callable[[str], int]:
    """argparse type: a whole number in lo..hi (hi may be computed when parsing)."""

    def parse(text: str) -> int:
        top = hi() if callable(hi) else hi
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not lo <= v <= top:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{top}: {text!r}")
        return v

    return parse


def _max_threads() -> int:
    from streamcolor.model.runtime import max_threads

    return max_threads()


def _seconds_in(lo: float, hi: float) -> Callable[[str], float]:
    """argparse type: a number of seconds in lo..hi."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo:g}..{hi:g} seconds: {text!r}")
        return v

    return parse


_seconds = _seconds_in(0.1, 3600)


def _float_in(lo: float, hi: Callable[[], float]) -> Callable[[str], float]:
    """argparse type: a number in lo..hi (hi computed when parsing, to keep imports lazy)."""

    def parse(text: str) -> float:
        top = hi()
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not lo <= v <= top:
            raise argparse.ArgumentTypeError(f"must be in {lo:g}..{top:g}: {text!r}")
        return v

    return parse


def _max_saturation() -> float:
    from streamcolor.model.colorizer import MAX_SATURATION

    return MAX_SATURATION


def _max_strength() -> float:
    from streamcolor.temporal.smoother import MAX_STRENGTH

    return MAX_STRENGTH


_saturation = _float_in(0.0, _max_saturation)
_temperature = _float_in(0.01, lambda: 10.0)
_class_weight = _float_in(0.0, lambda: 1.0)
_strength = _float_in(0.0, _max_strength)


def build_parser() -> argparse.ArgumentParser:
    from streamcolor.model.colorizer import MAX_RENDER_FACTOR, MIN_RENDER_FACTOR
    from streamcolor.model.runtime.loader import RUNTIMES
    from streamcolor.model.runtime.torch_runtime import MAX_BATCH
    from streamcolor.temporal.flow import PRESETS
    from streamcolor.temporal.smoother import DEFAULT_STRENGTH

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more messages (-vv: FFmpeg's own too)")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="errors only: no progress bar or summary")

    ap = argparse.ArgumentParser(prog="streamcolor", description="Colorize grayscale video, "
                                 "streams, frame sequences and photos.")
    ap.add_argument("-v", "--verbose", action="count", default=0, dest="verbose_top",
                    help=argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="command", required=True)

    m = argparse.ArgumentParser(add_help=False)  # the model options of colorize and live
    m.add_argument("--model", default=None,
                   help="shipped model name, .safetensors path, or exported .onnx/.xml")
    m.add_argument("--render-factor", type=_int_in(MIN_RENDER_FACTOR, MAX_RENDER_FACTOR),
                   default=None, help="chroma render size = N x 16 px (area kept, aspect kept; "
                   f"{MIN_RENDER_FACTOR}..{MAX_RENDER_FACTOR}, default the model's)")
    m.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    m.add_argument("--runtime", default="auto", choices=list(RUNTIMES),
                   help="what runs the model: auto (OpenVINO on a CPU, torch on CUDA), torch, "
                   "openvino or onnxruntime")
    m.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    m.add_argument("--threads", type=_int_in(1, _max_threads), default=None,
                   help="CPU threads for the model (default: the CPUs this process may use)")
    m.add_argument("--saturation", type=_saturation, default=None, metavar="S",
                   help="multiply the model's chroma by S (0 = gray, 1 = the model's own, "
                   "the default; up to 4)")
    m.add_argument("--temperature", type=_temperature, default=None, metavar="T",
                   help="models with a hybrid head: annealed-mean temperature of the colour "
                   "classes (lower = more vivid, too low = patchy; default the model's)")
    m.add_argument("--class-weight", type=_class_weight, default=None, metavar="W",
                   help="models with a hybrid head: share of the classification head in the "
                   "chroma (0 = regression only, 1 = classes only; default the model's)")
    m.add_argument("--temporal-strength", type=_strength, default=DEFAULT_STRENGTH,
                   help="flicker suppression: weight of the motion-compensated past chroma "
                   f"where motion is reliable (0 = per-frame, default {DEFAULT_STRENGTH})")

    c = sub.add_parser("colorize", parents=[common, m],
                       help="colorize an image, folder, video or stream URL")
    c.add_argument("input", help="image, folder or glob of frames, video file, or stream URL")
    c.add_argument("-o", "--output", required=True,
                   help="image file, video file (by suffix) or folder (a name ending in / or "
                   "without suffix)")
    c.add_argument("--batch-size", type=_int_in(1, MAX_BATCH), default=None,
                   help=f"frames per model call (1..{MAX_BATCH}; default by device and size)")
    c.add_argument("--codec", default=None, help="video codec (default libx264; vp9 for .webm)")
    c.add_argument("--crf", type=_int_in(0, 63), default=18)
    c.add_argument("--preset", default="veryfast", help="x264/x265 preset")
    c.add_argument("--fps", type=_fraction, default=None,
                   help="frame rate when writing a frame folder as video (default 25)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing output")
    c.add_argument("--timeout", type=_seconds, default=10.0,
                   help="give up on a stream that does not connect or sends nothing for this "
                   "many seconds (default 10)")

    e = sub.add_parser("eval", parents=[common],
                       help="measure quality and flicker of a colorized video or frame folder "
                       "(against ground truth when given)")
    e.add_argument("output", help="colorized video file, folder or glob of frames")
    e.add_argument("-r", "--reference", default=None,
                   help="ground-truth colour video/frames (same frames): adds PSNR, SSIM and "
                   "the colourfulness gap")
    e.add_argument("--input", default=None,
                   help="the grayscale input; optical flow for the warping error is computed on "
                   "it (default: on the reference, else on the output's own luma)")
    e.add_argument("--json", default=None, help="write metrics and per-frame series as JSON")
    e.add_argument("--plot", default=None, help="write a PNG of per-frame flicker over time")
    e.add_argument("--flow-preset", default="medium", choices=sorted(PRESETS))
    e.add_argument("--no-ssim", action="store_true", help="skip SSIM (the slowest metric)")
    e.add_argument("--overwrite", action="store_true",
                   help="replace existing --json/--plot files")

    li = sub.add_parser("live", parents=[common, m],
                        help="colorize live cameras: browser view, recordings, health")
    li.add_argument("sources", nargs="+", metavar="SOURCE",
                    help="[NAME=]URL (rtsp, rtsps, http(s), udp, srt, tcp) or /dev/videoN; "
                    "unnamed sources are cam0, cam1, ...")
    li.add_argument("--http", default=None, metavar="HOST:PORT",
                    help="serve the view, /healthz and /metrics (host 127.0.0.1 by default)")
    li.add_argument("--http-token", default=None,
                    help="required on every request (and to bind beyond the loopback)")
    li.add_argument("--record", type=Path, default=None, metavar="DIR",
                    help="write DIR/NAME/<start time>.mp4 segments")
    li.add_argument("--segment", type=_seconds_in(1, 86400), default=60.0,
                    help="segment seconds (60)")
    li.add_argument("--keep", type=_int_in(1, 1_000_000), default=None,
                    help="keep at most N segments per camera (oldest deleted)")
    li.add_argument("--max-latency", type=_seconds_in(0.01, 60), default=0.5,
                    help="drop frames older than this before colorizing them (0.5 s)")
    li.add_argument("--stall-timeout", type=_seconds_in(0.5, 3600), default=5.0,
                    help="a camera silent this long is lost and reconnected (5 s)")
    li.add_argument("--duration", type=_seconds_in(0.1, 1e9), default=None,
                    help="run this many seconds, then stop cleanly (default: until Ctrl-C)")
    li.add_argument("--transport", default="tcp", choices=["tcp", "udp"],
                    help="RTSP transport (tcp)")

    b = sub.add_parser("batch", parents=[common, m],
                       help="colorize a folder or glob of rasters (PNG, JPEG, TIFF, GeoTIFF; "
                       "8/16-bit) into a mirrored folder; resumable")
    b.add_argument("input", help="folder (recursive), glob or file of rasters")
    b.add_argument("-o", "--output", required=True, type=Path, metavar="OUTPUT_DIR",
                   help="output folder: the input's relative paths, formats and bit depths")
    b.add_argument("--engine", default="local", choices=["local", "ray"],
                   help='local processes, or Ray Data (pip install "streamcolor[ray]")')
    b.add_argument("--workers", type=_int_in(1, 1024), default=1,
                   help="processes (local) or actors (ray) each holding a model (1)")
    b.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (default: start a local instance)")
    b.add_argument("--sequence", action="store_true",
                   help="each folder is a time series of one place: one stretch per folder "
                   "and temporal smoothing across its frames (by acquisition date or name)")
    b.add_argument("--stretch", default=None, metavar="LOW,HIGH",
                   help="percentiles of the fixed per-file (per-sequence) stretch of 16-bit, "
                   "signed and float data into the model's input (default 1,99; given, 8-bit "
                   "data is stretched too)")
    b.add_argument("--overlap", type=_int_in(0, 1024), default=64,
                   help="pixels of overlap between the tiles of a large raster (64)")
    b.add_argument("--overwrite", action="store_true",
                   help="redo every file (default: skip what the manifest says is done)")

    x = sub.add_parser("export", parents=[common],
                       help="write a model as ONNX (.onnx) or OpenVINO IR (.xml + .bin), "
                       "metadata embedded")
    x.add_argument("model", help="shipped model name or .safetensors path")
    x.add_argument("-o", "--output", required=True, help="FILE.onnx or FILE.xml")
    x.add_argument("--overwrite", action="store_true", help="replace an existing file")

    sub.add_parser("models", parents=[common], help="list the shipped models")
    sub.add_parser("train", help="NoGAN training stages (streamcolor train -h)",
                   add_help=False)
    return ap


Outcome = tuple[int, str | None]  # exit code, the last line for stderr


def _cmd_colorize(a: argparse.Namespace, stop: StopToken) -> Outcome:
    from rich.console import Console

    from streamcolor.api import EncodeOptions, colorize_path
    from streamcolor.cli.progress import make_progress
    from streamcolor.model.colorizer import Colorizer
    from streamcolor.model.runtime import configure_threads
    from streamcolor.model.runtime.loader import resolve_runtime
    from streamcolor.model.weights import FILE_FORMATS

    console = Console(stderr=True)
    file_format = FILE_FORMATS.get(Path(a.model).suffix.lower(), "safetensors") if a.model \
        else "safetensors"
    runtime = resolve_runtime(a.runtime, a.device, file_format)
    configure_threads(a.threads)  # torch runs the model, or converts it for the others
    colorizer = Colorizer(a.model, render_factor=a.render_factor, device=a.device,
                          precision=a.precision, batch_size=a.batch_size,
                          runtime=a.runtime,  # "auto" may still fall back to torch
                          threads=None if runtime == "torch" else a.threads,
                          saturation=a.saturation, temperature=a.temperature,
                          class_weight=a.class_weight)
    encode = EncodeOptions(codec=a.codec, crf=a.crf, preset=a.preset, fps=a.fps)
    progress = None if a.quiet else make_progress(console)
    task = None
    started = False

    def on_start(source: object) -> None:
        nonlocal task, started
        if progress is not None:
            info = source.info  # type: ignore[attr-defined]
            task = progress.add_task(Path(info.label).name or info.label, total=info.frame_count)
            progress.start()
            started = True

    def advance(n: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, n)

    try:
        result = colorize_path(a.input, a.output, colorizer, overwrite=a.overwrite,
                               encode=encode, temporal_strength=a.temporal_strength,
                               progress=advance, on_start=on_start, stop=stop, check=False,
                               timeout=a.timeout)
    finally:
        if progress is not None and started:
            progress.stop()
    if result.stopped_by is not None:
        return _stopped(result.stopped_by, result.output)
    if result.error is not None:
        err = result.error
        note = f" (partial output kept at {result.output})" if result.output else ""
        if isinstance(err, StreamcolorError):
            return 1, f"streamcolor: error: {redact(str(err))}{note}"
        if is_allocation_failure(err):
            return 1, f"streamcolor: error: out of memory{note}"
        raise err
    if not a.quiet:
        console.print(f"colorized {result.frames} frames in {result.seconds:.1f} s "
                      f"({result.fps:.1f} fps) with {colorizer.name} on "
                      f"{colorizer.description} at render factor {colorizer.render_factor} "
                      f"-> {result.output}", highlight=False,
                      soft_wrap=True)
    return 0, None


def _cmd_eval(a: argparse.Namespace, stop: StopToken) -> Outcome:
    from rich.console import Console

    from streamcolor.eval.evaluation import evaluate_paths, plot_flicker, report_table, write_json
    from streamcolor.io.atomic import check_new_file

    inputs = [Path(x) for x in (a.output, a.reference, a.input) if x]
    for written in (a.json, a.plot):
        if written:  # before the (long) evaluation, not after it
            check_new_file(Path(written), a.overwrite, inputs)
    reports = evaluate_paths(a.output, a.reference, a.input, a.flow_preset, not a.no_ssim)
    console = Console()
    if not console.is_terminal:  # a pipe or file gets the whole table, not 80 columns
        console = Console(width=160)
    console.print(report_table(reports, title=f"streamcolor eval: {a.output}"))
    flow_on = a.input or a.reference or a.output
    if a.json:
        write_json(reports, a.json, {"output": a.output, "reference": a.reference,
                                     "input": a.input, "flow": f"OpenCV DIS ({a.flow_preset}) "
                                     f"on {flow_on}"})
    if a.plot:
        plot_flicker(reports, a.plot, title=Path(a.output).name)
    return 0, None


def _cmd_models(a: argparse.Namespace, stop: StopToken) -> Outcome:
    from streamcolor.model.weights import DEFAULT_MODEL, list_models

    for name, rec in sorted(list_models().items()):
        mark = "*" if name == DEFAULT_MODEL else " "
        print(f"{mark} {name:12s} {rec.arch:12s} render_factor={rec.render_factor} {rec.path}")
    return 0, None


def _cmd_export(a: argparse.Namespace, stop: StopToken) -> Outcome:
    from streamcolor.model.runtime.export import export_model

    out = export_model(a.model, Path(a.output), overwrite=a.overwrite)
    if not a.quiet:
        print(f"exported {a.model} -> {', '.join(str(p) for p in out)}")
    return 0, None


def _cmd_batch(a: argparse.Namespace, stop: StopToken) -> Outcome:
    from streamcolor.cli.batch import run_batch_command

    return run_batch_command(a, stop)


def _cmd_live(a: argparse.Namespace, stop: StopToken) -> Outcome:
    from streamcolor.live.app import run_live

    return run_live(a, stop), None


COMMANDS = {"colorize": _cmd_colorize, "eval": _cmd_eval, "models": _cmd_models,
            "export": _cmd_export, "live": _cmd_live, "batch": _cmd_batch}
# They poll the stop token (in the others, Ctrl-C raises).
STOPPABLE = frozenset({"colorize", "live", "batch"})


def _say(line: str) -> None:
    """One line on stderr; a closed terminal (SIGHUP) must not turn it into a traceback."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _stopped(reason: str, partial: object) -> Outcome:
    word = STOP_WORDS.get(reason, f"stopped ({reason})")
    note = f"; partial output kept at {partial}" if partial else "; nothing was written"
    return exit_code(reason), f"streamcolor: {word}{note}"


def main(argv: list[str] | None = None) -> int:
    """The command; ``argv`` None means this process is the command (it exits after)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up, before the stop handlers were set
        _say("streamcolor: interrupted; nothing was written")
        return exit_code("SIGINT")


def _main(argv: list[str] | None) -> int:
    if argv is None:
        from streamcolor.model.runtime.threads import prefer_passive_waiting

        # Before torch is imported: its OpenMP threads must not spin beside other busy work.
        prefer_passive_waiting()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":  # its own parser, in the training package
        from streamcolor.training.cli import main as train_main

        return train_main(args[1:])
    a = build_parser().parse_args(args)
    setup_logging(a.verbose + a.verbose_top, a.quiet)
    code, line = _run(a, restore=argv is not None)
    if line:  # after the signal window: a late signal can no longer print after it
        _say(line)
    return code


def _run(a: argparse.Namespace, restore: bool) -> Outcome:
    stop = StopToken()
    try:
        if a.command not in STOPPABLE:
            return COMMANDS[a.command](a, stop)
        with stop_on_signals(stop, restore=restore):
            return COMMANDS[a.command](a, stop)
    except StopRequested as e:
        return _stopped(e.reason, None)
    except KeyboardInterrupt:
        return _stopped("SIGINT", None)
    except StreamcolorError as e:
        return 1, f"streamcolor: error: {redact(str(e))}"
    except (MemoryError, RuntimeError) as e:
        if not is_allocation_failure(e):
            raise
        return 1, ("streamcolor: error: out of memory (try a smaller --render-factor or "
                   "--batch-size, or a smaller input)")


if __name__ == "__main__":
    sys.exit(main())
