"""Read colour frames (uint8 RGB) of a video file or a folder/glob of images, for evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from streamcolor.errors import InputNotFoundError, InvalidInputError
from streamcolor.io.sources import (
    IMAGE_SUFFIXES,
    _translate_av_error,
    decode_image_file,
    frame_files,
    is_glob,
)


def read_image_rgb(path: Path) -> np.ndarray:
    """uint8 RGB of an image file (gray is replicated, 16 bit is scaled, alpha dropped)."""
    img = decode_image_file(path, cv2.IMREAD_UNCHANGED)
    if img.dtype == np.uint16:
        img = np.clip(np.rint(img.astype(np.float32) / 257.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InvalidInputError(f"{path}: unsupported image sample type {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)


def iter_rgb(spec: str | Path) -> Iterator[np.ndarray]:
    """uint8 RGB frames of a video file, an image, or a folder/glob of images, in order."""
    text = str(spec)
    p = Path(text)
    if is_glob(text) or p.is_dir():
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

    try:
        container = av.open(path)
    except av.error.FFmpegError as e:
        raise _translate_av_error(e, path) from None
    try:
        if not container.streams.video:
            raise InvalidInputError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        try:
            for vf in container.decode(stream):
                yield vf.to_ndarray(format="rgb24")
                n += 1
        except av.error.FFmpegError as e:
            raise _translate_av_error(e, path) from None
        if n == 0:
            raise InvalidInputError(f"{path}: contains no decodable video frames")
    finally:
        container.close()
