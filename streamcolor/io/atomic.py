"""Writing without losing anything: temporary names beside the output, atomic renames, partial
outputs that never replace an existing file, and the checks made before a job starts.

Every output is written under a hidden temporary name in its own folder (same filesystem, so
the final rename is atomic) that keeps the output's suffix (FFmpeg and OpenCV pick the format
by it).  Names are shortened where needed to fit the filesystem's limit on a name's length.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from streamcolor.errors import OutputError

TEMP_MARK = ".tmp-"  # hidden temporaries are named .STEM.tmp-PID.EXT
STDOUT_NAMES = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) ``folder``'s filesystem allows."""
    try:
        return int(os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _fit(prefix: str, stem: str, tail: str, limit: int) -> str:
    """``prefix + stem + tail`` with ``stem`` shortened (whole characters) to fit ``limit``
    bytes."""
    room = limit - len((prefix + tail).encode())
    data = stem.encode()
    if len(data) > room:
        stem = data[:max(room, 1)].decode(errors="ignore")
    return prefix + stem + tail


def temp_path_for(final: Path) -> Path:
    """Hidden temporary name beside ``final`` that keeps its suffix (format guessing)."""
    tail = f"{TEMP_MARK}{os.getpid()}{final.suffix}"
    return final.with_name(_fit(".", final.stem, tail, name_max(final.parent)))


def partial_candidates(final: Path) -> Iterable[Path]:
    """NAME.partial.EXT, then NAME.partial-2.EXT, ... (each within the name-length limit)."""
    limit = name_max(final.parent)
    for n in range(1, 10_000):
        mark = ".partial" if n == 1 else f".partial-{n}"
        yield final.with_name(_fit("", final.stem, f"{mark}{final.suffix}", limit))


def partial_path_for(final: Path) -> Path:
    """The first NAME.partial.EXT candidate that does not exist yet."""
    for p in partial_candidates(final):
        if not p.exists() and not p.is_symlink():
            return p
    raise OutputError(f"{final}: no free name for the partial output")


def rename_no_replace(src: Path, final: Path) -> Path:
    """Rename ``src`` to the first free partial name of ``final``; never replaces a file."""
    for candidate in partial_candidates(final):
        if candidate.exists() or candidate.is_symlink():
            continue
        if src.is_dir():
            try:
                os.rename(src, candidate)  # fails if a non-empty folder appeared meanwhile
                return candidate
            except OSError as e:
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
        try:
            os.link(src, candidate)  # atomic and refuses to replace
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some network or FAT filesystems)
            if candidate.exists():
                continue
            os.replace(src, candidate)
            return candidate
        src.unlink()
        return candidate
    raise OutputError(f"{final}: no free name for the partial output")


def write_bytes_atomic(path: Path, data: bytes | memoryview | object) -> None:
    """Write ``data`` (anything with the buffer protocol) to a temporary file beside
    ``path``, then rename it over ``path``."""
    tmp = temp_path_for(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_not_stdout(path: Path) -> None:
    if str(path) in STDOUT_NAMES:
        raise OutputError(f"{path}: writing to standard output is not supported (outputs are "
                          "written atomically); give a file or folder name")


def check_folder_writable(path: Path, folder: Path) -> None:
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")


def check_new_file(path: Path, overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse before any work starts: stdout, an input, a folder, an existing file without
    ``overwrite``, a missing or unwritable folder, a name too long for the filesystem."""
    check_not_stdout(path)
    if any(same_path(path, i) for i in inputs):
        raise OutputError(f"{path}: is one of the inputs; refusing to overwrite it")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
    check_folder_writable(path, path.parent if str(path.parent) else Path("."))
    if len(path.name.encode()) > name_max(path.parent):
        raise OutputError(f"{path}: file name longer than the filesystem allows")
