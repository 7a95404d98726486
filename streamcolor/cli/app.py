"""Command line: a thin layer over :mod:`streamcolor.api`.

Exit codes: 0 done, 1 a streamcolor error (one line on stderr), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

from streamcolor.cli.logs import setup_logging
from streamcolor.errors import StreamcolorError
from streamcolor.io.urls import redact


def _fraction(text: str) -> Fraction:
    try:
        f = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r}") from None
    if f <= 0:
        raise argparse.ArgumentTypeError(f"frame rate must be positive: {text!r}")
    return f


def _strength(text: str) -> float:
    from streamcolor.temporal.smoother import MAX_STRENGTH

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= MAX_STRENGTH:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_STRENGTH}: {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from streamcolor.temporal.flow import PRESETS
    from streamcolor.temporal.smoother import DEFAULT_STRENGTH

    ap = argparse.ArgumentParser(prog="streamcolor", description="Colorize grayscale video, "
                                 "streams, frame sequences and photos.")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("colorize", help="colorize an image, folder, video or stream URL")
    c.add_argument("input", help="image, folder or glob of frames, video file, or stream URL")
    c.add_argument("-o", "--output", required=True,
                   help="image file, video file (by suffix) or folder")
    c.add_argument("--model", default=None, help="shipped model name or .safetensors path")
    c.add_argument("--render-factor", type=int, default=None,
                   help="chroma render size = N x 16 px (area kept, aspect kept)")
    c.add_argument("--batch-size", type=int, default=None)
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    c.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    c.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the model (default: all cores)")
    c.add_argument("--temporal-strength", type=_strength, default=DEFAULT_STRENGTH,
                   help="flicker suppression: weight of the motion-compensated past chroma "
                   f"where motion is reliable (0 = per-frame, default {DEFAULT_STRENGTH})")
    c.add_argument("--codec", default=None, help="video codec (default libx264; vp9 for .webm)")
    c.add_argument("--crf", type=int, default=18)
    c.add_argument("--preset", default="veryfast", help="x264/x265 preset")
    c.add_argument("--fps", type=_fraction, default=None,
                   help="frame rate when writing a frame folder as video (default 25)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing output")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")

    e = sub.add_parser("eval", help="measure quality and flicker of a colorized video or "
                       "frame folder (against ground truth when given)")
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

    sub.add_parser("models", help="list the shipped models")
    sub.add_parser("train", help="NoGAN training stages (streamcolor train -h)",
                   add_help=False)
    return ap


def _cmd_colorize(a: argparse.Namespace) -> int:
    from rich.console import Console

    from streamcolor.api import EncodeOptions, colorize_path
    from streamcolor.cli.progress import make_progress
    from streamcolor.model.colorizer import Colorizer
    from streamcolor.model.runtime import configure_threads

    console = Console(stderr=True)
    configure_threads(a.threads)
    colorizer = Colorizer(a.model, render_factor=a.render_factor, device=a.device,
                          precision=a.precision, batch_size=a.batch_size)
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
                               progress=advance, on_start=on_start)
    finally:
        if progress is not None and started:
            progress.stop()
    if not a.quiet:
        console.print(f"colorized {result.frames} frames in {result.seconds:.1f} s "
                      f"({result.fps:.1f} fps) with {colorizer.name} at render factor "
                      f"{colorizer.render_factor} -> {result.output}", highlight=False,
                      soft_wrap=True)
    return 0


def _cmd_eval(a: argparse.Namespace) -> int:
    from rich.console import Console

    from streamcolor.api import same_path
    from streamcolor.errors import OutputError
    from streamcolor.eval.evaluation import evaluate_paths, plot_flicker, report_table, write_json

    inputs = [Path(x) for x in (a.output, a.reference, a.input) if x]
    for written in (a.json, a.plot):
        if written and any(same_path(Path(written), i) for i in inputs):
            raise OutputError(f"{written}: is one of the compared inputs; refusing to "
                              "overwrite it")
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
    return 0


def _cmd_models(a: argparse.Namespace) -> int:
    from streamcolor.model.weights import DEFAULT_MODEL, list_models

    for name, rec in sorted(list_models().items()):
        mark = "*" if name == DEFAULT_MODEL else " "
        print(f"{mark} {name:12s} {rec.arch:12s} render_factor={rec.render_factor} {rec.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":  # its own parser, in the training package
        from streamcolor.training.cli import main as train_main

        return train_main(args[1:])
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose, getattr(a, "quiet", False))
    try:
        if a.command == "colorize":
            return _cmd_colorize(a)
        if a.command == "eval":
            return _cmd_eval(a)
        if a.command == "models":
            return _cmd_models(a)
    except KeyboardInterrupt as e:
        partial = getattr(e, "partial_output", None)
        note = f"; partial output kept at {partial}" if partial else ""
        print(f"streamcolor: interrupted{note}", file=sys.stderr)
        return 130
    except StreamcolorError as e:
        partial = getattr(e, "partial_output", None)
        note = f" (partial output kept at {partial})" if partial else ""
        print(f"streamcolor: error: {redact(str(e))}{note}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
