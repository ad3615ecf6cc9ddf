"""Scoring done once: each model once per condition, on model inputs the store serves.

An :class:`Evaluator` is what the benchmark suite's session runs on. It asks its
:class:`~codecbench.store.split_inputs.SplitInputs` for the split's model inputs under a condition (coded and featurised
in one parallel fill, held in memory or streamed from the cache), loads each model once, scores it (several Keras
models sharing leading layers compute them once, :mod:`codecbench.models.prefix`), and memoises results per
(model, condition). Peak memory is the models plus what the store holds (``codecbench bench memory``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from codecbench.codecs import Condition
from codecbench.codecs.matrix import Matrix
from codecbench.core.progress import NoProgress, progress
from codecbench.core.vocabulary import Precision
from codecbench.core.wording import counted
from codecbench.errors import ArgumentError
from codecbench.models.kinds import ModelError, from_keras
from codecbench.models.prefix import SharedPrefixPredictor
from codecbench.results.metrics import pack_probabilities
from codecbench.results.rows import record_metrics
from codecbench.results.stats import wilson_interval
from codecbench.store.inputs import predict_stream
from codecbench.store.split_inputs import SplitInputs
from codecbench.zoo import ModelEntry, Zoo


@dataclasses.dataclass(kw_only=True)
class Result:
    """One model on one condition: per-clip labels, predictions and probabilities (clips named, probabilities in the
    dataset's class order as float16), the accuracy and the achieved bit rate."""

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
    #: ``(n, classes)`` float16: what the model gave each clip, the metrics' input (kept as results files keep it)
    probabilities: np.ndarray | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def as_record(self) -> dict:
        """The results file's record: every field, the accuracy with its Wilson interval, and the ranking metrics
        with their bootstrap intervals (:mod:`codecbench.results.metrics`)."""
        low, high = self.ci
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "probabilities"}
        record = {**fields, "accuracy": self.accuracy, "ci_low": low, "ci_high": high}
        if self.probabilities is not None:
            record["probabilities"] = pack_probabilities(self.probabilities)
        return {**record, **record_metrics(record)}


class Evaluator:
    """Evaluates models on conditions of one split, coding each clip once and running each model once per
    condition.

    Parameters
    ----------
    store : SplitInputs
        The split's model inputs (:class:`~codecbench.store.split_inputs.SplitInputs`): where and how the split is
        coded and featurised, and which front-ends' features one parallel pass caches for every model. The
        evaluator scores what it serves; prepare, inputs and codec facts are asked of it directly.
    matrix : Matrix
        Gives each condition its category.
    zoo : Zoo
        Loads the zoo models given as entries (:class:`~codecbench.zoo.ModelEntry`).
    share_prefix : bool
        Let :meth:`evaluate_many` compute layers several Keras models share once (:mod:`codecbench.models.prefix`).
    precision : str
        The dtype policy of Keras models ("auto", "float32" or "mixed_bfloat16"; ``auto`` as
        :func:`~codecbench.store.devices.choose_precision` says, float32 on a generated dataset).
    frontend_on_device : bool
        Compute Keras models' log-mel on their device from waveforms.
    """

    def __init__(self, store: SplitInputs, matrix: Matrix, zoo: Zoo | None = None, *, share_prefix: bool = True,
                 precision: Precision = "auto", frontend_on_device: bool = False):
        #: the split's model inputs, filled once per condition (the store side)
        self.store = store
        self.matrix, self.zoo = matrix, zoo
        self._models: dict[str, object] = {}
        self._results: dict[tuple[str, str], Result] = {}
        self.share_prefix, self.precision = share_prefix, precision
        self.frontend_on_device = frontend_on_device
        self._predictors: dict[tuple, object] = {}
        #: the store's counts (encoded, featurised_conditions) and the scoring's (model_loads, evaluations)
        self.counts = self.store.counts
        self.counts.update({"model_loads": 0, "evaluations": 0})

    # -- scoring ---------------------------------------------------------------------------------------------
    def model(self, model):
        """A zoo model (its :class:`~codecbench.zoo.ModelEntry`, loaded once), or a :class:`ScoringModel` as
        given."""
        if isinstance(model, str):
            raise ArgumentError(f"model {model!r}: give the evaluator a zoo entry (Zoo.entry), resolved once above "
                                "it")
        if isinstance(model, ModelEntry):
            if model.name not in self._models:
                if self.zoo is None:
                    raise ArgumentError(f"model {model.name!r}: a zoo entry needs an evaluator built with its zoo")
                self._models[model.name] = self._at_precision(self.zoo.scoring(model))
                self.counts["model_loads"] += 1
            return self._models[model.name]
        if model.name not in self._models:
            self._models[model.name] = self._at_precision(model)
        return self._models[model.name]

    def _at_precision(self, scoring):
        """A Keras model at the run's precision, with its log-mel front-end on the device if the run asks."""
        if scoring.keras_model is None:
            return scoring
        from codecbench.training.precision import resolve_precision, with_precision

        self.precision = resolve_precision(self.precision, reproducible=self.store.dataset.recipe is not None)
        frontend = on_device_if(scoring.frontend, self.frontend_on_device)
        model = with_precision(scoring.keras_model, self.precision)
        if model is scoring.keras_model and frontend == scoring.frontend:
            return scoring
        return dataclasses.replace(from_keras(scoring.name, model, {**scoring.meta, "frontend": frontend.to_dict()},
                                              scoring.sha256), class_map=scoring.class_map)

    def evaluate(self, model, cond: Condition) -> Result:
        """One model on one condition, memoised per (model, condition).

        Parameters
        ----------
        model : ModelEntry or ScoringModel
            A zoo model's entry (loaded once) or a model of any kind.
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
            x, kept = self.store.inputs(cond, scoring.frontend)
            scoring.check_input(x.first())
            self.store.log(f"codecbench: evaluating {key[0]} on {cond.name} ({counted(len(x), 'clip')})")
            predict = self._counted(scoring.predict, len(x), f"scoring {key[0]} on {cond.name}")
            self._store(scoring, cond, predict_stream(predict, x, batch_size=x.batch_size), kept)
        return self._results[key]

    def evaluate_many(self, models, cond: Condition) -> list[Result]:
        """Evaluate several models on one condition; Keras models that share leading layers (same weights,
        found by :mod:`codecbench.models.prefix`) compute that prefix once per batch. Results are memoised as by
        :meth:`evaluate` and identical to it."""

        scorings = [self.model(m) for m in models]
        todo = [s for s in dict((s.name, s) for s in scorings).values() if (s.name, cond.name) not in self._results]
        # (a front-end on the device runs inside each model's own program: no prefix to share on the host's side)
        keras_models = [s for s in todo if s.keras_model is not None and not s.frontend.on_device]
        if self.share_prefix and len(keras_models) > 1:
            for frontend in dict.fromkeys(s.frontend for s in keras_models):
                group = [s for s in keras_models if s.frontend == frontend]
                x, kept = self.store.inputs(cond, frontend)
                group = [s for s in group if _fits(s, x.first(), self.store.dataset.class_names)]
                if len(group) < 2:
                    continue  # nothing to share; evaluate() below runs each alone
                self.store.log(f"codecbench: evaluating {len(group)} models on {cond.name} "
                               f"({counted(len(x), 'clip')}), shared layers once")
                predict = self._counted(self._predictor(group).predict_batch, len(x),
                                        f"scoring {len(group)} models on {cond.name}")
                outputs = predict_stream(predict, x, batch_size=x.batch_size)
                for s in group:
                    try:
                        self._store(s, cond, s.probabilities(outputs[s.name], len(x)), kept)
                    except ModelError:
                        pass  # a model with bad outputs fails in its own case (evaluate() below), no other
        return [self.evaluate(s, cond) for s in scorings]

    def _counted(self, predict, total: int, what: str):
        """``predict`` with a progress bar over the clips it scores (where the store shows progress), so a long
        evaluation is not silent."""
        bar = progress(total, what, self.store.progress)
        if isinstance(bar, NoProgress):
            return predict

        done = 0

        def counted_predict(batch):
            nonlocal done
            out = predict(batch)
            bar.update(len(batch))
            done += len(batch)
            if done >= total:
                bar.close()
            return out
        return counted_predict

    def _predictor(self, group):
        key = tuple(s.name for s in group)
        if key not in self._predictors:
            self._predictors[key] = SharedPrefixPredictor({s.name: s.keras_model for s in group})
        return self._predictors[key]

    def _store(self, scoring, cond, probabilities: np.ndarray, kept: list[int]) -> None:
        store = self.store
        order = scoring.dataset_order(store.dataset.class_names)
        probabilities = probabilities[:, order]
        predictions = probabilities.argmax(axis=1)
        labels = store.labels[kept]
        skipped = [store.clips[i].name for i in sorted(set(range(len(store.clips))) - set(kept))]
        self._results[(scoring.name, cond.name)] = Result(
            model=scoring.name, model_sha256=scoring.sha256, condition=cond.name,
            category=self.matrix.category_of(cond), n=len(kept), correct=int(np.sum(predictions == labels)),
            clips=[store.clips[i].name for i in kept], labels=labels.tolist(), predictions=predictions.tolist(),
            achieved_kbps=store.achieved_kbps(cond), skipped=skipped, probabilities=probabilities.astype(np.float16))
        self.counts["evaluations"] += 1


def on_device_if(frontend, wanted: bool):
    """``frontend`` computed on the model's device when ``wanted`` and it is a log-mel front-end."""
    if wanted and frontend.kind == "logmel" and not frontend.on_device:
        return dataclasses.replace(frontend, on_device=True)
    return frontend


def _fits(scoring, sample: np.ndarray, class_names) -> bool:
    """Whether a model takes this input and predicts these classes (if not, its own case says why)."""

    try:
        scoring.check_input(sample)
        scoring.dataset_order(class_names)
    except ModelError:
        return False
    return True
