"""The batch manifest: JSON lines in the output folder, one record per finished input.

Each record holds the input's relative path, size and mtime, the job key (model sha256 and
every setting that changes an output), the outcome (``done`` with the output's sha256 and
size, or ``failed`` with its one-line error) and the stretch used.  Records are appended and
flushed one at a time by one writer, so a killed job keeps every record it wrote and at worst
loses a torn last line (ignored on reading).  The last record of an input wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamcolor.errors import OutputError

log = logging.getLogger(__name__)

MANIFEST_NAME = "streamcolor-manifest.jsonl"
FAILED_NAME = "streamcolor-failed.txt"
LOCK_NAME = ".streamcolor-batch.lock"


def job_key(settings: dict[str, Any]) -> str:
    """A short stable hash of everything that decides an output."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Fingerprint:
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns)


class Manifest:
    """Read what earlier runs recorded; append this run's records."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST_NAME
        self.records: dict[str, dict[str, Any]] = {}
        self._f: Any = None
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        torn = 0
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    torn += 1
                    continue
                if isinstance(rec, dict) and "input" in rec:
                    self.records[rec["input"]] = rec
        if torn:
            log.warning("%s: %d unreadable line(s) ignored (a job killed while writing)",
                        self.path, torn)

    def is_done(self, rel: str, fp: Fingerprint, key: str, out: Path) -> bool:
        """Done and unchanged: same input size/mtime, same key, output still there with its
        recorded size."""
        rec = self.records.get(rel)
        if not rec or rec.get("status") != "done" or rec.get("key") != key:
            return False
        if rec.get("size") != fp.size or rec.get("mtime_ns") != fp.mtime_ns:
            return False
        try:
            return out.stat().st_size == rec.get("output_size")
        except OSError:
            return False

    def open(self) -> None:
        try:
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write the manifest ({e.strerror})") \
                from None

    def append(self, rec: dict[str, Any]) -> None:
        rec = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **rec}
        self.records[rec["input"]] = rec
        if self._f is None:
            self.open()
        # Flushed (a killed process loses nothing), not fsynced: a record lost in a machine
        # crash only means its file is redone, and each output itself is fsynced before its
        # rename.  One fsync per file would cost more than the file on a slow disk.
        self._f.write(json.dumps(rec, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JobLock:
    """One job per output folder at a time (an advisory lock, released when the process
    ends however it ends)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        import fcntl

        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise OutputError(f"{self.path.parent}: another batch job is writing this folder")\
                from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
