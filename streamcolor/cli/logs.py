"""Logging for the command line: rich on stderr, passwords masked in every line."""

from __future__ import annotations

import logging

from streamcolor.io.urls import redact


class RedactingFilter(logging.Filter):
    """Masks passwords of stream URLs in every log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())  # format first: any argument type is covered
        record.args = None
        return True


def setup_logging(verbose: int, quiet: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                          logging.INFO if verbose else logging.WARNING)
    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False,
                          markup=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    import av.logging
    import cv2

    # FFmpeg's and OpenCV's own messages only with -vv: our errors already name the file and
    # the problem, and their lines before ours would bury it.
    av.logging.set_level(av.logging.WARNING if verbose > 1 else None)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING if verbose > 1 else
                                  cv2.utils.logging.LOG_LEVEL_SILENT)
