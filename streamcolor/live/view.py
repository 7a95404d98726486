"""The newest colourised frame of each camera, for the browser view.

The model loop only stores the frame and its chroma (cheap); a JPEG is composed and encoded
when a viewer asks for it, once per frame however many viewers there are, on the viewer's
thread.  Viewers wait for a newer version, so a slow client skips frames and never slows the
pipeline.  When a camera is lost its last frame stays, marked stale.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from streamcolor.frames import Frame
from streamcolor.io.sinks import compose_bgr

JPEG_QUALITY = 85
MAX_VIEW_SIDE = 1280  # larger frames are shrunk for the browser (recordings keep them whole)


class CameraView:
    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self.version = 0
        self._frame: Frame | None = None
        self._chroma: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self.closed = False

    def update(self, frame: Frame, chroma: np.ndarray) -> None:
        with self._cond:
            self._frame, self._chroma = frame, chroma
            self.version += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_newer(self, version: int, timeout: float) -> int:
        """Block until the version passes ``version`` (or ``timeout``); the current one."""
        with self._cond:
            self._cond.wait_for(lambda: self.version > version or self.closed, timeout)
            return self.version

    def jpeg(self) -> tuple[int, bytes] | None:
        """(version, JPEG bytes) of the newest frame, encoded once per version."""
        with self._cond:
            frame, chroma, version, cached = self._frame, self._chroma, self.version, self._jpeg
        if frame is None or chroma is None:
            return None
        if cached is not None and cached[0] == version:
            return cached
        bgr = compose_bgr(frame, chroma)
        if bgr.dtype != np.uint8:
            bgr = (bgr >> 8).astype(np.uint8)
        h, w = bgr.shape[:2]
        if max(h, w) > MAX_VIEW_SIDE:
            k = MAX_VIEW_SIDE / max(h, w)
            bgr = cv2.resize(bgr, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return None
        encoded = (version, buf.tobytes())
        with self._cond:
            if self._jpeg is None or self._jpeg[0] < version:
                self._jpeg = encoded
        return encoded
