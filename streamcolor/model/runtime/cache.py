"""A cache of converted models (ONNX files, OpenVINO IR) in the user's cache folder.

Converting a generator takes seconds; loading a converted one, a fraction of that.  An
entry's key holds the weights' sha256, the runtime and its version, the converter's format
version and the model contract, so new weights or a new runtime never meet a stale entry.
Entries are written to a temporary folder and renamed into place (two processes converting
at once both succeed; one entry wins).  An unusable cache folder only costs the time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the conversion itself changes


def cache_root() -> Path:
    """``$STREAMCOLOR_CACHE``, else ``$XDG_CACHE_HOME/streamcolor``, else
    ``~/.cache/streamcolor``."""
    if os.environ.get("STREAMCOLOR_CACHE"):
        return Path(os.environ["STREAMCOLOR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamcolor"


def cache_key(sha256: str, runtime: str, version: str, contract: dict) -> str:
    blob = json.dumps({"sha256": sha256, "runtime": runtime, "version": version,
                       "format": FORMAT_VERSION, "contract": contract}, sort_keys=True)
    return f"{runtime}-{sha256[:16]}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached(key: str, build: Callable[[Path], None], check: Callable[[Path], bool]) -> Path | None:
    """The folder of entry ``key``: built by ``build(folder)`` when missing or when
    ``check(folder)`` fails.  None when the cache cannot be written (the caller builds in
    memory instead)."""
    root = cache_root()
    final = root / key
    if final.is_dir():
        try:
            if check(final):
                return final
        except Exception as e:  # a damaged entry: rebuild it
            log.warning("converted-model cache entry %s is unusable (%s): rebuilding", final, e)
        shutil.rmtree(final, ignore_errors=True)
    tmp = root / f".{key}.tmp-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process put the same entry in place first
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.is_dir():
                raise
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("no converted-model cache (%s: %s); converting in memory", root, e)
        return None
    return final
