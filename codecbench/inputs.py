"""Model inputs read from the cache: the features (or decoded waveforms) of clips under a condition, computed
where missing by :func:`codecbench.encode.fill`, read lazily (:class:`CachedFeatures`) or stacked.

Clips of different lengths are padded at the end to the longest of the batch (:func:`stack_to_longest`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .cache import Cache
from .codecs import Condition
from .encode import FEATURES_NS, EncodeError, coded_signal, feature_key, fill
from .fsutil import file_digest


def feature_keys(clips: Sequence, cond: Condition, cache: Cache, *, frontend=None, jobs: int | None = None,
                 backend: str = "loky", scheduler: str | None = None, progress: bool | None = None,
                 on_error: str = "raise") -> tuple[list[str], list[int]]:
    """Cache keys of the (log-mel) features of ``clips`` under ``condition``, computing whatever is missing.

    Returns the keys and the indices of the clips they belong to (all of them, unless
    ``on_error="skip"`` dropped some).
    """
    from .frontends import BASELINE

    frontend = frontend or BASELINE
    paths = [str(getattr(c, "path", c)) for c in clips]
    keys = [feature_key(file_digest(p), cond, frontend) for p in paths]
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
                 frontend=None):
        from .frontends import BASELINE

        self.cache, self.keys, self.paths, self.conditions = cache, list(keys), list(paths), list(conditions)
        self.frontend = frontend or BASELINE

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, i: int) -> np.ndarray:
        entry = self.cache.load(FEATURES_NS, self.keys[i])
        if entry is None:
            fill([self.paths[i]], [self.conditions[i]], self.cache, with_features=[self.frontend], jobs=1,
                 progress=False)
            entry = self.cache.load(FEATURES_NS, self.keys[i])
            if entry is None:
                raise EncodeError(f"{self.paths[i]} [{self.conditions[i].name}]: its features vanished from the "
                                  "cache right after they were computed (another process clearing it?)")
        return self.frontend.finish(entry[0])

    def __call__(self, indices) -> np.ndarray:
        return stack_to_longest([self.get(int(i)) for i in indices])

    def concat(self, other: "CachedFeatures") -> "CachedFeatures":
        if other.frontend != self.frontend:
            raise EncodeError("cannot concatenate features of two different front-ends")
        return CachedFeatures(self.cache, self.keys + other.keys, self.paths + other.paths,
                              self.conditions + other.conditions, self.frontend)


def cached_features(clips: Sequence, condition: Condition, cache: Cache, *, frontend=None,
                    **kwargs) -> tuple[CachedFeatures, list[int]]:
    """Fill the cache for ``clips`` under ``condition`` and return a lazy reader and the kept indices."""
    keys, kept = feature_keys(clips, condition, cache, frontend=frontend, **kwargs)
    paths = [str(getattr(clips[i], "path", clips[i])) for i in kept]
    return CachedFeatures(cache, keys, paths, [condition] * len(keys), frontend), kept


def stack_to_longest(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack model inputs of clips of different lengths (UrbanSound8K, ESC-50, ...): each is padded at its end to
    the longest, with silence for a waveform and with the clip's own lowest value (its log floor) for features.
    Inputs of equal shape are stacked as they are."""
    if not arrays or all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays) if arrays else np.zeros((0,), dtype=np.float32)
    if len({a.ndim for a in arrays}) != 1:
        raise EncodeError(f"cannot stack inputs of different ranks: {sorted({a.shape for a in arrays})}")
    longest = np.max([a.shape for a in arrays], axis=0)
    out = []
    for a in arrays:
        fill_value = 0.0 if a.ndim == 1 else float(a.min())
        out.append(np.pad(a, [(0, int(n - s)) for s, n in zip(a.shape, longest)], constant_values=fill_value))
    return np.stack(out)


def load_features(clips: Sequence, cond: Condition, cache: Cache, *, frontend=None,
                  **kwargs) -> tuple[np.ndarray, list[int]]:
    """Stacked model inputs of ``clips`` under ``condition`` for ``frontend`` (default: the baseline's log-mel,
    (N, 128, T, 3)), filling the cache as needed. Waveform front-ends decode the cached bitstreams."""
    from .frontends import BASELINE

    frontend = frontend or BASELINE
    if not frontend.cached:
        paths = [str(getattr(c, "path", c)) for c in clips]
        summary = fill(paths, [cond], cache, **kwargs)  # codes what is missing; a waveform is not cached
        failed = {p for p, _, _ in summary.failures}
        kept = [i for i, p in enumerate(paths) if p not in failed]
        return stack_to_longest([frontend(*coded_signal(paths[i], cond, cache)) for i in kept]), kept
    reader, kept = cached_features(clips, cond, cache, frontend=frontend, **kwargs)
    if not len(reader):
        raise EncodeError(f"no features could be computed for {cond.name}")
    return reader(range(len(reader))), kept
