"""Filling the cache: every (clip, condition) pair coded once, and featurised once.

One task per clip reads the source only if something is missing, codes it under each
missing condition, extracts features if asked, and stores each result atomically. Tasks
run through :func:`codecbench.parallel.parallel_map`, so loky, threads or a dask cluster
fill the same cache. A failing clip is reported with its file name; with
``on_error="skip"`` the rest go on and the failure is listed in the summary.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from . import codecs
from .audio import TARGET_SR, AudioError, read_audio
from .cache import Cache, make_key
from .codecs import Condition
from .errors import CodecbenchError, UsageError
from .fsutil import file_digest
from .parallel import parallel_map

log = logging.getLogger("codecbench")

#: What the encoder produced for a (clip, condition), decoded on read (see :class:`codecbench.codecs.Bitstream`)
CODED_NS = "coded"
#: Features of a (clip, condition), stored compactly (see :func:`codecbench.features.static`)
FEATURES_NS = "features"


class EncodeError(CodecbenchError, RuntimeError):
    """A clip failed to code or featurise; the message names the file and condition."""


def coded_key(source_digest: str, condition: Condition) -> str:
    # the library and route that code the condition are part of the key: different encoders, different audio
    return make_key("coded", source_digest, condition.name, TARGET_SR, codecs.library_versions(),
                    codecs.codec_library(condition))


def feature_key(source_digest: str, condition: Condition, frontend=None) -> str:
    """The key of a clip's features under a condition and a (log-mel) front-end (default: the baseline's)."""
    from .frontends import BASELINE
    return make_key("features", coded_key(source_digest, condition), (frontend or BASELINE).cache_key())


def _frontends(with_features) -> list:
    """``True`` -> the baseline front-end; a list of front-ends (or their dicts) -> the cached (log-mel) ones."""
    from .frontends import BASELINE, parse_frontend
    if not with_features:
        return []
    if with_features is True:
        return [BASELINE]
    return [fe for fe in (parse_frontend(f) for f in with_features) if fe.cached]


@dataclasses.dataclass
class ClipOutcome:
    path: str
    hits: int = 0
    misses: int = 0
    #: condition -> (coded bytes, seconds of audio), so bit rates are averaged weighted by duration
    coded: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FillSummary:
    clips: int
    conditions: list[str]
    hits: int
    misses: int
    seconds: float
    kbps: dict[str, float]
    failures: list[tuple[str, str, str]]
    notes: list[tuple[str, str]]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def report(self) -> str:
        lines = [f"{self.clips} clips x {len(self.conditions)} conditions: {self.hits} cache hits, "
                 f"{self.misses} misses, {self.seconds:.1f} s"]
        for cond, kbps in self.kbps.items():
            lines.append(f"  {cond:<12} achieved {kbps:7.1f} kbps")
        for path, note in self.notes[:20]:
            lines.append(f"  note: {path}: {note}")
        if self.failures:
            lines.append(f"  {len(self.failures)} failures (skipped):")
            lines += [f"    {path} [{cond}]: {err}" for path, cond, err in self.failures]
        return "\n".join(lines)


def _process_clip(task) -> ClipOutcome:
    path, conditions, cache_root, frontend_dicts = task
    frontends = _frontends(frontend_dicts)
    cache = Cache(cache_root)
    out = ClipOutcome(str(path))
    try:
        digest = file_digest(path)
    except OSError as exc:
        out.failures.append(("*", f"cannot read file ({exc})"))
        return out
    source = None
    for cond in conditions:
        try:
            ckey = coded_key(digest, cond)
            fkeys = {feature_key(digest, cond, fe): fe for fe in frontends}
            coded = None if cond.is_original else load_bitstream(cache, ckey, cond)
            # features are only checked for presence here; a damaged one is found (and redone) when read
            todo = {k: fe for k, fe in fkeys.items() if not cache.contains(FEATURES_NS, k)}
            if (cond.is_original or coded is not None) and not todo:
                out.hits += 1
                if coded is not None:
                    out.coded[cond.name] = (coded.encoded_bytes, coded.duration_s)
                continue
            out.misses += 1
            if cond.is_original or coded is None:
                if source is None:
                    try:
                        source, notes = read_audio(path)
                    except AudioError as exc:  # the file itself is bad: no condition can be done
                        out.failures.append(("*", str(exc)))
                        return out
                    out.notes += notes
            if cond.is_original:
                signal = source
            else:
                signal = None
                if coded is not None and todo:
                    signal = decode_cached(cache, ckey, coded)
                    if signal is None:  # damaged: coded again from the source below
                        coded = None
                        if source is None:
                            source, notes = read_audio(path)
                            out.notes += notes
                if coded is None:
                    assert source is not None  # read above whenever nothing usable was cached
                    coded = codecs.encode(source, TARGET_SR, cond)
                    store_bitstream(cache, ckey, coded, source=Path(path).name, source_sha256=digest)
                    signal = codecs.decode(coded) if todo else None
                out.coded[cond.name] = (coded.encoded_bytes, coded.duration_s)
            for fkey, fe in todo.items():
                cache.store(FEATURES_NS, fkey, fe.stored(signal, TARGET_SR),
                            {"condition": cond.name, "frontend": fe.short_hash, "source": Path(path).name})
        except Exception as exc:  # reported per clip and condition; the caller decides to raise or skip
            out.failures.append((cond.name, f"{type(exc).__name__}: {exc}"))
    return out


def store_bitstream(cache: Cache, key: str, bitstream: codecs.Bitstream, **extra) -> None:
    meta = {**bitstream.header(), "library": codecs.codec_library(bitstream.condition), **extra}
    cache.store(CODED_NS, key, np.frombuffer(bitstream.payload, dtype=np.uint8), meta)


def load_bitstream(cache: Cache, key: str, condition: Condition | None = None) -> codecs.Bitstream | None:
    """The cached bitstream of ``key``, or None; an entry whose header does not describe a bitstream of
    ``condition`` is damaged: removed (with a warning naming it) and so recomputed."""
    entry = cache.load(CODED_NS, key)
    if entry is None:
        return None
    payload, meta = entry
    try:
        bitstream = codecs.Bitstream.from_header(meta, payload.tobytes())
    except (KeyError, TypeError, ValueError) as exc:
        cache.discard(CODED_NS, key, f"its header is not a bitstream's ({type(exc).__name__}: {exc})")
        return None
    if condition is not None and bitstream.condition != condition:
        cache.discard(CODED_NS, key, f"it holds {bitstream.condition}, not {condition.name}")
        return None
    return bitstream


def decode_cached(cache: Cache, key: str, bitstream: codecs.Bitstream) -> np.ndarray | None:
    """Decode a bitstream read from the cache; one that does not decode is removed (None: recompute it)."""
    try:
        return codecs.decode(bitstream)
    except Exception as exc:  # any failure of a cached bitstream is damage: its source can be coded again
        cache.discard(CODED_NS, key, f"it does not decode ({type(exc).__name__}: {exc})")
        return None


def fill(clips: Sequence, conditions: Sequence[Condition], cache: Cache | None = None, *, with_features=False,
         jobs: int | None = None, backend: str = "loky", scheduler: str | None = None,
         on_error: str = "raise", progress: bool | None = None) -> FillSummary:
    """Code (and optionally featurise) every clip under every condition into ``cache``.

    ``with_features``: True for the baseline's log-mel features, or a list of front-ends whose
    (log-mel) features to cache.

    ``clips`` are :class:`~codecbench.datasets.Clip` objects or paths. ``on_error`` is ``"raise"``
    (stop at the first failure, naming the file) or ``"skip"`` (record it and go on).
    """
    if on_error not in ("raise", "skip"):
        raise UsageError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    cache = cache or Cache()
    conds = list(dict.fromkeys(conditions))
    if not conds:
        raise EncodeError("no conditions to code: the condition list is empty")
    if not len(clips):
        raise EncodeError("no clips to code: the selection is empty")
    for cond in conds:
        ok, reason = codecs.availability(cond)
        if not ok:
            raise codecs.CodecUnavailable(f"{cond.name} is unavailable on this machine: {reason}")
    paths = [str(getattr(c, "path", c)) for c in clips]
    frontend_dicts = [fe.to_dict() for fe in _frontends(with_features)]
    tasks = [(p, conds, str(cache.root), frontend_dicts) for p in paths]
    start = time.perf_counter()
    hits = misses = 0
    coded: dict[str, list[tuple[int, float]]] = defaultdict(list)
    failures: list[tuple[str, str, str]] = []
    notes: list[tuple[str, str]] = []
    bar = _progress(len(tasks), "encoding" + (" + features" if with_features else ""), progress)
    try:
        for outcome in parallel_map(_process_clip, tasks, jobs=jobs, backend=backend, scheduler=scheduler):
            hits += outcome.hits
            misses += outcome.misses
            for cond, value in outcome.coded.items():
                coded[cond].append(value)
            notes += [(outcome.path, n) for n in outcome.notes]
            for cond, err in outcome.failures:
                failures.append((outcome.path, cond, err))
                if on_error == "raise":
                    raise EncodeError(f"{outcome.path} [{cond}]: {err}")
                log.warning("skipped %s [%s]: %s", outcome.path, cond, err)
            bar.update(1)
    finally:
        bar.close()
    for path, note in notes:
        log.info("%s: %s", path, note)
    return FillSummary(len(paths), [c.name for c in conds], hits, misses, time.perf_counter() - start,
                       {c.name: achieved_kbps(coded[c.name]) for c in conds if coded.get(c.name)},
                       failures, notes)


def achieved_kbps(sizes: Sequence[tuple[int, float]]) -> float:
    """Bit rate over many clips: total coded bits over total duration (short clips do not skew it)."""
    seconds = sum(d for _, d in sizes)
    return sum(b for b, _ in sizes) * 8 / seconds / 1000 if seconds else 0.0


def load_coded(path, cond: Condition, cache: Cache) -> np.ndarray:
    """The decoded signal of one clip under one condition, coding it on a miss."""
    if cond.is_original:
        return read_audio(path)[0]
    key = coded_key(file_digest(path), cond)
    bitstream = load_bitstream(cache, key, cond)
    signal = decode_cached(cache, key, bitstream) if bitstream is not None else None
    if signal is None:
        fill([path], [cond], cache, jobs=1, progress=False)
        bitstream = load_bitstream(cache, key, cond)
        if bitstream is None:
            raise EncodeError(f"{path} [{cond.name}]: the coded clip vanished from the cache right after coding")
        signal = codecs.decode(bitstream)
    return signal


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
        return stack_to_longest([frontend(load_coded(paths[i], cond, cache), TARGET_SR) for i in kept]), kept
    reader, kept = cached_features(clips, cond, cache, frontend=frontend, **kwargs)
    if not len(reader):
        raise EncodeError(f"no features could be computed for {cond.name}")
    return reader(range(len(reader))), kept


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


class _LineProgress:
    """Progress for logs without a terminal (CI): one line per ~10 % of the work."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done, self.next_tenth = total, desc, 0, 1
        self.start = time.perf_counter()

    def update(self, n=1):
        self.done += n
        if self.done * 10 >= self.next_tenth * self.total:
            self.next_tenth = self.done * 10 // self.total + 1
            print(f"codecbench: {self.desc}: {self.done}/{self.total} ({100 * self.done // self.total}%, "
                  f"{time.perf_counter() - self.start:.0f} s)", file=sys.stderr, flush=True)

    def close(self):
        pass


def _progress(total: int, desc: str, enabled: bool | None):
    """A bar on a terminal, a line per ~10 % in a log; nothing if ``enabled`` is False."""
    if enabled is False or total == 0:
        return _NoBar()
    if enabled is None and not sys.stderr.isatty():
        return _LineProgress(total, desc)
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="clip", dynamic_ncols=True)
