"""What a run returns: how far it got, what it kept, and why it stopped."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class RunStatus(str, enum.Enum):
    COMPLETE = "complete"  # every frame written, output under its final name
    PARTIAL = "partial"  # stopped early (error, stop request, lost stream); what was written
    #                      is finalised and kept as NAME.partial.EXT
    FAILED = "failed"  # stopped before anything was kept


@dataclass(frozen=True)
class RunResult:
    frames: int  # frames written
    seconds: float
    output: Path | None  # the final output, the partial output, or None
    status: RunStatus = RunStatus.COMPLETE
    error: BaseException | None = None  # why the run stopped early, if it failed
    stopped_by: str | None = None  # a stop request's reason ("SIGTERM", ...), not an error
    warnings: tuple[str, ...] = field(default_factory=tuple)  # said once, e.g. damaged input

    @property
    def complete(self) -> bool:
        return self.status is RunStatus.COMPLETE

    @property
    def partial_output(self) -> Path | None:
        return self.output if self.status is RunStatus.PARTIAL else None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def raise_for_error(self) -> RunResult:
        """Raise the error that stopped the run, if one did; else return self."""
        if self.error is not None:
            raise self.error
        return self
