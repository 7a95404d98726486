"""Read colour frames (uint8 RGB) of a video file or a folder/glob of images, for evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamcolor.errors import InputNotFoundError, InvalidInputError
from streamcolor.io.images import IMAGE_SUFFIXES, read_image_rgb
from streamcolor.io.sources import frame_files, is_pattern
from streamcolor.io.video import open_container, rotation_turns, translate_av_error, upright


def iter_rgb(spec: str | Path) -> Iterator[np.ndarray]:
    """uint8 RGB frames of a video file, an image, or a folder/glob of images, in order.
    A path that exists is a path, even with glob characters in its name."""
    text = str(spec)
    p = Path(text)
    if is_pattern(text) or p.is_dir():
        for f in frame_files(text)[0]:
            yield read_image_rgb(f)
        return
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file or folder")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        yield read_image_rgb(p)
        return
    yield from _video_rgb(text)


def _video_rgb(path: str) -> Iterator[np.ndarray]:
    import av

    container = open_container(path, path)
    try:
        if not container.streams.video:
            raise InvalidInputError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        try:
            for vf in container.decode(stream):
                turns = max(rotation_turns(vf), 0)
                yield upright(vf.to_ndarray(format="rgb24"), turns)
                n += 1
        except av.error.FFmpegError as e:
            raise translate_av_error(e, path) from None
        if n == 0:
            raise InvalidInputError(f"{path}: contains no decodable video frames")
    finally:
        container.close()
