"""Model inputs read by worker processes, so a host keeps an accelerator fed.

Reading a cached feature entry (a file read, a checksum, the deltas) or decoding a cached bitstream holds the GIL for
much of its time, so threads in the model's process do not scale with cores. A :class:`ProcessFeed` wraps any batch
reader of :mod:`codecbench.store.inputs` and serves each batch from ``workers`` processes: the batch is split into
one chunk per worker, each chunk travels as a small reader of its own clips (``reader.take``), is read there, and is
stacked here.
A worker that dies (killed for memory, say) breaks the pool: it is started again and the batch read once more,
else :class:`FeedError` names what happened, and that batch's shared block is removed. A block whose batch was read
is lent to the caller as the batch itself, without a copy, and kept for the next batches when the caller drops it (a
few, removed at exit).
Workers are started with ``forkserver`` (``spawn`` where that is missing), never forked from a process that already
runs a Keras backend's threads, and import codecbench's store modules only (no Keras).

:func:`feeding` is how the evaluator and the training loop use it: a process feed when
:func:`codecbench.store.devices.feed_workers` asks for workers (an accelerator is present, or
``CODECBENCH_FEED_WORKERS``), else the reader itself.
"""
from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import threading
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Protocol

import numpy as np

from codecbench.errors import ArgumentError
from codecbench.store.devices import feed_workers
from codecbench.store.fill import EncodeError
from codecbench.store.inputs import pad_into


class BatchReader(Protocol):
    """What :class:`ProcessFeed` serves: a batch reader of :mod:`codecbench.store.inputs`."""

    def __len__(self) -> int: ...

    def __call__(self, indices) -> np.ndarray: ...

    def take(self, indices) -> Any: ...


_POOLS: dict[int, ProcessPoolExecutor] = {}
_LOCK = threading.Lock()
#: Shared blocks whose batch is done, kept for the next batches: a new block's pages are faulted in and zeroed by the
#: workers' first writes and freed again at unlink, which cost about 2 ms per 10-s waveform (as much as a tenth of
#: decoding it). At most :data:`KEEP_BLOCKS` are kept; all are unlinked by :func:`shutdown` (at exit).
_FREE_BLOCKS: list[SharedMemory] = []
KEEP_BLOCKS = 4


def _block(size: int) -> SharedMemory:
    """A shared block of at least ``size`` bytes: a kept one if one fits, else a new one."""
    _take_back()
    with _LOCK:
        for i, block in enumerate(_FREE_BLOCKS):
            if block.size >= size:
                return _FREE_BLOCKS.pop(i)
    return SharedMemory(create=True, size=max(1, size))


def _release(block: SharedMemory, *, keep: bool) -> None:
    """Keep a block for the next batch (up to :data:`KEEP_BLOCKS`, the smallest dropped first), or remove it."""
    dropped = [block]
    if keep:
        with _LOCK:
            _FREE_BLOCKS.append(block)
            _FREE_BLOCKS.sort(key=lambda b: b.size, reverse=True)
            dropped = _FREE_BLOCKS[KEEP_BLOCKS:]
            del _FREE_BLOCKS[KEEP_BLOCKS:]
    for gone in dropped:
        _remove(gone)


def _remove(block: SharedMemory) -> None:
    """Unlink a block and unmap it; a block whose last batch is being freed right now is still pinned for a moment:
    it is unmapped when its object goes (its name is gone already, so nothing else can map it)."""
    block.unlink()
    try:
        block.close()
    except BufferError:
        pass


class _Lease:
    """The memory of one batch in a shared block, lent to the caller without a copy.

    The batch array is made from this object (``__array_interface__``), so every view of the batch keeps it alive;
    when the last one is gone the block goes back to the kept blocks for the next batch (:func:`lend`). Copying the
    batch out instead cost the caller's process 0.7-2.5 ms of CPU per 10-s waveform (a fresh allocation, its pages
    faulted in, the copy; 0.06 ms lent), taken from the workers on a machine whose cores they all use. The lease pins
    the block's mapping, so the block cannot be unmapped while the batch is in use.
    """

    def __init__(self, block: SharedMemory, shape: tuple, dtype: np.dtype):
        buffer = block.buf
        if buffer is None:  # closed: a programming error, never a batch
            raise FeedError(f"shared block {block.name} is closed")
        self._pin = ctypes.c_char.from_buffer(buffer)
        self.__array_interface__ = {"shape": tuple(shape), "typestr": dtype.str, "version": 3,
                                    "data": (ctypes.addressof(self._pin), False)}


#: Blocks whose lent batch is gone, put here by the lease's finalizer (which may run inside any code, garbage
#: collection included, so it takes no lock) and kept or removed by the next :func:`_block` or :func:`shutdown`.
_RETURNED: list[SharedMemory] = []


#: The names of the blocks lent now. At most :data:`LEND_BLOCKS` are lent at once (the batches in flight of a reader
#: and a model): a caller that holds more (inputs kept between models) gets copies, so shared memory (often a small
#: ``/dev/shm``) holds no more than a few batches.
_LENT: set[str] = set()
LEND_BLOCKS = 8


def lend(block: SharedMemory, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The batch of ``shape`` at the start of ``block``, without a copy; the block is kept for the next batches once
    the batch and all its views are gone. Beyond :data:`LEND_BLOCKS` batches lent, a copy (the block kept at once)."""
    _take_back()
    with _LOCK:
        lent = len(_LENT) < LEND_BLOCKS
        if lent:
            _LENT.add(block.name)
    if not lent:
        view = np.ndarray(shape, dtype=dtype, buffer=block.buf)
        batch = view.copy()
        del view
        _release(block, keep=True)
        return batch
    lease = _Lease(block, shape, dtype)
    weakref.finalize(lease, _RETURNED.append, block)
    return np.asarray(lease)


def _take_back() -> None:
    """Keep (or remove) the blocks whose lent batch is gone."""
    while _RETURNED:
        block = _RETURNED.pop()
        with _LOCK:
            _LENT.discard(block.name)
        _release(block, keep=True)


def _read_into(task) -> None:
    """In a worker: read a chunk's clips and write them into the batch's shared block at their offset (each clip
    straight into its row when the reader reads clips one by one: no chunk stacked on the way)."""
    sub_reader, block, shape, dtype, offset = task
    get: Any = getattr(sub_reader, "get", None)
    chunk = None if get is not None else np.asarray(sub_reader(range(len(sub_reader))), dtype=dtype)
    if chunk is not None and chunk.shape[1:] != tuple(shape):
        raise EncodeError(f"feed worker: a clip's input has shape {chunk.shape[1:]}, the batch {tuple(shape)} (a "
                          "reader must pad every clip to one shape)")
    memory = _mapped(block)
    out = np.ndarray((len(sub_reader), *shape), dtype=dtype, buffer=memory.buf, offset=offset)
    try:
        if chunk is not None:
            out[:] = chunk
        else:
            for j in range(len(sub_reader)):
                try:
                    pad_into(out[j], np.asarray(get(j)))
                except EncodeError as exc:
                    raise EncodeError(f"feed worker: {exc}") from None
    finally:
        del out


#: In a worker: the blocks it has mapped, most recent last. The parent reuses its blocks, so a worker keeps their
#: mappings (a new mapping's pages fault in again on first touch: about 0.5 ms per 10-s waveform); as many as the
#: parent keeps (its batches in flight and lent rotate through them), so a block the parent removed is unmapped (and
#: its memory freed) soon after.
_MAPPED: dict[str, SharedMemory] = {}
MAPPED_BLOCKS = KEEP_BLOCKS


def _mapped(name: str) -> SharedMemory:
    memory = _MAPPED.pop(name, None) or SharedMemory(name=name)
    _MAPPED[name] = memory
    while len(_MAPPED) > MAPPED_BLOCKS:
        _MAPPED.pop(next(iter(_MAPPED))).close()
    return memory


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def shared_pool(workers: int) -> ProcessPoolExecutor:
    """The process's pool of ``workers`` feed processes, made once and shared by every reader (one pool, however
    many conditions and models a run reads)."""
    with _LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
        return _POOLS[workers]


def _discard(workers: int, pool: ProcessPoolExecutor) -> None:
    """Forget a broken pool, so the next batch starts a new one."""
    with _LOCK:
        if _POOLS.get(workers) is pool:
            del _POOLS[workers]
    pool.shutdown(wait=False, cancel_futures=True)


class FeedError(EncodeError):
    """The feed's worker processes died on a batch, even after the pool was started again."""


@atexit.register
def shutdown() -> None:
    """Stop every feed process and remove the kept shared blocks (at exit, or when a caller is done with the feed)."""
    _take_back()
    with _LOCK:
        for pool in _POOLS.values():
            pool.shutdown(wait=False, cancel_futures=True)
        _POOLS.clear()
        blocks = list(_FREE_BLOCKS)
        _FREE_BLOCKS.clear()
    for block in blocks:
        _remove(block)


class ProcessFeed:
    """``reader`` served by ``workers`` processes: ``feed(indices)`` equals ``reader(indices)``.

    Parameters
    ----------
    reader : callable
        A batch reader with ``take(indices)`` (a picklable reader of just those clips, same padding), e.g.
        :class:`codecbench.store.inputs.CachedFeatures` or :class:`~codecbench.store.inputs.CodedWaveforms`.
    workers : int
        Worker processes (at least 1), from the shared pool of that size.
    min_chunk : int
        Clips per worker below which a batch is read by fewer workers (a process hop costs about a millisecond).
    """

    def __init__(self, reader: BatchReader, *, workers: int, min_chunk: int = 2):
        if workers < 1:
            raise ArgumentError(f"ProcessFeed: workers must be >= 1, got {workers}")
        if not callable(getattr(reader, "take", None)):
            raise ArgumentError(f"ProcessFeed: {type(reader).__name__} has no take(indices), so it cannot be read in "
                                "worker processes")
        self.reader, self.workers, self.min_chunk = reader, int(workers), max(1, int(min_chunk))

    def __len__(self) -> int:
        return len(self.reader)

    def __getattr__(self, name: str):  # pad_to, longest, get, ...: the reader's own
        if name in ("reader", "_sample"):
            raise AttributeError(name)
        return getattr(self.reader, name)

    def __call__(self, indices) -> np.ndarray:
        indices = [int(i) for i in indices]
        if len(indices) < 2:
            return self.reader(indices)
        first = self._first()
        shape, dtype = first.shape, first.dtype
        per_clip = int(np.prod(shape)) * dtype.itemsize
        parts = max(1, min(self.workers, len(indices) // self.min_chunk))
        # the workers write straight into one shared block (pickling arrays back through pipes costs more than
        # reading them); the batch is that block, lent without a copy until the caller drops it, and a failed
        # batch's block is removed
        block = _block(per_clip * len(indices))
        try:
            tasks, offset = [], 0
            for chunk in np.array_split(np.asarray(indices), parts):
                tasks.append((self.reader.take([int(i) for i in chunk]), block.name, shape, dtype, offset))
                offset += per_clip * len(chunk)
            self._read(tasks, len(indices))
        except BaseException:
            _release(block, keep=False)
            raise
        return lend(block, (len(indices), *shape), dtype)

    def _read(self, tasks: list, clips: int) -> None:
        """Run the chunks on the shared pool; a pool whose worker died (the OOM killer, a signal) is replaced and
        the batch read once more, then a named error."""
        for attempt in (1, 2):
            pool = shared_pool(self.workers)
            try:
                list(pool.map(_read_into, tasks))
                return
            except BrokenProcessPool:
                _discard(self.workers, pool)
                if attempt == 2:
                    raise FeedError(f"feed workers died twice reading a batch of {clips} clips ({self.workers} "
                                    "workers; killed for memory?): read in this process with "
                                    "CODECBENCH_FEED_WORKERS=0, or use fewer workers") from None

    def _first(self) -> np.ndarray:
        """One clip's input (the shape and dtype of every clip: the reader pads all to one)."""
        if not hasattr(self, "_sample"):
            self._sample = np.asarray(self.reader([0]))[0]
        return self._sample

    def warm_up(self) -> None:
        """Start every worker now (imports take a second or two per process), not at the first batch."""
        if len(self.reader) > 1:  # one small chunk per worker, not the whole set per worker
            self([i % len(self.reader) for i in range(self.workers * self.min_chunk)])


def feeding(reader: BatchReader, workers: int | None = None):
    """``reader`` behind a :class:`ProcessFeed` when there are feed workers (default:
    :func:`codecbench.store.devices.feed_workers`), else ``reader`` itself."""
    if workers is None:
        workers = feed_workers()
    return ProcessFeed(reader, workers=workers) if workers and len(reader) > 1 else reader
