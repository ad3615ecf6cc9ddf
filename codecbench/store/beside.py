"""A fill that runs beside other work: in a process of its own, at a lower CPU priority.

``codecbench reproduce`` codes its evaluation set this way while the fine-tunings train on an accelerator: the
trainings keep the host busy only as far as their feed reads (the feed workers, and the training's own process), and
the fill takes what they leave idle. Its results are the cache's, keyed by content like any fill's, so whatever it
did not finish is coded by the benchmark afterwards and the results are the same either way.

This module imports no deep-learning framework: the process it starts loads only the codecs and the features.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.core.progress import duration_text
from codecbench.errors import CodecbenchError, UsageError
from codecbench.store.fill import fill

#: How much lower the fill's priority is than the work beside it (``nice``: the trainings' feed first)
NICENESS = 10


def _fill_in_background(clips: Sequence, conditions: Sequence[Condition], cache_root: str, jobs: int) -> None:
    """The process's work: the fill, at a lower priority (its worker processes inherit it). A named error (a clip
    that cannot be read, a full disk) is one line and exit code 1: the benchmark after it meets the same error in
    the foreground and says it there, with its context."""
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    try:
        fill(clips, conditions, Cache(Path(cache_root)), with_features=True, jobs=jobs, progress=False)
    except CodecbenchError as exc:
        print(f"codecbench: coding beside the trainings stopped: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


class FillBeside:
    """``with FillBeside(clips, conditions, cache, jobs=N, say=print, what="the evaluation set"): <other work>``:
    the fill starts when the block starts and is waited for when it ends (an error in the block stops it).

    Parameters
    ----------
    clips, conditions, cache
        What to code and featurise (the baseline's log-mel features), and where.
    jobs : int
        Worker processes of the fill (at a lower priority than the work beside it).
    say : callable
        Where it says that it started and how it ended.
    what : str
        What is coded, for those lines.
    """

    def __init__(self, clips: Sequence, conditions: Sequence[Condition], cache: Cache, *, jobs: int,
                 say: Callable[[str], None], what: str) -> None:
        if jobs < 1:
            raise UsageError(f"jobs: {jobs!r}, expected at least 1")
        self.clips, self.conditions, self.cache, self.jobs, self.say, self.what = \
            list(clips), list(conditions), cache, jobs, say, what
        self.process: multiprocessing.process.BaseProcess | None = None
        #: seconds from the start to the fill's end; whether the block ended before the fill did; its exit code
        self.seconds: float | None = None
        self.waited = False
        self.exitcode: int | None = None

    def __enter__(self) -> "FillBeside":
        # spawn: a fresh interpreter, never a fork of a process that holds a framework's threads or a device
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=_fill_in_background, name="codecbench-fill-beside",
                                       args=(self.clips, self.conditions, str(self.cache.root), self.jobs))
        self._start = time.perf_counter()
        self.process.start()
        self.say(f"      note: coding {self.what} ({len(self.clips):,} clips x {len(self.conditions)} conditions) "
                 f"beside the trainings: {self.jobs} worker{'s' * (self.jobs != 1)} at a lower priority")
        return self

    def __exit__(self, kind, error, trace) -> None:
        assert self.process is not None
        if kind is not None:  # the work beside it failed or was interrupted: the fill stops too
            self.process.terminate()
            self.process.join()
            return
        self.waited = self.process.is_alive()
        self.process.join()
        self.seconds = time.perf_counter() - self._start
        self.exitcode = self.process.exitcode
        if self.exitcode == 0:
            self.say(f"      {self.what}: coded beside the trainings in {duration_text(self.seconds)}"
                     + (" (the trainings ended first: waited for it)" if self.waited else ""))
        else:
            self.say(f"      note: coding {self.what} beside the trainings stopped (exit code {self.exitcode}); "
                     "what it left is coded by the benchmark")
