"""How apply tells its progress: one line per operation, or, for many operations on a terminal, one live
counter line rewritten in place (done/total, elapsed, rate) with only failures printed above it."""

from __future__ import annotations

import time
from typing import Callable

from .apply import PAST_TENSE, Outcome
from .ops import Plan

# Fewer operations than this are listed one a line on a terminal too: they fit on a screen.
COUNTER_FROM = 20
REDRAW_EVERY = 0.1  # seconds: a terminal redrawn per operation costs more than the operation


class Progress:
    """``write(text, newline)`` prints to the stream progress goes to; ``live`` when that is a terminal that
    can go back to the start of a line (not TERM=dumb)."""

    def __init__(self, write: Callable[[str, bool], None], write_failure: Callable[[str], None], live: bool,
                 clock: Callable[[], float] = time.monotonic):
        self.write, self.write_failure, self.live, self.clock = write, write_failure, live, clock
        self.counter = False
        self.done = self.total = self.width = 0
        self.started = self.drawn = 0.0

    def start(self, plan: Plan) -> None:
        """Apply is about to run ``plan``'s operations."""
        self.total, self.done = len(plan.operations), 0
        self.counter = self.live and self.total >= COUNTER_FROM
        self.started = self.drawn = self.clock()
        if self.counter:
            self._draw()

    def outcome(self, outcome: Outcome) -> None:
        op = outcome.operation
        self.done += 1
        if outcome.status == "interrupted":  # Ctrl-C: the report that follows lists them
            return
        if outcome.status != "done":
            self._above(f"{op.ref}: {op.action} FAILED: {outcome.error}")
        elif not self.counter:
            detail = f" ({outcome.detail})" if outcome.detail else ""
            self.write(f"{op.ref}: {PAST_TENSE[op.action]}{detail}", True)
        elif self.clock() - self.drawn >= REDRAW_EVERY:
            self._draw()

    def close(self) -> None:
        """The counter's last state stays on its line."""
        if self.counter:
            self._draw()
            self.write("", True)
            self.counter = False

    def line(self) -> str:
        elapsed = self.clock() - self.started
        rate = f", {self.done / elapsed:.0f}/s" if elapsed > 0 and self.done else ""
        return f"Applying: {self.done}/{self.total} operations, {elapsed:.1f}s{rate}"

    def _draw(self) -> None:
        self.drawn = self.clock()
        text = self.line()
        self.write("\r" + text.ljust(self.width), False)  # spaces, not an escape sequence, wipe a longer line
        self.width = len(text)

    def _above(self, text: str) -> None:
        if self.counter:
            self.write("\r" + " " * self.width + "\r", False)
            self.width = 0
        self.write_failure(text)
        if self.counter:
            self._draw()
