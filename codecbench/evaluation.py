"""Evaluation done once: code and featurise each needed (clip, condition), run each model once per condition.

An :class:`Evaluator` is what the benchmark suite's session runs on. It fills the
cache for every condition it will be asked about in one parallel pass (under a lock on the
cache, so concurrent pytest-xdist workers never encode the same thing twice), loads each model
once, and memoises results per (model, condition).

Memory: conditions' model inputs are kept in memory for the models that follow while together they fit
``keep_inputs_bytes`` (the demo's eight: 290 MB), the least recently used dropped first; a condition larger
than that (the paper's 2,970 10-s clips: 1.9 GB) is read from the cache batch by batch while the models run.
Peak memory is then the models plus a batch, whatever the numbers of clips and conditions
(``codecbench bench memory``).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Iterable, Mapping

import numpy as np

from . import codecs
from .audio import SCALED_NOTE
from .cache import Cache
from .codecs import Condition
from .datasets import Dataset
from .dsp import measure_bandwidth
from .encode import EncodeError, fill
from .errors import CodecbenchError, UsageError
from .feed import feeding
from .fsutil import file_lock
from .inputs import KEEP_INPUTS_BYTES, Inputs, input_reader, predict_stream
from .matrix import Matrix
from .prefix import SharedPrefixPredictor
from .stats import wilson_interval
from .wording import counted
from .zoo import ModelEntry, Zoo


@dataclasses.dataclass(kw_only=True)
class Result:
    """One model on one condition: per-clip labels and predictions (clips named), the accuracy and the achieved
    bit rate."""

    model: str
    model_sha256: str
    condition: str
    category: str | None
    n: int
    correct: int
    clips: list[str]
    labels: list[int]
    predictions: list[int]
    achieved_kbps: float | None
    #: Clips of the split left out because their coding failed (only with ``on_error="skip"``).
    skipped: list[str] = dataclasses.field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def as_record(self) -> dict:
        low, high = self.ci
        return {**dataclasses.asdict(self), "accuracy": self.accuracy, "ci_low": low, "ci_high": high}


def cache_lock(cache: Cache, name: str = "fill"):
    """An exclusive advisory lock in the cache folder: one process fills, the others then find hits."""
    cache.mark()
    return file_lock(cache.root / f".{name}.lock")


class Evaluator:
    """Evaluates models on conditions of one split, coding each clip once and running each model once per
    condition.

    Parameters
    ----------
    dataset : Dataset
        The clips and labels.
    split : str
        The split scored.
    matrix : Matrix
        Gives each condition its category.
    zoo : Zoo
        Where model names are resolved.
    cache : Cache
        Where coded clips and features are kept.
    jobs, backend, scheduler
        Parallel coding: local workers, the joblib backend, or a dask scheduler's address.
    progress : bool, optional
        Show progress bars (default: when attached to a terminal).
    log : callable, optional
        Receives one line per step (default: standard error).
    frontends : list of FrontEnd, optional
        The (log-mel) front-ends whose features the first fill caches, so one parallel pass serves every model
        (default: the baseline's).
    share_prefix : bool
        Let :meth:`evaluate_many` compute layers several Keras models share once (:mod:`codecbench.prefix`).
    precision : str
        The dtype policy of Keras models ("auto", "float32" or "mixed_bfloat16"; ``auto`` as
        :func:`~codecbench.devices.choose_precision` says, float32 on a generated dataset).
    on_error : str
        "raise": every clip is scored or the evaluation fails naming the missing ones; "skip": clips whose coding
        failed are left out and listed in each result.
    keep_inputs_bytes : int
        Model inputs kept in memory between models, all conditions together (default
        :data:`KEEP_INPUTS_BYTES`); a condition larger than that streams from the cache.
    """

    def __init__(self, dataset: Dataset, split: str, matrix: Matrix, zoo: Zoo, cache: Cache, *,
                 jobs: int | None = None, backend: str = "loky", scheduler: str | None = None,
                 progress: bool | None = None, log=None, frontends=None, share_prefix: bool = True,
                 precision: str = "auto", on_error: str = "raise", keep_inputs_bytes: int | None = None,
                 frontend_on_device: bool = False,
                 availability: Mapping[Condition, tuple[bool, str]] | None = None):
        from .frontends import BASELINE

        self.dataset, self.split, self.matrix, self.zoo, self.cache = dataset, split, matrix, zoo, cache
        self.jobs, self.backend, self.scheduler, self.progress = jobs, backend, scheduler, progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.clips = dataset.clips(split)
        self.labels = dataset.labels(split)
        self.frontends = list(dict.fromkeys(frontends or [BASELINE]))
        self.keep_inputs_bytes = KEEP_INPUTS_BYTES if keep_inputs_bytes is None else keep_inputs_bytes
        self._inputs: dict[tuple, tuple[Inputs, list[int]]] = {}
        self._models: dict[str, object] = {}
        self._results: dict[tuple[str, str], Result] = {}
        self.share_prefix, self.precision = share_prefix, precision
        self.frontend_on_device = frontend_on_device
        self._predictors: dict[tuple, object] = {}
        self._prepared: set[str] = set()
        self._kbps: dict[str, float] = {}
        #: clips above full scale coded in this run (path -> note), scaled by :data:`codecbench.audio.LEVEL_POLICY`
        self.scaled_sources: dict[str, str] = {}
        #: per condition name: what it did to this run's clips (see :mod:`codecbench.report.codec_facts`)
        self.codec_facts: dict[str, dict] = {}
        #: per condition name: the sources' rates and the rates its codec ran at, over the split
        self.rates: dict[str, dict[str, list[int]]] = {}
        self.counts = {"encoded": 0, "featurised_conditions": 0, "model_loads": 0, "evaluations": 0}
        #: what the run found per condition (:class:`codecbench.run.Run`); a caller without a run leaves it None
        #: and each condition is asked here once
        self.availability = dict(availability or {})
        if on_error not in ("raise", "skip"):
            raise UsageError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        #: "raise": every clip of the split is scored or the evaluation fails naming the missing ones;
        #: "skip": clips whose coding failed are left out and listed in each result's ``skipped``
        self.on_error = on_error

    def prepare(self, conditions: Iterable[Condition]) -> None:
        """Code and featurise every clip under every available condition in one parallel fill."""
        conds = [c for c in dict.fromkeys(conditions) if self._available(c)[0] and c.name not in self._prepared]
        if not conds:
            return
        with cache_lock(self.cache):
            start = time.perf_counter()
            self.log(f"codecbench: encoding + featurising {counted(len(self.clips), 'clip')} x "
                     f"{counted(len(conds), 'condition')} "
                     f"({', '.join(c.name for c in conds)})")
            # one condition's failure must not sink the others: the shared fill goes on past failures, and
            # each condition meets its own when its features are read (features(), under on_error)
            summary = fill(self.clips, conds, self.cache, with_features=self.frontends, jobs=self.jobs,
                           backend=self.backend, scheduler=self.scheduler, progress=self.progress,
                           on_error="skip", availability=self.availability)
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
        from .encode import coded_signal

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
                # the rates met and used over the whole split (one each, or the list when they vary)
                "source_sample_rate": _one_or_all(rates.get("source", [])),
                "codec_sample_rate": _one_or_all(rates.get("codec", [])),
                "library": codecs.codec_library(cond)}

    def inputs(self, cond: Condition, frontend=None) -> tuple[Inputs, list[int]]:
        """The model inputs of the split under ``cond`` for ``frontend`` (default: the baseline's) as a batch reader
        (:class:`Inputs`), and the indices of the clips it serves. Made once per (front-end, condition); held in
        memory while it fits ``keep_inputs_bytes`` with the other conditions held, else read from the cache."""
        from .frontends import BASELINE

        frontend = frontend or BASELINE
        key = (frontend, cond.name)
        if key not in self._inputs:
            ok, why = self._available(cond)
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
            # read by worker processes where an accelerator waits (codecbench.feed), in this process on a CPU
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

    def _available(self, cond: Condition) -> tuple[bool, str]:
        """What the run found for ``cond``; asked here only for a condition no run resolved (a direct caller)."""
        if cond not in self.availability:
            self.availability[cond] = codecs.availability(cond)
        return self.availability[cond]

    def model(self, model):
        """A zoo model (its :class:`~codecbench.zoo.ModelEntry`, or a name; loaded once), or a
        :class:`ScoringModel` as given."""
        if isinstance(model, (str, ModelEntry)):
            entry = model if isinstance(model, ModelEntry) else self.zoo.entry(model)
            if entry.name not in self._models:
                self._models[entry.name] = self._at_precision(self.zoo.scoring(entry))
                self.counts["model_loads"] += 1
            return self._models[entry.name]
        if model.name not in self._models:
            self._models[model.name] = self._at_precision(model)
        return self._models[model.name]

    def _at_precision(self, scoring):
        """A Keras model at the run's precision, with its log-mel front-end on the device if the run asks."""
        if scoring.keras_model is None:
            return scoring
        from .models.kinds import from_keras
        from .training.precision import resolve_precision, with_precision

        self.precision = resolve_precision(self.precision, reproducible=self.dataset.recipe is not None)
        frontend = on_device_if(scoring.frontend, self.frontend_on_device)
        model = with_precision(scoring.keras_model, self.precision)
        if model is scoring.keras_model and frontend == scoring.frontend:
            return scoring
        return dataclasses.replace(from_keras(scoring.name, model, {**scoring.meta, "frontend": frontend.to_dict()},
                                              scoring.sha256), class_map=scoring.class_map)

    def achieved_kbps(self, cond: Condition) -> float | None:
        """Mean achieved bit rate over the split, as the fill that prepared the condition saw it."""
        if cond.is_original:
            return None
        self.prepare([cond])
        return self._kbps.get(cond.name)

    def evaluate(self, model, cond: Condition) -> Result:
        """One model on one condition, memoised per (model, condition).

        Parameters
        ----------
        model : str or ScoringModel
            A zoo name (resolved and loaded once) or a model of any kind.
        cond : Condition
            The condition; its clips are coded and featurised on first use.

        Returns
        -------
        Result
            Per-clip labels and predictions, the accuracy and the achieved bit rate.
        """
        scoring = self.model(model)
        key = (scoring.name, cond.name)
        if key not in self._results:
            x, kept = self.inputs(cond, scoring.frontend)
            scoring.check_input(x.first())
            self.log(f"codecbench: evaluating {key[0]} on {cond.name} ({counted(len(x), 'clip')})")
            self._store(scoring, cond, predict_stream(scoring.predict, x, batch_size=x.batch_size), kept)
        return self._results[key]

    def evaluate_many(self, models, cond: Condition) -> list[Result]:
        """Evaluate several models on one condition; Keras models that share leading layers (same weights,
        found by :mod:`codecbench.prefix`) compute that prefix once per batch. Results are memoised as by
        :meth:`evaluate` and identical to it."""
        from .models.kinds import ModelError

        scorings = [self.model(m) for m in models]
        todo = [s for s in dict((s.name, s) for s in scorings).values() if (s.name, cond.name) not in self._results]
        # (a front-end on the device runs inside each model's own program: no prefix to share on the host's side)
        keras_models = [s for s in todo if s.keras_model is not None and not s.frontend.on_device]
        if self.share_prefix and len(keras_models) > 1:
            for frontend in dict.fromkeys(s.frontend for s in keras_models):
                group = [s for s in keras_models if s.frontend == frontend]
                x, kept = self.inputs(cond, frontend)
                group = [s for s in group if _fits(s, x.first(), self.dataset.class_names)]
                if len(group) < 2:
                    continue  # nothing to share; evaluate() below runs each alone
                self.log(f"codecbench: evaluating {len(group)} models on {cond.name} ({counted(len(x), 'clip')}), "
                         "shared layers once")
                outputs = predict_stream(self._predictor(group).predict_batch, x, batch_size=x.batch_size)
                for s in group:
                    try:
                        self._store(s, cond, s.probabilities(outputs[s.name], len(x)), kept)
                    except ModelError:
                        pass  # a model with bad outputs fails in its own case (evaluate() below), no other
        return [self.evaluate(s, cond) for s in scorings]

    def _predictor(self, group):

        key = tuple(s.name for s in group)
        if key not in self._predictors:
            self._predictors[key] = SharedPrefixPredictor({s.name: s.keras_model for s in group})
        return self._predictors[key]

    def _store(self, scoring, cond, probabilities: np.ndarray, kept: list[int]) -> None:
        order = scoring.dataset_order(self.dataset.class_names)
        predictions = probabilities[:, order].argmax(axis=1)
        labels = self.labels[kept]
        skipped = [self.clips[i].name for i in sorted(set(range(len(self.clips))) - set(kept))]
        self._results[(scoring.name, cond.name)] = Result(
            model=scoring.name, model_sha256=scoring.sha256, condition=cond.name,
            category=self.matrix.category_of(cond), n=len(kept), correct=int(np.sum(predictions == labels)),
            clips=[self.clips[i].name for i in kept], labels=labels.tolist(), predictions=predictions.tolist(),
            achieved_kbps=self.achieved_kbps(cond), skipped=skipped)
        self.counts["evaluations"] += 1


def on_device_if(frontend, wanted: bool):
    """``frontend`` computed on the model's device when ``wanted`` and it is a log-mel front-end."""
    if wanted and frontend.kind == "logmel" and not frontend.on_device:
        return dataclasses.replace(frontend, on_device=True)
    return frontend


def _one_or_all(values: list[int]):
    return values[0] if len(values) == 1 else (values or None)


def _hz(rates: list[int]) -> str:
    return ", ".join(f"{r / 1000:g} kHz" for r in rates)


def _fits(scoring, sample: np.ndarray, class_names) -> bool:
    """Whether a model takes this input and predicts these classes (if not, its own case says why)."""
    from .models.kinds import ModelError

    try:
        scoring.check_input(sample)
        scoring.dataset_order(class_names)
    except ModelError:
        return False
    return True
