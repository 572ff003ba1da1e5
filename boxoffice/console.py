"""Lines a person can follow on long work, one per step (a run's steps, the demo generator's passes): what
the step is doing and how long it has taken. On a terminal a step's line is rewritten in place; elsewhere
(a log, CI) a step prints at most every QUIET_SECONDS while it reports, and when it ends."""

from __future__ import annotations

import sys
import time
from typing import TextIO

QUIET_SECONDS = 10


class StepLines:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.__stdout__
        self.tty = self.stream.isatty()
        self.started: dict[str, float] = {}
        self.printed: dict[str, float] = {}

    def start(self, step: str, label: str | None = None) -> None:
        self.started[step] = time.monotonic()
        self.show(step, "started", label=label)

    def show(self, step: str, text: str, final: bool = False, label: str | None = None) -> None:
        now = time.monotonic()
        line = f"  {label or step:42} {text}  [{now - self.started.get(step, now):,.0f}s]"
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if final else ""))
        elif final or now - self.printed.get(step, self.started.get(step, now)) >= QUIET_SECONDS:
            self.printed[step] = now
            self.stream.write(line + "\n")
        self.stream.flush()
