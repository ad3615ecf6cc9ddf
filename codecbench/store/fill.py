"""Filling the cache: every (clip, condition) pair coded once, and featurised once.

One task per clip reads the source only if something is missing, codes it under each
missing condition, extracts features if asked, and stores each result atomically. Tasks
run through :func:`codecbench.core.parallel.parallel_map`, so loky, threads or a dask cluster
fill the same cache. A failing clip is reported with its file name; with
``on_error="skip"`` the rest go on and the failure is listed in the summary.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from codecbench import codecs
from codecbench.codecs import Condition
from codecbench.core.cache import Cache, make_key
from codecbench.core.fsutil import file_digest
from codecbench.core.parallel import parallel_map
from codecbench.core.progress import progress as progress_bar
from codecbench.core.vocabulary import OnError, ParallelBackend
from codecbench.core.wording import counted
from codecbench.errors import CodecbenchError, CodecError, UsageError
from codecbench.signal.audio import AudioError, check_source_file, read_source, source_rate
from codecbench.signal.frontends import BASELINE, parse_frontend

log = logging.getLogger("codecbench")

#: What the encoder produced for a (clip, condition), decoded on read (see :class:`codecbench.codecs.Bitstream`)
CODED_NS = "coded"
#: Features of a (clip, condition), stored compactly (see :func:`codecbench.signal.features.static`)
FEATURES_NS = "features"


class EncodeError(CodecError):
    """A clip failed to code or featurise; the message names the file and condition."""


def coded_key(source_digest: str, condition: Condition, source_rate: int) -> str:
    """The key of a clip coded under ``condition``: its content, the condition, the library and route that code it
    (different encoders, different audio), and the rate the codec runs at for a source at ``source_rate``
    (:func:`codecbench.codecs.codec_rate`), so a change of that rule never serves audio coded at another rate."""
    rate = "source" if condition.is_original else codecs.codec_rate(condition, int(source_rate))
    return make_key("coded", source_digest, condition.name, f"coded-at:{rate}", codecs.library_versions(),
                    codecs.codec_library(condition))


def feature_key(source_digest: str, condition: Condition, source_rate: int, frontend=None) -> str:
    """The key of a clip's features under a condition and a (log-mel) front-end (default: the baseline's)."""
    return make_key("features", coded_key(source_digest, condition, source_rate), (frontend or BASELINE).cache_key())


def clip_key(path, condition: Condition) -> str:
    """The cache key of a source file coded under ``condition``."""
    digest, rate = clip_identity(path)
    return coded_key(digest, condition, rate)


def clip_identity(path) -> tuple[str, int]:
    """``(content digest, sample rate)`` of a source file: what its cache keys are made of."""

    check_source_file(path)  # before hashing: a link to /dev/zero would be hashed forever
    return file_digest(path), source_rate(path)


def _frontends(with_features) -> list:
    """``True`` -> the baseline front-end; a list of front-ends (or their dicts) -> the cached (log-mel) ones."""
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
    #: condition -> (the source's rate, the rate the codec ran at)
    rates: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)


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
    #: condition -> {"source": the sources' rates met, "codec": the rates the codec ran at} (Hz, sorted)
    rates: dict[str, dict[str, list[int]]] = dataclasses.field(default_factory=dict)

    def resampled(self) -> dict[str, dict[str, list[int]]]:
        """The conditions whose codec ran at another rate than (some of) their sources'."""
        return {c: r for c, r in self.rates.items() if set(r["codec"]) != set(r["source"])}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def report(self) -> str:
        lines = [f"{counted(self.clips, 'clip')} x {counted(len(self.conditions), 'condition')}: "
                 f"{counted(self.hits, 'cache hit')}, "
                 f"{counted(self.misses, 'miss', 'misses')}, {self.seconds:.1f} s"]
        for cond, kbps in self.kbps.items():
            lines.append(f"  {cond:<12} achieved {kbps:7.1f} kbps")
        for path, note in self.notes[:20]:
            lines.append(f"  note: {path}: {note}")
        if self.failures:
            lines.append(f"  {len(self.failures)} failures (skipped):")
            lines += [f"    {path} [{cond}]: {err}" for path, cond, err in self.failures]
        return "\n".join(lines)


def _process_clip(task) -> ClipOutcome:
    path, conditions, cache_root, frontend_dicts, count_missing = task
    frontends = _frontends(frontend_dicts)
    cache = Cache(cache_root)
    out = ClipOutcome(str(path))
    try:
        digest, rate = clip_identity(path)
    except (OSError, CodecbenchError) as exc:
        out.failures.append(("*", f"cannot read file ({exc})"))
        return out
    source, source_sr = None, 0
    for cond in conditions:
        try:
            ckey = coded_key(digest, cond, rate)
            fkeys = {feature_key(digest, cond, rate, fe): fe for fe in frontends}
            if count_missing:  # presence only: a file check per entry, nothing read or written
                present = (cond.is_original or cache.contains(CODED_NS, ckey)) and \
                    all(cache.contains(FEATURES_NS, k) for k in fkeys)
                out.hits, out.misses = out.hits + present, out.misses + (not present)
                continue
            coded = None if cond.is_original else load_bitstream(cache, ckey, cond)
            # features are only checked for presence here; a damaged one is found (and redone) when read
            todo = {k: fe for k, fe in fkeys.items() if not cache.contains(FEATURES_NS, k)}
            if (cond.is_original or coded is not None) and not todo:
                out.hits += 1
                if coded is not None:
                    out.coded[cond.name] = (coded.encoded_bytes, coded.duration_s)
                    out.rates[cond.name] = (coded.sample_rate, coded.codec_sample_rate)
                continue
            out.misses += 1
            if cond.is_original or coded is None:
                if source is None:
                    try:
                        source, source_sr, notes = read_source(path)
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
                            source, source_sr, notes = read_source(path)
                            out.notes += notes
                if coded is None:
                    assert source is not None  # read above whenever nothing usable was cached
                    # coded at the rate the source was recorded at (or the codec's nearest, there and back)
                    coded = codecs.encode(source, source_sr, cond)
                    store_bitstream(cache, ckey, coded, source=Path(path).name, source_sha256=digest)
                    signal = codecs.decode(coded) if todo else None
                    if coded.codec_sample_rate != source_sr:
                        out.notes.append(f"{cond.name}: coded at {coded.codec_sample_rate} Hz, the nearest rate the "
                                         f"codec takes to the source's {source_sr} Hz (resampled there and back)")
                out.coded[cond.name] = (coded.encoded_bytes, coded.duration_s)
                out.rates[cond.name] = (coded.sample_rate, coded.codec_sample_rate)
            rate = coded.sample_rate if coded is not None else source_sr
            for fkey, fe in todo.items():
                cache.store(FEATURES_NS, fkey, fe.stored(signal, rate),
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
         jobs: int | None = None, backend: ParallelBackend = "loky", scheduler: str | None = None,
         on_error: OnError = "raise", progress: bool | None = None,
         availability: Mapping[Condition, tuple[bool, str]] | None = None,
         count_missing: bool = False) -> FillSummary:
    """Code (and optionally featurise) every clip under every condition into ``cache``.

    ``availability``: what a run already found per condition (:class:`codecbench.run.resolve.Run`); a condition it does
    not hold is asked here, and one that cannot be coded here refuses the whole fill before any work.

    ``with_features``: True for the baseline's log-mel features, or a list of front-ends whose
    (log-mel) features to cache.

    ``clips`` are :class:`~codecbench.datasets.Clip` objects or paths. ``on_error`` is ``"raise"``
    (stop at the first failure, naming the file) or ``"skip"`` (record it and go on).

    ``count_missing``: only count the entries that are not in the cache (``misses``; a file check per entry, nothing
    read, coded or written): how a reader finds whether it can do without the fill's lock.
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
        ok, reason = (availability or {}).get(cond) or codecs.availability(cond)
        if not ok:
            raise codecs.CodecUnavailable(f"{cond.name} is unavailable on this machine: {reason}")
    paths = [str(getattr(c, "path", c)) for c in clips]
    frontend_dicts = [fe.to_dict() for fe in _frontends(with_features)]
    tasks = [(p, conds, str(cache.root), frontend_dicts, count_missing) for p in paths]
    start = time.perf_counter()
    hits = misses = 0
    coded: dict[str, list[tuple[int, float]]] = defaultdict(list)
    rates: dict[str, tuple[set[int], set[int]]] = defaultdict(lambda: (set(), set()))
    failures: list[tuple[str, str, str]] = []
    notes: list[tuple[str, str]] = []
    # the progress line names what is being coded and at which rate ("encoding mp3@32 at 22.05 kHz + features")
    what = f"encoding {_coding_what(conds, paths[0])}" + (" + features" if with_features else "")
    bar = progress_bar(len(tasks), what, progress)
    try:
        for outcome in parallel_map(_process_clip, tasks, jobs=jobs, backend=backend, scheduler=scheduler):
            hits += outcome.hits
            misses += outcome.misses
            for cond, value in outcome.coded.items():
                coded[cond].append(value)
            for cond, (source_sr, codec_sr) in outcome.rates.items():
                rates[cond][0].add(source_sr)
                rates[cond][1].add(codec_sr)
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
                       failures, notes, {c: {"source": sorted(s), "codec": sorted(k)} for c, (s, k) in rates.items()})


def _coding_what(conds: Sequence[Condition], first_path: str) -> str:
    """``mp3@32 at 22.05 kHz``, or ``3 conditions (sbc@64 at 32 kHz, ...)``: the rate each condition codes at, for
    the first clip's rate (a dataset's clips share one as a rule; every clip's own is recorded with it)."""

    try:
        rate = source_rate(first_path)
    except (AudioError, OSError):
        rate = None

    def one(cond: Condition) -> str:
        if rate is None or cond.is_original:
            return cond.name
        return f"{cond.name} at {codecs.codec_rate(cond, rate) / 1000:g} kHz"

    if len(conds) == 1:
        return one(conds[0])
    coded = [one(c) for c in conds if not c.is_original]
    shown = ", ".join(coded[:4]) + (", ..." if len(coded) > 4 else "")
    return f"{len(conds)} conditions ({shown})" if coded else f"{len(conds)} conditions"


def achieved_kbps(sizes: Sequence[tuple[int, float]]) -> float:
    """Bit rate over many clips: total coded bits over total duration (short clips do not skew it)."""
    seconds = sum(d for _, d in sizes)
    return sum(b for b, _ in sizes) * 8 / seconds / 1000 if seconds else 0.0


def load_coded(path, cond: Condition, cache: Cache) -> np.ndarray:
    """The decoded signal of one clip under one condition, at the clip's own rate, coding it on a miss."""
    return coded_signal(path, cond, cache)[0]


def coded_signal(path, cond: Condition, cache: Cache, key: str | None = None) -> tuple[np.ndarray, int]:
    """``(signal, sample_rate)`` of one clip under one condition: decoded, aligned, at the clip's own rate.
    ``key``: the clip's :func:`clip_key` when the caller made it already (a reader makes its clips' keys once)."""
    if cond.is_original:
        signal, rate, _ = read_source(path)
        return signal, rate
    key = key or clip_key(path, cond)
    bitstream = load_bitstream(cache, key, cond)
    cached = decode_cached(cache, key, bitstream) if bitstream is not None else None
    if bitstream is not None and cached is not None:
        return cached, bitstream.sample_rate
    fill([path], [cond], cache, jobs=1, progress=False)
    bitstream = load_bitstream(cache, key, cond)
    if bitstream is None:
        raise EncodeError(f"{path} [{cond.name}]: the coded clip vanished from the cache right after coding")
    return codecs.decode(bitstream), bitstream.sample_rate
