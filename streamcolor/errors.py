"""Project errors.  Each subclasses both :class:`StreamcolorError` and the matching builtin, so
callers can catch either.  Library code raises these; only the IO edge translates ``av`` errors.
"""

from __future__ import annotations

import pickle


class StreamcolorError(Exception):
    """Base of every error streamcolor raises on purpose (one clear line for the user)."""


class InputNotFoundError(StreamcolorError, FileNotFoundError):
    """The input path does not exist."""


class InvalidInputError(StreamcolorError, ValueError):
    """The input exists but cannot be decoded, is empty, or is of an unsupported kind."""


class InputTruncatedError(InvalidInputError):
    """The input ends before its container says it should (an interrupted download or copy)."""


class UnsupportedURLError(StreamcolorError, ValueError):
    """A URL whose scheme streamcolor does not read."""


class OutputError(StreamcolorError, OSError):
    """The output cannot be written (unwritable, would overwrite the input, wrong kind)."""


class ModelError(StreamcolorError, LookupError):
    """Unknown model name, missing weights file, or weights that do not match."""


class WeightsIntegrityError(ModelError):
    """A weights file whose sha256 does not match its record."""


class UnsafeCheckpointError(ModelError, pickle.UnpicklingError):
    """A checkpoint that would need code to be unpickled (refused)."""


class ResourceError(StreamcolorError, MemoryError):
    """Not enough memory (host or device) for the job as asked; says what to lower."""


class StreamLostError(StreamcolorError, ConnectionError):
    """A live stream stopped delivering frames."""


def is_allocation_failure(e: BaseException) -> bool:
    """Out of memory as libraries report it: MemoryError, or a RuntimeError saying so
    (torch's CPU allocator, safetensors' mmap, OpenVINO; oneDNN says only that it "could
    not create a primitive" when its work space cannot be allocated)."""
    if isinstance(e, MemoryError):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(
        k in text for k in ("can't allocate memory", "cannot allocate memory", "out of memory",
                            "failed to allocate", "std::bad_alloc",
                            "could not create a primitive"))

