"""High-level API: colourise an image, folder, video or stream into an image, folder or video."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamcolor.engine.pipeline import ChromaFilter, ChromaModel, Pipeline
from streamcolor.engine.result import RunResult
from streamcolor.engine.stop import StopToken
from streamcolor.errors import OutputError
from streamcolor.io.atomic import (
    check_folder_writable,
    check_new_file,
    check_not_stdout,
    name_max,
    same_path,
)
from streamcolor.io.images import IMAGE_SUFFIXES
from streamcolor.io.sinks import VIDEO_OUTPUT_SUFFIXES, FolderSink, ImageSink, Sink, VideoSink
from streamcolor.io.sources import FolderSource, Source, image_files, open_source
from streamcolor.io.urls import is_url
from streamcolor.temporal.smoother import DEFAULT_STRENGTH, make_chroma_filter

log = logging.getLogger(__name__)

__all__ = ["EncodeOptions", "check_output", "colorize_path", "output_kind", "same_path"]


@dataclass
class EncodeOptions:
    codec: str | None = None
    crf: int = 18
    preset: str = "veryfast"
    fps: Fraction | None = None  # for frame folders -> video
    options: dict[str, str] | None = None  # encoder options (e.g. {"qp": "0"}), FFmpeg's names


def output_kind(output: str | Path) -> str:
    """"video", "image" or "folder" by the output's name.

    A name ending in ``/`` is a folder; otherwise a known video or image suffix decides; a
    name without a suffix, or an existing folder, is a folder.  Any other suffix (a typo such
    as ``.mp44``) is refused rather than silently becoming a folder of PNGs."""
    text = str(output)
    path = Path(text)
    if text.endswith(("/", "\\")):
        return "folder"
    suffix = path.suffix.lower()
    if suffix in VIDEO_OUTPUT_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if not suffix or path.is_dir():
        return "folder"
    video = " ".join(sorted(VIDEO_OUTPUT_SUFFIXES))
    raise OutputError(f"{output}: unknown output type {path.suffix!r} (video: {video}; image: "
                      f"{' '.join(sorted(IMAGE_SUFFIXES))}; a folder: end the name with /)")


def check_output(source: Source, output: Path | str, overwrite: bool) -> str:
    """Validate the output against the input before anything is written; returns its kind."""
    text = str(output)
    output = Path(text)
    check_not_stdout(output)
    kind = output_kind(text)
    src_path = source.info.path
    inputs = [Path(src_path)] if src_path and not is_url(src_path) else []
    if kind == "video" and source.info.kind == "image":
        raise OutputError(f"{output}: a single image cannot be written as a video")
    if kind == "image" and source.info.kind != "image":
        raise OutputError(f"{output}: an image output needs a single-image input "
                          f"({source.info.label} is a {source.info.kind})")
    if kind in ("video", "image"):
        if output.is_dir():
            raise OutputError(f"{output}: is a folder, not a {kind} file (end the name with / "
                              "to write frames into it)")
        check_new_file(output, overwrite, inputs)
        return kind
    # a folder of frames
    if inputs and same_path(inputs[0], output):
        raise OutputError(f"{output}: output is the input; refusing to overwrite it")
    if isinstance(source, FolderSource) and \
            any(same_path(d, output) for d in {f.parent for f in source.files}):
        raise OutputError(f"{output}: output folder holds the input frames; refusing to "
                          "overwrite them")
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    if output.is_dir():
        entries = list(output.iterdir())
        if entries and not overwrite:
            raise OutputError(f"{output}: already exists (use --overwrite to replace it)")
        others = [p for p in entries if p not in image_files(entries)]
        if entries and others:
            raise OutputError(f"{output}: holds other files than frames ({others[0].name}); "
                              "refusing to replace it")
    check_folder_writable(output, _existing_ancestor(output.absolute().parent))
    if len(output.absolute().name.encode()) > name_max(output.absolute().parent):
        raise OutputError(f"{output}: folder name longer than the filesystem allows")
    return kind


def _existing_ancestor(p: Path) -> Path:
    """The nearest folder of ``p`` that exists (missing ones are created for folder outputs)."""
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def make_sink(kind: str, source: Source, output: Path, encode: EncodeOptions,
              overwrite: bool = False) -> Sink:
    if kind == "image":
        return ImageSink(output)
    if kind == "folder":
        return FolderSink(output, overwrite=overwrite)
    rate = source.info.rate or encode.fps or Fraction(25)
    if source.info.kind == "folder":
        rate = encode.fps or Fraction(25)
    return VideoSink(output, rate=rate, side=source.side, codec=encode.codec, crf=encode.crf,
                     preset=encode.preset, options=encode.options)


def colorize_path(
    input: str | Path,
    output: str | Path,
    colorizer: ChromaModel | None = None,
    *,
    overwrite: bool = False,
    encode: EncodeOptions | None = None,
    chroma_filter: ChromaFilter | None = None,
    temporal_strength: float = DEFAULT_STRENGTH,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[Source], None] | None = None,
    stop: StopToken | None = None,
    check: bool = True,
    timeout: float = 10.0,
) -> RunResult:
    """Colourise ``input`` (image, folder/glob, video file, stream URL) into ``output``.

    The output kind follows its name (:func:`output_kind`): an image suffix writes one image,
    a video suffix a video, a name ending in ``/`` or without suffix a folder of images (file
    names kept).  Consecutive frames are smoothed over time with ``temporal_strength``
    (0 = per-frame output) unless a ``chroma_filter`` is given.

    Problems found before anything is written (missing input, unwritable output, ...) raise.
    Once frames flow the run returns a :class:`RunResult`; with ``check`` (the default) an
    error that stopped it early is raised after its partial output was finalised (the result
    of ``check=False`` says where that is).  Setting ``stop`` ends the run cleanly, keeping a
    partial output.  ``timeout`` bounds connecting to a stream and each wait for its data.
    """
    source = open_source(input, stop, timeout)
    try:
        kind = check_output(source, output, overwrite)
        out = Path(output)
        if colorizer is None:
            from streamcolor.model.colorizer import Colorizer

            colorizer = Colorizer()
        sink = make_sink(kind, source, out, encode or EncodeOptions(), overwrite)
        if chroma_filter is None:
            chroma_filter = make_chroma_filter(temporal_strength)
    except BaseException:
        source.close()
        raise
    if on_start:
        on_start(source)
    result = Pipeline(colorizer).run(source, sink, chroma_filter, progress, stop)
    return result.raise_for_error() if check else result
