"""High-level API: colourise an image, folder, video or stream into an image, folder or video."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamcolor.engine.pipeline import ChromaFilter, Pipeline, RunResult
from streamcolor.errors import OutputError
from streamcolor.io.sinks import FolderSink, ImageSink, Sink, VideoSink
from streamcolor.io.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FolderSource, Source, open_source
from streamcolor.io.urls import is_url
from streamcolor.model.colorizer import Colorizer
from streamcolor.temporal.smoother import DEFAULT_STRENGTH, make_chroma_filter

log = logging.getLogger(__name__)


@dataclass
class EncodeOptions:
    codec: str | None = None
    crf: int = 18
    preset: str = "veryfast"
    fps: Fraction | None = None  # for frame folders -> video


def output_kind(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES and not output.is_dir():
        return "image"
    return "folder"


def same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output(source: Source, output: Path, overwrite: bool) -> str:
    """Validate the output against the input before anything is written; returns its kind."""
    kind = output_kind(output)
    src_path = source.info.path
    if src_path and not is_url(src_path) and same_path(Path(src_path), output):
        raise OutputError(f"{output}: output is the input; refusing to overwrite it")
    if kind == "video" and source.info.kind == "image":
        raise OutputError(f"{output}: a single image cannot be written as a video")
    if kind == "image" and source.info.kind != "image":
        raise OutputError(f"{output}: an image output needs a single-image input "
                          f"({source.info.label} is a {source.info.kind})")
    if kind == "folder" and isinstance(source, FolderSource) and \
            any(same_path(d, output) for d in {f.parent for f in source.files}):
        raise OutputError(f"{output}: output folder holds the input frames; refusing to "
                          "overwrite them")
    if kind == "folder" and output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    if output.exists() and not overwrite and (kind != "folder" or any(output.iterdir())):
        raise OutputError(f"{output}: already exists (use --overwrite to replace it)")
    parent = output.parent if kind != "folder" else _existing_ancestor(output)
    if not parent.is_dir():
        raise OutputError(f"{output}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{output}: folder {parent} is not writable")
    return kind


def _existing_ancestor(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def make_sink(kind: str, source: Source, output: Path, encode: EncodeOptions) -> Sink:
    if kind == "image":
        return ImageSink(output)
    if kind == "folder":
        return FolderSink(output)
    rate = source.info.rate or encode.fps or Fraction(25)
    if source.info.kind == "folder":
        rate = encode.fps or Fraction(25)
    audio = source.info.path if source.info.kind == "video" else None
    return VideoSink(output, rate=rate, audio_from=audio, codec=encode.codec, crf=encode.crf,
                     preset=encode.preset)


def colorize_path(
    input: str | Path,
    output: str | Path,
    colorizer: Colorizer | None = None,
    *,
    overwrite: bool = False,
    encode: EncodeOptions | None = None,
    chroma_filter: ChromaFilter | None = None,
    temporal_strength: float = DEFAULT_STRENGTH,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[Source], None] | None = None,
) -> RunResult:
    """Colourise ``input`` (image, folder/glob, video file, stream URL) into ``output``.

    The output kind follows its suffix: an image suffix writes one image, a video suffix a
    video, anything else a folder of images (file names kept).  Consecutive frames are
    smoothed over time with ``temporal_strength`` (0 = per-frame output) unless a
    ``chroma_filter`` is given.
    """
    output = Path(output)
    source = open_source(input)
    try:
        kind = check_output(source, output, overwrite)
        colorizer = colorizer or Colorizer()
        sink = make_sink(kind, source, output, encode or EncodeOptions())
        if chroma_filter is None:
            chroma_filter = make_chroma_filter(temporal_strength)
    except BaseException:
        source.close()
        raise
    if on_start:
        on_start(source)
    return Pipeline(colorizer).run(source, sink, chroma_filter, progress)
