"""Evaluation done once: code and featurise each needed (clip, condition), run each model once per condition.

An :class:`Evaluator` is what the benchmark suite's session runs on. It fills the
cache for every condition it will be asked about in one parallel pass (under a lock on the
cache, so concurrent pytest-xdist workers never encode the same thing twice), keeps each
condition's features and each model in memory once, and memoises results per (model, condition).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Iterable

import numpy as np

from . import codecs
from .cache import Cache
from .codecs import parse_condition
from .datasets import Dataset
from .encode import fill, load_features
from .fsutil import file_lock
from .matrix import Matrix
from .stats import wilson_interval
from .zoo import Zoo


@dataclasses.dataclass
class Result:
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
    """Evaluates models (zoo names or :class:`~codecbench.models.kinds.ScoringModel` objects) on conditions.

    ``frontends``: the (log-mel) front-ends whose features the first fill should cache, so that one
    parallel pass serves every model (default: the baseline's).
    """

    def __init__(self, dataset: Dataset, split: str, matrix: Matrix, zoo: Zoo, cache: Cache, *,
                 jobs: int | None = None, backend: str = "loky", scheduler: str | None = None,
                 progress: bool | None = None, log=None, frontends=None):
        from .frontends import BASELINE

        self.dataset, self.split, self.matrix, self.zoo, self.cache = dataset, split, matrix, zoo, cache
        self.jobs, self.backend, self.scheduler, self.progress = jobs, backend, scheduler, progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.clips = dataset.clips(split)
        self.labels = dataset.labels(split)
        self.frontends = list(dict.fromkeys(frontends or [BASELINE]))
        self._features: dict[tuple, tuple[np.ndarray, list[int]]] = {}
        self._models: dict[str, object] = {}
        self._results: dict[tuple[str, str], Result] = {}
        self._prepared: set[str] = set()
        self._kbps: dict[str, float] = {}
        self.counts = {"encoded": 0, "featurised_conditions": 0, "model_loads": 0, "evaluations": 0}

    def prepare(self, conditions: Iterable) -> None:
        """Code and featurise every clip under every available condition in one parallel fill."""
        conds = [c for c in dict.fromkeys(parse_condition(c) for c in conditions)
                 if codecs.availability(c)[0] and c.name not in self._prepared]
        if not conds:
            return
        with cache_lock(self.cache):
            start = time.perf_counter()
            self.log(f"codecbench: encoding + featurising {len(self.clips)} clips x {len(conds)} conditions "
                     f"({', '.join(c.name for c in conds)})")
            summary = fill(self.clips, conds, self.cache, with_features=self.frontends, jobs=self.jobs,
                           backend=self.backend, scheduler=self.scheduler, progress=self.progress)
        self._prepared.update(c.name for c in conds)
        self._kbps.update(summary.kbps)
        self.counts["encoded"] += summary.misses
        self.log(f"codecbench: cache {summary.hits} hits, {summary.misses} misses in "
                 f"{time.perf_counter() - start:.1f} s")

    def features(self, condition, frontend=None) -> tuple[np.ndarray, list[int]]:
        """Model inputs of the split under ``condition`` for ``frontend`` (default: the baseline's), once."""
        from .frontends import BASELINE

        cond = parse_condition(condition)
        frontend = frontend or BASELINE
        key = (frontend, cond.name)
        if key not in self._features:
            ok, why = codecs.availability(cond)
            if not ok:
                raise codecs.CodecUnavailable(f"{cond.name} is unavailable on this machine: {why}")
            self.prepare([cond])
            self._features[key] = load_features(self.clips, cond, self.cache, frontend=frontend, jobs=self.jobs,
                                                progress=False)
            self.counts["featurised_conditions"] += 1
        return self._features[key]

    def model(self, model):
        """A zoo model by name (loaded once), or a :class:`ScoringModel` as given."""
        if not isinstance(model, str):
            self._models.setdefault(model.name, model)
            return model
        resolved = self.zoo.resolve(model)
        if resolved not in self._models:
            self._models[resolved] = self.zoo.scoring(resolved)
            self.counts["model_loads"] += 1
        return self._models[resolved]

    def achieved_kbps(self, condition) -> float | None:
        """Mean achieved bit rate over the split, as the fill that prepared the condition saw it."""
        cond = parse_condition(condition)
        if cond.is_original:
            return None
        self.prepare([cond])
        return self._kbps.get(cond.name)

    def evaluate(self, model, condition) -> Result:
        """``model``: a zoo name or a :class:`ScoringModel`. Memoised per (model, condition)."""
        cond = parse_condition(condition)
        scoring = self.model(model)
        key = (scoring.name, cond.name)
        if key not in self._results:
            x, kept = self.features(cond, scoring.frontend)
            scoring.check_input(x[0])
            order = scoring.dataset_order(self.dataset.class_names)
            self.log(f"codecbench: evaluating {key[0]} on {cond.name} ({len(x)} clips)")
            predictions = predict_batches(scoring, x)[:, order].argmax(axis=1)
            labels = self.labels[kept]
            self._results[key] = Result(key[0], scoring.sha256, cond.name, self.matrix.category_of(cond), len(kept),
                                        int(np.sum(predictions == labels)), [self.clips[i].name for i in kept],
                                        labels.tolist(), predictions.tolist(), self.achieved_kbps(cond))
            self.counts["evaluations"] += 1
        return self._results[key]


def predict_batches(model, x: np.ndarray, input_budget_bytes: int = 64 << 20) -> np.ndarray:
    """Probabilities of ``x`` in batches of at most ``input_budget_bytes`` of input (Keras batches itself)."""
    if getattr(model, "keras_model", None) is not None or not len(x):
        return model.predict(x)
    per_clip = max(1, int(np.prod(x.shape[1:])) * 4)
    size = max(1, input_budget_bytes // per_clip)
    return np.concatenate([model.predict(x[i:i + size]) for i in range(0, len(x), size)])
