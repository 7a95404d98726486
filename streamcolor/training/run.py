"""Run directories shared by all stages: resolved config, CSV log, resumable checkpoints.

Layout::

    RUN_DIR/config.json      resolved configuration of the run
    RUN_DIR/log.csv          one row per logged step
    RUN_DIR/checkpoint.pt    latest state (model, optimiser, step), loaded with weights_only
    RUN_DIR/ckpt_XXXXXX.pt   kept snapshots (the GAN stage keeps many, to find the inflection)
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

from streamcolor.io.atomic import write_bytes_atomic
from streamcolor.model.weights import load_checkpoint


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    def save_config(self, config: dict[str, Any]) -> None:
        self._atomic_write(self.path / "config.json", json.dumps(config, indent=2, sort_keys=True))

    def load_config(self) -> dict[str, Any] | None:
        p = self.path / "config.json"
        return json.loads(p.read_text()) if p.exists() else None

    def log(self, row: dict[str, Any]) -> None:
        """Append a row to ``log.csv``; every row of a run must have the same columns."""
        p = self.path / "log.csv"
        new = not p.exists()
        if not new:
            with open(p, newline="") as f:
                header = next(csv.reader(f), [])
            if header != list(row):
                raise ValueError(f"{p}: row columns {list(row)} differ from the header "
                                 f"{header}")
        with open(p, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def truncate_log(self, after_step: int) -> int:
        """Drop the ``log.csv`` rows of steps after ``after_step`` (logged by a killed run
        after its last checkpoint, and about to be redone); returns how many were dropped."""
        p = self.path / "log.csv"
        if not p.exists():
            return 0
        with open(p, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return 0
        header, body = rows[0], rows[1:]
        col = header.index("step") if "step" in header else None
        if col is None:
            return 0
        keep = [r for r in body if r and int(float(r[col])) <= after_step]
        dropped = len(body) - len(keep)
        if dropped:
            import io

            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(header)
            w.writerows(keep)
            self._atomic_write(p, buf.getvalue())
        return dropped

    def save_state(self, state: dict[str, Any], snapshot: str | None = None,
                   snapshot_state: dict[str, Any] | None = None) -> None:
        """Atomically replace ``checkpoint.pt``; ``snapshot`` also keeps ``snapshot_state``
        (default: the whole state) under that file name."""
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)
        if snapshot:
            tmp = self.path / (snapshot + ".tmp")
            torch.save(snapshot_state if snapshot_state is not None else state, tmp)
            os.replace(tmp, self.path / snapshot)

    def snapshots(self, prefix: str = "ckpt_") -> list[Path]:
        return sorted(self.path.glob(f"{prefix}*.pt"))

    def load_state(self) -> dict[str, Any] | None:
        return load_checkpoint(self.checkpoint) if self.checkpoint.exists() else None

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        write_bytes_atomic(path, text.encode())
