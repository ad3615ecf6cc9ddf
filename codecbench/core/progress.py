"""Progress of long work (coding, generating the default dataset, unpacking a download), for people.

On a terminal: a tqdm bar. In a log, or on a terminal that reports no width (some CI consoles, a detached
``script``), a line per ~10 % of the work with the time so far and an estimate of the time left, so progress never
vanishes. Everything goes to stderr: stdout stays for results.
"""
from __future__ import annotations

import shutil
import sys
import time

from tqdm.auto import tqdm


class NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """One line per ~10 % of the work: ``codecbench: generating ...: 120/300 (40%, 8 s, about 12 s left)``."""

    def __init__(self, total: int, desc: str, *, stream=None):
        self.total, self.desc, self.done, self.next_tenth = total, desc, 0, 1
        self.stream = stream
        self.start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done * 10 >= self.next_tenth * self.total:
            self.next_tenth = self.done * 10 // self.total + 1
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.done * (self.total - self.done) if self.done < self.total else 0.0
            print(f"codecbench: {self.desc}: {self.done}/{self.total} ({100 * self.done // self.total}%, "
                  f"{duration_text(elapsed)}" + (f", about {duration_text(left)} left" if left else "") + ")",
                  file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        pass


def duration_text(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3.5 min``, ``1.2 h``: the one way codecbench writes a duration (progress lines, plans)."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def terminal_columns() -> int:
    """The terminal's width; 0 when stderr is not a terminal or the terminal reports none."""
    if not sys.stderr.isatty():
        return 0
    try:
        return shutil.get_terminal_size((0, 0)).columns
    except (OSError, ValueError):
        return 0


def progress(total: int, desc: str, enabled: bool | None = None, *, unit: str = "clip"):
    """A bar on a terminal with a width, a line per ~10 % otherwise; nothing if ``enabled`` is False (None: decide
    from stderr)."""
    if enabled is False or total == 0:
        return NoProgress()
    columns = terminal_columns()
    if columns < 40:  # a log, or a terminal too narrow (or reporting 0 columns) for a bar: lines
        return LineProgress(total, desc)
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
