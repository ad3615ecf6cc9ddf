"""Model inputs read from the cache: the features (or decoded waveforms) of clips under a condition, computed
where missing by :func:`codecbench.store.fill.fill`, read lazily in batches (:class:`CachedFeatures`,
:class:`CodedWaveforms`; :func:`input_reader`) or stacked (:func:`load_features`).

Clips of different lengths are padded at the end (:func:`stack_to_longest`): a reader made by :func:`input_reader`
pads every batch to the longest clip of the whole selection (read from the entries' headers), so a clip's input,
and so its prediction, does not depend on which clips share its batch.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import soundfile as sf

from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.core.vocabulary import OnError, ParallelBackend
from codecbench.signal.frontends import BASELINE
from codecbench.store.devices import reader_threads
from codecbench.store.fill import FEATURES_NS, EncodeError, clip_identity, clip_key, coded_signal, feature_key, fill


def feature_keys(clips: Sequence, cond: Condition, cache: Cache, *, frontend=None, jobs: int | None = None,
                 backend: ParallelBackend = "loky", scheduler: str | None = None, progress: bool | None = None,
                 on_error: OnError = "raise") -> tuple[list[str], list[int]]:
    """Cache keys of the (log-mel) features of ``clips`` under ``condition``, computing whatever is missing.

    Returns the keys and the indices of the clips they belong to (all of them, unless
    ``on_error="skip"`` dropped some).
    """

    frontend = frontend or BASELINE
    paths = [str(getattr(c, "path", c)) for c in clips]
    keys = []
    for p in paths:
        digest, rate = clip_identity(p)
        keys.append(feature_key(digest, cond, rate, frontend))
    missing = [p for p, k in zip(paths, keys) if not cache.contains(FEATURES_NS, k)]
    if missing:
        fill(missing, [cond], cache, with_features=[frontend], jobs=jobs, backend=backend, scheduler=scheduler,
             progress=progress, on_error=on_error)
    kept = [i for i, k in enumerate(keys) if cache.contains(FEATURES_NS, k)]
    if on_error == "raise" and len(kept) < len(keys):
        # entries that vanished after the fill (a concurrent `cache gc` or `clear`): computed once more, and if
        # they are still missing the run fails naming them, rather than scoring a silent subset
        lost = [paths[i] for i, k in enumerate(keys) if not cache.contains(FEATURES_NS, k)]
        fill(lost, [cond], cache, with_features=[frontend], jobs=jobs, backend=backend, scheduler=scheduler,
             progress=False, on_error="raise")
        kept = [i for i, k in enumerate(keys) if cache.contains(FEATURES_NS, k)]
        if len(kept) < len(keys):
            gone = [paths[i] for i, k in enumerate(keys) if not cache.contains(FEATURES_NS, k)]
            raise EncodeError(f"{len(gone)} of {len(keys)} clips have no cached features under {cond.name} "
                              f"({frontend.describe()}) after coding them twice (is another process removing cache "
                              f"entries, e.g. `codecbench cache gc`?): {', '.join(gone[:5])}"
                              + (" ..." if len(gone) > 5 else ""))
    return [keys[i] for i in kept], kept


class CachedFeatures:
    """Features read from the cache on demand, so a training set need not fit in memory.

    A corrupt entry found while reading is recomputed from its clip (the cache warns).
    """

    def __init__(self, cache: Cache, keys: Sequence[str], paths: Sequence[str], conditions: Sequence[Condition],
                 frontend=None, pad_to: tuple[int, ...] | None = None):

        self.cache, self.keys, self.paths, self.conditions = cache, list(keys), list(paths), list(conditions)
        self.frontend = frontend or BASELINE
        #: the shape every batch is padded to (None: to the longest of the batch)
        self.pad_to = pad_to

    def longest(self) -> tuple[int, ...] | None:
        """The model-input shape of the longest clip, from the entries' headers; None when all have one shape."""
        finished: dict[tuple, tuple] = {}
        shapes = set()
        for i, key in enumerate(self.keys):
            stored = self.cache.shape(FEATURES_NS, key)
            if stored is None:  # missing or unreadable: read it (recomputed if need be)
                shapes.add(self.get(i).shape)
                continue
            if stored not in finished:
                finished[stored] = self.frontend.finish(np.zeros(stored, dtype=np.float32)).shape
            shapes.add(finished[stored])
        return tuple(int(n) for n in np.max(sorted(shapes), axis=0)) if len(shapes) > 1 else None

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, i: int) -> np.ndarray:
        entry = self.cache.load(FEATURES_NS, self.keys[i])
        if entry is not None and not np.isfinite(entry[0]).all():
            # a stored entry with NaN/Inf (its checksum may be valid: written so, or altered and re-sealed) is
            # damage to the cache, not the front-end's doing: removed, named, and computed again from the source
            self.cache.discard(FEATURES_NS, self.keys[i], f"the features of {self.paths[i]} "
                               f"[{self.conditions[i].name}] hold NaN/Inf")
            entry = None
        if entry is None:
            fill([self.paths[i]], [self.conditions[i]], self.cache, with_features=[self.frontend], jobs=1,
                 progress=False)
            entry = self.cache.load(FEATURES_NS, self.keys[i])
            if entry is None:
                raise EncodeError(f"{self.paths[i]} [{self.conditions[i].name}]: its features vanished from the "
                                  "cache right after they were computed (another process clearing it?)")
        return self.frontend.finish(entry[0])

    def __call__(self, indices) -> np.ndarray:
        return stack_to_longest([self.get(int(i)) for i in indices], shape=self.pad_to)

    def take(self, indices) -> "CachedFeatures":
        """A reader of just these clips, padded as this one (what a feed worker process receives)."""
        idx = [int(i) for i in indices]
        return CachedFeatures(self.cache, [self.keys[i] for i in idx], [self.paths[i] for i in idx],
                              [self.conditions[i] for i in idx], self.frontend, self.pad_to)


def cached_features(clips: Sequence, condition: Condition, cache: Cache, *, frontend=None,
                    **kwargs) -> tuple[CachedFeatures, list[int]]:
    """Fill the cache for ``clips`` under ``condition`` and return a lazy reader and the kept indices."""
    keys, kept = feature_keys(clips, condition, cache, frontend=frontend, **kwargs)
    paths = [str(getattr(clips[i], "path", clips[i])) for i in kept]
    return CachedFeatures(cache, keys, paths, [condition] * len(keys), frontend), kept


class CodedWaveforms:
    """Waveform model inputs (front-ends that are not cached) decoded from the cached bitstreams on demand.

    ``keys``: the clips' coded-entry keys (:func:`codecbench.store.fill.coded_key`), made once where the reader is
    made, so a feed worker reads and decodes and does not hash sources; without them each clip's is made on read.
    """

    def __init__(self, cache: Cache, paths: Sequence[str], condition: Condition, frontend,
                 pad_to: tuple[int, ...] | None = None, keys: Sequence[str] | None = None):
        self.cache, self.paths, self.condition, self.frontend = cache, list(paths), condition, frontend
        self.pad_to = pad_to
        self.keys = list(keys) if keys is not None else None

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, i: int) -> np.ndarray:
        key = self.keys[i] if self.keys is not None else None
        return self.frontend(*coded_signal(self.paths[i], self.condition, self.cache, key))

    def __call__(self, indices) -> np.ndarray:
        return stack_to_longest([self.get(int(i)) for i in indices], shape=self.pad_to)

    def take(self, indices) -> "CodedWaveforms":
        """A reader of just these clips, padded as this one (what a feed worker process receives)."""
        idx = [int(i) for i in indices]
        return CodedWaveforms(self.cache, [self.paths[i] for i in idx], self.condition, self.frontend, self.pad_to,
                              None if self.keys is None else [self.keys[i] for i in idx])

    def longest(self) -> tuple[int, ...] | None:
        """The input shape of the longest clip, from the sources' headers (a coded clip keeps its source's length,
        and the front-end's resampling maps a length to one length); None when all have one shape."""

        lengths: dict[tuple[int, int], int] = {}
        shapes = set()
        for path in self.paths:
            info = sf.info(path)
            key = (int(info.frames), int(info.samplerate))
            if key not in lengths:
                lengths[key] = len(self.frontend(np.zeros(key[0], dtype=np.float32), key[1]))
            shapes.add(lengths[key])
        return (max(shapes),) if len(shapes) > 1 else None


def input_reader(clips: Sequence, cond: Condition, cache: Cache, *, frontend=None,
                 **kwargs) -> tuple[CachedFeatures | CodedWaveforms, list[int]]:
    """A batch reader of the model inputs of ``clips`` under ``cond`` for ``frontend`` (default: the baseline's), the
    cache filled first; batches are padded to the longest clip of the selection. Returns the reader and the indices
    of the clips it serves (all of them, unless ``on_error="skip"`` dropped some)."""

    frontend = frontend or BASELINE
    reader: CachedFeatures | CodedWaveforms
    if frontend.cached:
        reader, kept = cached_features(clips, cond, cache, frontend=frontend, **kwargs)
    else:
        paths = [str(getattr(c, "path", c)) for c in clips]
        summary = fill(paths, [cond], cache, **kwargs)  # codes what is missing; a waveform is not cached
        failed = {p for p, _, _ in summary.failures}
        kept = [i for i, p in enumerate(paths) if p not in failed]
        reader = CodedWaveforms(cache, [paths[i] for i in kept], cond, frontend,
                                keys=[clip_key(paths[i], cond) for i in kept])
    reader.pad_to = reader.longest()
    return reader, kept


def pad_into(row: np.ndarray, a: np.ndarray) -> None:
    """Write one clip's input into its row of a batch, padded at its end as :func:`stack_to_longest` pads it."""
    if a.shape == row.shape:
        row[...] = a
        return
    if a.ndim != row.ndim or any(s > n for s, n in zip(a.shape, row.shape)):
        raise EncodeError(f"a clip's input has shape {a.shape}, its batch row {row.shape} (a reader must pad every "
                          "clip to one shape)")
    row[...] = 0.0 if a.ndim == 1 else float(a.min())
    row[tuple(slice(0, s) for s in a.shape)] = a


def stack_to_longest(arrays: Sequence[np.ndarray], shape: Sequence[int] | None = None) -> np.ndarray:
    """Stack model inputs of clips of different lengths (UrbanSound8K, ESC-50, ...): each is padded at its end to
    ``shape`` (default: the longest), with silence for a waveform and with the clip's own lowest value (its log
    floor) for features. Inputs of equal shape are stacked as they are."""
    if not arrays or (shape is None or tuple(shape) == arrays[0].shape) and all(a.shape == arrays[0].shape
                                                                               for a in arrays):
        return np.stack(arrays) if arrays else np.zeros((0,), dtype=np.float32)
    if len({a.ndim for a in arrays}) != 1:
        raise EncodeError(f"cannot stack inputs of different ranks: {sorted({a.shape for a in arrays})}")
    longest = np.max([a.shape for a in arrays] + ([tuple(shape)] if shape is not None else []), axis=0)
    out = []
    for a in arrays:
        fill_value = 0.0 if a.ndim == 1 else float(a.min())
        out.append(np.pad(a, [(0, int(n - s)) for s, n in zip(a.shape, longest)], constant_values=fill_value))
    return np.stack(out)


def load_features(clips: Sequence, cond: Condition, cache: Cache, *, frontend=None,
                  **kwargs) -> tuple[np.ndarray, list[int]]:
    """Stacked model inputs of ``clips`` under ``condition`` for ``frontend`` (default: the baseline's log-mel,
    (N, 128, T, 3)), filling the cache as needed. Waveform front-ends decode the cached bitstreams."""
    reader, kept = input_reader(clips, cond, cache, frontend=frontend, **kwargs)
    if not len(reader) and isinstance(reader, CachedFeatures):
        raise EncodeError(f"no features could be computed for {cond.name}")
    return reader(range(len(reader))), kept


#: Model inputs kept in memory between models, all conditions together (see :mod:`codecbench.run.evaluation`).
KEEP_INPUTS_BYTES = 512 << 20
#: Input bytes per inference batch (here and in :func:`codecbench.models.predict.predict_proba`, so a batch read here
#: is one batch of the model). Large batches amortise per-call overhead; the budget bounds activation memory: the
#: paper FCNN (650 KB of input per 10-s clip) runs 25 clips at a time and peaks about 0.6 GB above its weights (at
#: 100 clips: 2.0 GB); the demo's small FCNN runs 138.
INPUT_BUDGET_BYTES = 16 << 20


class Inputs:
    """The model inputs of one condition for one front-end: a batch reader over the cache (or over an array while
    kept in memory), checked for NaN/Inf batch by batch, naming the clips."""

    def __init__(self, reader, names: list[str], condition: str, frontend):
        self.reader, self.names, self.condition, self.frontend = reader, names, condition, frontend
        self._array: np.ndarray | None = None
        self._first = self.reader(range(1))[0] if len(reader) else None
        self.nbytes = len(reader) * (int(np.prod(self._first.shape)) if self._first is not None else 0) * 4
        per_clip = int(np.prod(self._first.shape)) * 4 if self._first is not None else 1
        self.batch_size = max(1, INPUT_BUDGET_BYTES // per_clip)

    def __len__(self) -> int:
        return len(self.reader)

    @property
    def in_memory(self) -> bool:
        return self._array is not None

    def first(self) -> np.ndarray:
        """The first clip's input (what a model's input check looks at)."""
        if self._first is None:
            raise EncodeError(f"{self.condition}: no clip to score")
        return self._first

    def keep(self) -> None:
        """Read every input once and keep it (read-only: one array serves every model, none can change it)."""
        x = self._read(range(len(self)))
        x.setflags(write=False)
        self._array = x

    def release(self) -> None:
        self._array = None

    def __call__(self, indices) -> np.ndarray:
        if self._array is not None:
            return self._array[indices.start:indices.stop] if isinstance(indices, range) and indices.step == 1 \
                else self._array[list(indices)]
        return self._read(indices)

    def _read(self, indices) -> np.ndarray:
        x = self.reader(indices)
        check_finite(x, [self.names[i] for i in indices], self.condition, self.frontend)
        return x


def check_finite(x: np.ndarray, clips: list[str], condition: str, frontend) -> None:
    """Refuse features with NaN or Inf before any model sees them (a model may map them to ordinary
    predictions), naming the clips and the front-end."""
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1) if len(x) else np.zeros(0, dtype=bool)
    if bad.any():
        names = [c for c, b in zip(clips, bad) if b]
        raise EncodeError(f"{condition}: front-end {frontend.describe()} gave non-finite features (NaN/Inf) for "
                          f"{len(names)} of {len(clips)} clips, e.g. {', '.join(names[:3])} (digital silence under "
                          "a log without offset? give the front-end a log_offset > 0)")


def predict_stream(predict, reader, *, batch_size: int, prefetch: int = 2, threads: int | None = None):
    """``predict(batch)`` over every item of ``reader`` (a callable taking indices, such as
    :class:`~codecbench.store.inputs.CachedFeatures` or :class:`Inputs`), reading the next batches in threads while the
    model runs.

    Reading a batch from the cache is file I/O and NumPy, which release the GIL, so on a CPU the reads overlap
    the model's own threads and on an accelerator they keep it fed (``threads``: default
    :func:`~codecbench.store.devices.reader_threads`; ``prefetch``: batches read ahead per thread). Returns the
    stacked outputs, (N, ...), or ``{key: (N, ...)}`` when ``predict`` returns a dict per batch.
    """


    threads = threads or reader_threads()
    prefetch = prefetch * threads
    starts = list(range(0, len(reader), batch_size))
    outputs: list = []
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="codecbench-read") as pool:
        pending = [pool.submit(reader, range(s, min(s + batch_size, len(reader)))) for s in starts[:prefetch]]
        for i in range(len(starts)):
            batch = pending.pop(0).result()
            if i + prefetch < len(starts):
                s = starts[i + prefetch]
                pending.append(pool.submit(reader, range(s, min(s + batch_size, len(reader)))))
            out = predict(batch)
            outputs.append(out if isinstance(out, dict) else np.asarray(out))
            del batch  # the next batch is already being read: hold one at a time beyond those
    if outputs and isinstance(outputs[0], dict):
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    return np.concatenate(outputs) if outputs else np.zeros((0,), dtype=np.float32)
