"""One pass of data for several trainings: Experiment B's segments read each batch once.

Every segment of Experiment B trains on the same batches: the same clips in the same order, with the same crops,
masks and mixup, since a batch is a pure function of (seed, epoch, index) (:meth:`AugmentedBatches.batch_of`) and
only the learning rate differs between segments. Trained one after another, the segments read the training set ten
times; where an accelerator trains them, reading (the feed) bounds most of them. :class:`SharedBatches` reads each
batch once and serves it to every training that runs beside it, each through its own view (a Keras ``PyDataset``):
a batch is kept until every view has taken it, and a view that runs ahead waits once ``window`` batches are kept, so
host memory stays at a few batches whatever the trainings' speeds. :func:`train_together` runs the trainings in
threads over one :class:`SharedBatches`, their set-up one at a time (seeding, twins, compiling: what draws on the
global random state), so each trains exactly as it would alone.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from codecbench.core.backend import keras
from codecbench.errors import ArgumentError, ModelError


class SharedBatches:
    """The batches of ``source`` (an :class:`~codecbench.training.loop.AugmentedBatches`) for ``consumers`` trainings,
    each read once.

    Parameters
    ----------
    source : AugmentedBatches
        What every training would read alone.
    consumers : int
        How many views take each batch (a batch is dropped once that many have taken it).
    window : int
        Batches kept at most (read, and not yet taken by every view); a view asking for a newer batch waits. The
        oldest batch a view still lacks is always read, so a slow view never waits on a fast one.
    """

    def __init__(self, source, *, consumers: int, window: int = 16):
        if consumers < 1 or window < 1:
            raise ArgumentError(f"SharedBatches: consumers and window must be >= 1, got {consumers} and {window}")
        self.source, self.consumers, self.window = source, int(consumers), int(window)
        self.reads = 0  # batches read from the source (what the pass saves is consumers x batches - reads)
        # (epoch, index) -> [the batch (None while it is read), the views that took it]
        self._held: dict[tuple[int, int], list] = {}
        self._epochs: dict[int, int] = {}  # each view's epoch
        self._cond = threading.Condition()
        self._failed: BaseException | None = None

    def __len__(self) -> int:
        return len(self.source)

    def view(self) -> "BatchView":
        """A training's own view (its epoch, set by its training loop)."""
        with self._cond:
            number = len(self._epochs)
            if number >= self.consumers:
                raise ArgumentError(f"SharedBatches: {self.consumers} views made already")
            self._epochs[number] = 0
        return BatchView(self, number)

    def fail(self, error: BaseException) -> None:
        """Stop every view: the next batch any of them asks for raises (one training failed, or was interrupted)."""
        with self._cond:
            self._failed = self._failed or error
            self._cond.notify_all()

    def set_epoch(self, view: int, epoch: int) -> None:
        """``view`` reads ``epoch`` from now on; batches of epochs every view has left are dropped (one a view asked
        for twice, a shape probe say, and another never took)."""
        with self._cond:
            self._epochs[view] = epoch
            oldest = min(self._epochs.values())
            for key in [k for k in self._held if k[0] < oldest and self._held[k][0] is not None]:
                del self._held[key]
            self._cond.notify_all()

    def _check(self) -> None:
        if self._failed is not None:
            raise SharedPassStopped(f"a training beside this one stopped: {self._failed!r}") from self._failed

    def take(self, view: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of ``epoch`` for ``view``: read here if no view asked for it before, else the kept one."""
        key = (epoch, index)
        entry: list | None
        with self._cond:
            while True:
                self._check()
                entry = self._held.get(key)
                if entry is not None or len(self._held) < self.window or key < min(self._held):
                    break
                self._cond.wait()
            reader = entry is None
            if entry is None:
                entry = self._held[key] = [None, set()]
                self.reads += 1
        held: list = entry
        if reader:
            try:
                batch = self.source.batch_of(epoch, index)
            except BaseException as exc:
                self.fail(exc)
                raise
            with self._cond:
                held[0] = batch
                self._cond.notify_all()
        with self._cond:
            while held[0] is None:
                self._check()
                self._cond.wait()
            held[1].add(view)
            if len(held[1]) >= self.consumers and self._held.get(key) is held:
                del self._held[key]
                self._cond.notify_all()
            return held[0]


def why_not_together() -> str | None:
    """Why segments cannot train together on this Keras backend (None where trainings in threads train exactly as
    each would alone): Keras's PyTorch
    backend draws the dropout masks of unseeded layers from torch's one global generator, so trainings in threads
    would draw each other's masks."""
    if keras.backend.backend() == "torch":
        return ("under PyTorch, dropout draws from one global generator, so segments trained together would not "
                "train as alone")
    return None


class SharedPassStopped(ModelError):
    """A training of a shared pass stopped because another one failed or was interrupted."""


class BatchView(keras.utils.PyDataset):
    """One training's view of :class:`SharedBatches`: what :class:`~codecbench.training.loop.AugmentedBatches` is to
    a training alone (its length, its epoch, its batches), the reading shared."""

    def __init__(self, shared: SharedBatches, number: int):
        super().__init__(workers=1, use_multiprocessing=False)
        self.shared, self.number, self.epoch = shared, number, 0

    def __len__(self) -> int:
        return len(self.shared)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.shared.set_epoch(self.number, epoch)

    def __getitem__(self, index: int):
        return self.shared.take(self.number, self.epoch, index)


def train_together(runs: Sequence[Callable[[Any, Any], list[dict]]], shared: SharedBatches) -> list[list[dict]]:
    """Run ``runs`` in threads over one pass of ``shared``: each is called as ``run(view, setup_lock)`` (and passes
    both to :func:`~codecbench.training.loop.fit`); returns their rows in order. The first failure stops the others
    and is raised; an interrupt (Ctrl-C) stops them all and propagates."""
    if len(runs) != shared.consumers:
        raise ArgumentError(f"train_together: {len(runs)} runs for a pass shared by {shared.consumers}")
    lock = threading.Lock()

    def stop_the_others(future) -> None:  # a training that failed takes no more batches: the others would wait
        if future.exception() is not None:
            shared.fail(future.exception())

    with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="codecbench-shared-pass") as pool:
        futures = [pool.submit(run, shared.view(), lock) for run in runs]
        for future in futures:
            future.add_done_callback(stop_the_others)
        try:
            for future in futures:
                future.exception()  # waits
        except BaseException as exc:  # KeyboardInterrupt in this (the main) thread: stop the trainings
            shared.fail(exc)
            raise
    errors = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in errors if not isinstance(e, SharedPassStopped)), errors[0] if errors else None)
    if first is not None:
        raise first
    return [f.result() for f in futures]
