"""The model inputs of one dataset split, filled once per condition: the store side of an evaluation.

A :class:`SplitInputs` codes and featurises every clip of a split under the conditions asked for, in one parallel
fill (:func:`codecbench.store.fill.fill`, under a lock on the cache, so concurrent pytest-xdist workers never encode the
same thing twice), measures what each condition did to the split's own clips (bandwidth, rates, library: the
report's codec facts), and serves each (front-end, condition) as a batch reader of model inputs
(:class:`~codecbench.store.inputs.Inputs`). The :class:`~codecbench.run.evaluation.Evaluator` asks it for inputs
and scores models on them.

Memory: conditions' model inputs are kept in memory for the models that follow while together they fit
``keep_inputs_bytes`` (the demo's eight: 290 MB), the least recently used dropped first; a condition larger
than that (the paper's 2,970 10-s clips: 1.9 GB) is read from the cache batch by batch while the models run.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Iterable, Mapping

import numpy as np

from codecbench import codecs
from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.core.dsp import measure_bandwidth, signal_change
from codecbench.core.fsutil import waiting_lock
from codecbench.core.vocabulary import OnError, ParallelBackend
from codecbench.core.wording import counted
from codecbench.datasets import Dataset
from codecbench.errors import CodecbenchError, UsageError
from codecbench.signal.audio import SCALED_NOTE
from codecbench.signal.frontends import BASELINE
from codecbench.store.feed import feeding
from codecbench.store.fill import EncodeError, clip_key, coded_signal, fill, load_bitstream
from codecbench.store.inputs import KEEP_INPUTS_BYTES, Inputs, input_reader


def cache_lock(cache: Cache, name: str = "fill", say=None):
    """An exclusive advisory lock in the cache folder: one process fills, the others then find hits (a process that
    waits for it says for whom, through ``say``)."""
    cache.mark()
    return waiting_lock(cache.root / f".{name}.lock", "filling the cache", say)


class SplitInputs:
    """The coded clips, features and model inputs of one split (see the module docstring).

    Parameters
    ----------
    dataset, split
        The clips and labels served.
    cache : Cache
        Where coded clips and features are kept.
    jobs, backend, scheduler
        Parallel coding: local workers, the joblib backend, or a dask scheduler's address.
    progress : bool, optional
        Show progress bars (default: when attached to a terminal).
    log : callable, optional
        Receives one line per step (default: standard error).
    frontends : list of FrontEnd, optional
        The (log-mel) front-ends whose features the first fill caches (default: the baseline's).
    on_error : str
        "raise": every clip is served or the inputs fail naming the missing ones; "skip": clips whose coding failed
        are left out.
    keep_inputs_bytes : int
        Model inputs kept in memory, all conditions together
        (default :data:`~codecbench.store.inputs.KEEP_INPUTS_BYTES`).
    availability : mapping, optional
        What the run found per condition (:class:`codecbench.run.resolve.Run`); a condition missing from it is
        asked here once.
    """

    def __init__(self, dataset: Dataset, split: str, cache: Cache, *, jobs: int | None = None,
                 backend: ParallelBackend = "loky", scheduler: str | None = None, progress: bool | None = None,
                 log=None, frontends=None, on_error: OnError = "raise", keep_inputs_bytes: int | None = None,
                 availability: Mapping[Condition, tuple[bool, str]] | None = None):
        if on_error not in ("raise", "skip"):
            raise UsageError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        self.dataset, self.split, self.cache = dataset, split, cache
        self.jobs, self.backend, self.scheduler, self.progress = jobs, backend, scheduler, progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.clips = dataset.clips(split)
        self.labels = dataset.labels(split)
        self.frontends = list(dict.fromkeys(frontends or [BASELINE]))
        self.keep_inputs_bytes = KEEP_INPUTS_BYTES if keep_inputs_bytes is None else keep_inputs_bytes
        self.on_error = on_error
        self.availability = dict(availability or {})
        self._inputs: dict[tuple, tuple[Inputs, list[int]]] = {}
        self._prepared: set[str] = set()
        self._kbps: dict[str, float] = {}
        #: clips above full scale coded in this run (path -> note), scaled by
        #: :data:`codecbench.signal.audio.LEVEL_POLICY`
        self.scaled_sources: dict[str, str] = {}
        #: per condition name: what it did to this run's clips (see :mod:`codecbench.report.codec_facts`)
        self.codec_facts: dict[str, dict] = {}
        #: per condition name: the sources' rates and the rates its codec ran at, over the split
        self.rates: dict[str, dict[str, list[int]]] = {}
        self.counts = {"encoded": 0, "featurised_conditions": 0}

    def prepare(self, conditions: Iterable[Condition]) -> None:
        """Code and featurise every clip under every available condition in one parallel fill."""
        conds = [c for c in dict.fromkeys(conditions) if self.available(c)[0] and c.name not in self._prepared]
        if not conds:
            return
        work: dict[str, Any] = {"with_features": self.frontends, "jobs": self.jobs, "backend": self.backend,
                                "scheduler": self.scheduler, "on_error": "skip", "availability": self.availability}
        # a reader of what is cached needs no lock: a presence check finds whether anything is missing, and only a
        # fill with something to code takes the lock (entries are written atomically and named by their content, so
        # a reader never sees half of one, and two processes writing the same entry write the same bytes)
        missing = fill(self.clips, conds, self.cache, progress=False, count_missing=True, **work).misses
        lock = cache_lock(self.cache, say=lambda message: print(message, file=sys.stderr, flush=True)) if missing \
            else contextlib.nullcontext()
        # (waiting is said on stderr whatever the run's logger, the Python API's being silent: a process that blocks
        # for minutes behind another must say why)
        with lock:
            start = time.perf_counter()
            if missing:
                self.log(f"codecbench: encoding + featurising {counted(len(self.clips), 'clip')} x "
                         f"{counted(len(conds), 'condition')} ({', '.join(c.name for c in conds)})")
            # one condition's failure must not sink the others: the shared fill goes on past failures, and
            # each condition meets its own when its features are read (features(), under on_error)
            summary = fill(self.clips, conds, self.cache, progress=self.progress if missing else False, **work)
        failed: dict[str, list] = {}
        for path, cond_name, error in summary.failures:
            failed.setdefault(cond_name, []).append((path, error))
        for cond_name, items in failed.items():
            self.log(f"codecbench: {cond_name}: {counted(len(items), 'clip')} could not be coded, e.g. {items[0][0]}: "
                     f"{items[0][1]}")
        self._prepared.update(c.name for c in conds)

        scaled = sorted({path for path, note in summary.notes if SCALED_NOTE in note})
        if scaled:
            self.scaled_sources.update({path: note for path, note in summary.notes if SCALED_NOTE in note})
            self.log(f"codecbench: {len(scaled)} sources above full scale, scaled to peak 1.0 before coding, e.g. "
                     f"{scaled[0]}")
        self._kbps.update(summary.kbps)
        self.rates.update(summary.rates)
        for cond_name, rates in summary.resampled().items():
            self.log(f"codecbench: {cond_name}: coded at {_hz(rates['codec'])} for sources at {_hz(rates['source'])} "
                     "(the codec does not take the sources' rate: resampled there and back)")
        self._measure_codecs([c for c in conds if not c.is_original and c.name not in failed])
        self.counts["encoded"] += summary.misses
        self.log(f"codecbench: cache {summary.hits} hits, {summary.misses} misses in "
                 f"{time.perf_counter() - start:.1f} s")

    def _measure_codecs(self, conds: list[Condition], clips: int = 8) -> None:
        """What each condition did to this run's own clips (bandwidth kept, the codec's rate and library), from a
        few clips spread over the split; stored in the run's metadata for the report's codec facts."""
        if not conds:
            return
        picked = [self.clips[i].path for i in np.linspace(0, len(self.clips) - 1, min(clips, len(self.clips)),
                                                          dtype=int)]
        sources = [coded_signal(p, codecs.ORIGINAL, self.cache) for p in picked]  # each at its own rate
        for cond in conds:
            try:
                coded = [coded_signal(p, cond, self.cache)[0] for p in picked]
            except CodecbenchError:
                continue  # its own evaluation says why
            rates = self.rates.get(cond.name, {})
            self.codec_facts[cond.name] = {
                **measure_bandwidth([s for s, _ in sources], coded, [r for _, r in sources]),
                # how far the decode is from the source (mel distance, SNR, SI-SDR), as codec benchmarks report
                **signal_change([s for s, _ in sources], coded, [r for _, r in sources]),
                # the rates met and used over the whole split (one each, or the list when they vary)
                "source_sample_rate": _one_or_all(rates.get("source", [])),
                "codec_sample_rate": _one_or_all(rates.get("codec", [])),
                "library": codecs.codec_library(cond)}
            if cond.loss is not None:  # the share of packets the loss model dropped from these clips
                streams = [load_bitstream(self.cache, clip_key(p, cond), cond) for p in picked]
                sent = sum(len(b.sizes) for b in streams if b is not None)
                if sent:
                    self.codec_facts[cond.name]["packets_lost"] = \
                        sum(len(b.lost) for b in streams if b is not None) / sent

    def inputs(self, cond: Condition, frontend=None) -> tuple[Inputs, list[int]]:
        """The model inputs of the split under ``cond`` for ``frontend`` (default: the baseline's) as a batch reader
        (:class:`Inputs`), and the indices of the clips it serves. Made once per (front-end, condition); held in
        memory while it fits ``keep_inputs_bytes`` with the other conditions held, else read from the cache."""
        frontend = frontend or BASELINE
        key = (frontend, cond.name)
        if key not in self._inputs:
            ok, why = self.available(cond)
            if not ok:
                raise codecs.CodecUnavailable(f"{cond.name} is unavailable on this machine: {why}")
            self.prepare([cond])
            reader, kept = input_reader(self.clips, cond, self.cache, frontend=frontend, jobs=self.jobs,
                                        progress=False, on_error=self.on_error)
            if self.on_error == "raise" and len(kept) != len(self.clips):
                missing = sorted(set(range(len(self.clips))) - set(kept))
                raise EncodeError(f"{cond.name}: {len(missing)} of {len(self.clips)} clips could not be scored: "
                                  + ", ".join(self.clips[i].name for i in missing[:5]))
            if not kept:
                raise EncodeError(f"{cond.name}: no clip of the split could be coded and featurised")
            # read by worker processes where an accelerator waits (codecbench.store.feed), in this process on a CPU
            self._inputs[key] = (Inputs(feeding(reader), [self.clips[i].name for i in kept], cond.name, frontend),
                                 kept)
            self.counts["featurised_conditions"] += 1
        inputs, kept = self._inputs[key]
        self._inputs[key] = self._inputs.pop(key)  # most recently used last
        if inputs.nbytes <= self.keep_inputs_bytes and not inputs.in_memory:
            held = [x for x, _ in self._inputs.values() if x.in_memory]
            while held and sum(x.nbytes for x in held) + inputs.nbytes > self.keep_inputs_bytes:
                held.pop(0).release()  # the least recently used goes first
            inputs.keep()
        return inputs, kept

    def available(self, cond: Condition) -> tuple[bool, str]:
        """What the run found for ``cond``; asked here only for a condition no run resolved (a direct caller)."""
        if cond not in self.availability:
            self.availability[cond] = codecs.availability(cond)
        return self.availability[cond]

    def achieved_kbps(self, cond: Condition) -> float | None:
        """Mean achieved bit rate over the split, as the fill that prepared the condition saw it."""
        if cond.is_original:
            return None
        self.prepare([cond])
        return self._kbps.get(cond.name)


def _one_or_all(values: list[int]):
    return values[0] if len(values) == 1 else (values or None)


def _hz(rates: list[int]) -> str:
    return ", ".join(f"{r / 1000:g} kHz" for r in rates)
