"""The Python API: ``codecbench.evaluate(models, ...) -> pandas.DataFrame``.

The same machinery as the pytest plugin (a :class:`~codecbench.run.resolve.Run` resolved the same way, its
:class:`~codecbench.run.evaluation.Evaluator` over the same cache), so the numbers are the plugin's. Models are zoo
names, or any objects with ``sample_rate``, ``class_names`` and ``predict(batch)`` (see
:mod:`codecbench.models.kinds`).
"""
from __future__ import annotations

from typing import Iterable

from codecbench.models.kinds import ScoringModel, from_object, validate
from codecbench.results.ranking import rank_models
from codecbench.results.rows import METRIC_COLUMNS
from codecbench.run.resolve import Run
from codecbench.run.spec import RunSpec


def evaluate(models: Iterable, *, dataset: str = "synthetic", conditions: Iterable[str] | None = None,
             split: str = "evaluate", matrix: str = "peters", model_dir: str | None = None,
             cache_dir: str | None = None, jobs: int | str | None = None, progress: bool | None = False,
             precision: str = "auto", share_prefix: bool = True, on_error: str = "raise"):
    """Accuracy of every model under every condition, one row each.

    Parameters
    ----------
    models : iterable of str or objects
        Zoo names (from ``model_dir``, default: the packaged demo zoo), :class:`ScoringModel` objects, or plain
        Python objects with ``sample_rate``, ``class_names`` and ``predict(batch) -> (batch, classes)``
        probabilities (or logits, with ``outputs = "logits"``); those get waveforms at their ``sample_rate``.
    dataset, split, matrix, model_dir, cache_dir, jobs, precision, share_prefix, on_error
        As the command-line options of the same names.
    conditions : iterable of str, optional
        Condition names such as ``"mp3@32"``; default: the matrix's validation conditions.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, condition, category, n, correct, accuracy, ci_low, ci_high``, the ranking metrics
        with their bootstrap intervals (``log_loss, macro_accuracy, ece, brier`` and each ``_low``/``_high``,
        :mod:`codecbench.results.metrics`), ``achieved_kbps, model_sha256``. Per-clip predictions are in
        ``frame.attrs["records"][(model, condition)]`` (clips, labels, predictions, probabilities packed as
        float16), the input of :func:`codecbench.results.stats.paired_comparison`; each model's headline scores,
        ranked, are in ``frame.attrs["ranking"]`` (a DataFrame, :func:`codecbench.results.ranking.rank_models`).
    """
    import pandas as pd

    spec = RunSpec.build({"dataset": dataset, "split": split, "matrix": matrix, "model_dir": model_dir,
                          "cache_dir": cache_dir, "jobs": jobs, "condition": list(conditions) if conditions else None,
                          "precision": precision, "share_prefix": share_prefix, "on_error": on_error},
                         use_pyproject=False)
    models = list(models)
    run = Run.resolve(spec, model_names=[m for m in models if isinstance(m, str)])
    scoring = [run.zoo.scoring(run.zoo.entry(m)) if isinstance(m, str) else m if isinstance(m, ScoringModel)
               else from_object(m) for m in models]
    for model in scoring:
        validate(model, run.dataset.class_names)
    conds = list(run.conditions)
    evaluator = run.evaluator(log=lambda message: None, progress=progress, extra_models=scoring)
    evaluator.store.prepare(conds)
    rows, records = [], {}
    for cond in conds:
        evaluator.evaluate_many(scoring, cond)
    for model in scoring:
        for cond in conds:
            record = evaluator.evaluate(model, cond).as_record()
            records[(record["model"], record["condition"])] = record
            rows.append({k: record[k] for k in ("model", "condition", "category", "n", "correct", "accuracy",
                                                "ci_low", "ci_high", *METRIC_COLUMNS, "achieved_kbps",
                                                "model_sha256")})
    frame = pd.DataFrame(rows)
    frame.attrs["records"] = records
    frame.attrs["ranking"] = pd.DataFrame([s.as_row() for s in rank_models(records)])
    return frame
