"""One headline robustness score per model, and the ranking by it.

For each model, over the coded conditions of a results table (every condition but the uncoded original):

- **coded accuracy** (the rank key): the accuracy pooled over every coded condition, i.e. the share of
  (clip, coded condition) pairs classified right. It is absolute (no reference model), reads like the accuracies
  around it, and is what a user who does not know which codec the audio went through can expect. Higher is better.
- **relative coding error** (as ImageNet-C's mCE): per codec family (a codec, chain or loss model with its bit
  rates and loss rates set aside, :func:`family`), the model's errors summed over the family's conditions divided
  by the reference model's (default ``base``), averaged over families, times 100. 100 is as robust as the
  reference; lower is better. It weighs every family alike however many rates a matrix sweeps.
- **retained accuracy**: coded accuracy / accuracy on the original.
- **coded log-loss**: DCASE's log-loss pooled over the coded conditions (where the results hold probabilities).
- the **worst condition** and its accuracy.

Every figure has a 95 % bootstrap interval over clips: a resample draws clips, and each drawn clip brings its
result under every condition (the conditions of one clip are not independent), from the same seeded stream as the
cell metrics (:mod:`codecbench.results.metrics`), so two models' intervals come from the same resamples.
A model that lacks some coded condition the others have is ranked after the complete ones and marked incomplete.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from codecbench.results.metrics import CONFIDENCE, RESAMPLES, SEED, clip_log_loss, resamples
from codecbench.results.rows import record_probabilities

#: The rank key, and the reference model of the relative coding error unless another is named.
RANK_KEY = "coded_accuracy"
REFERENCE = "base"
ORIGINAL = "wav"


def family(condition: str) -> str:
    """A condition's codec family: its name without bit rates and loss rates (``mp3@32`` -> ``mp3``,
    ``aac@128>mp3@32`` -> ``aac>mp3``, ``opus@24+loss5+burst3`` -> ``opus+loss+burst``)."""
    name = re.sub(r"@[0-9.]+", "", condition)
    return re.sub(r"\+(loss|burst|seed)[0-9.]+", r"+\1", name)


@dataclasses.dataclass
class ModelScore:
    """A model's headline figures, each with its interval (``None`` where it cannot be computed)."""

    model: str
    rank: int
    complete: bool
    coded_conditions: int
    uncoded_accuracy: float | None
    coded_accuracy: float | None
    coded_accuracy_low: float | None
    coded_accuracy_high: float | None
    relative_coding_error: float | None
    relative_coding_error_low: float | None
    relative_coding_error_high: float | None
    retained_accuracy: float | None
    retained_accuracy_low: float | None
    retained_accuracy_high: float | None
    coded_log_loss: float | None
    coded_log_loss_low: float | None
    coded_log_loss_high: float | None
    worst_condition: str | None
    worst_accuracy: float | None
    reference: str | None

    def as_row(self) -> dict:
        return dataclasses.asdict(self)


class _Clips:
    """Per-clip results of one model as (clips x conditions) matrices over a shared clip order."""

    def __init__(self, cells: dict[str, dict], clips: list[str]):
        where = {clip: i for i, clip in enumerate(clips)}
        self.conditions = list(cells)
        shape = (len(clips), len(cells))
        self.correct = np.full(shape, np.nan)
        self.loss = np.full(shape, np.nan)
        self.has_probabilities = True
        for j, (condition, record) in enumerate(cells.items()):
            rows = np.array([where[c] for c in record["clips"]], dtype=np.int64)
            labels = np.asarray(record["labels"], dtype=np.int64)
            self.correct[rows, j] = (np.asarray(record["predictions"]) == labels).astype(float)
            probabilities = record_probabilities(record)
            if probabilities is None:
                self.has_probabilities = False
            else:
                self.loss[rows, j] = clip_log_loss(labels, probabilities)


def _pooled(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The mean of ``values`` (clips x conditions, NaN where not scored) on each resample of clips: each clip's sum
    and count over its conditions first, so a resample costs (resamples x clips), not x conditions as well."""
    sums, counts = np.nansum(values, axis=1), np.sum(~np.isnan(values), axis=1)
    return sums[index].sum(axis=1) / np.maximum(counts[index].sum(axis=1), 1)


def _interval(samples: np.ndarray) -> tuple[float | None, float | None]:
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return None, None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _errors_by_family(m: _Clips, index: np.ndarray, conditions: list[str]) -> dict[str, np.ndarray]:
    """Per family, the errors on each resample (rows of ``index``), over ``conditions`` only."""
    out: dict[str, np.ndarray] = {}
    for condition in conditions:
        j = m.conditions.index(condition)
        wrong = 1 - m.correct[:, j]
        errors = np.nansum(wrong[index], axis=-1)
        out[family(condition)] = out.get(family(condition), 0) + errors
    return out


def rank_models(cells: dict[tuple[str, str], dict], *, reference: str | None = REFERENCE,
                count: int = RESAMPLES, seed: int = SEED) -> list[ModelScore]:
    """Every model of ``cells`` ((model, condition) -> result record) scored and ranked by coded accuracy, complete
    models first, best first (ties by name)."""
    models = sorted({m for m, _ in cells})
    coded = sorted({c for _, c in cells if c != ORIGINAL})
    clips = list(dict.fromkeys(clip for record in cells.values() for clip in record.get("clips") or []))
    index = resamples(len(clips), count, seed)
    whole = np.arange(len(clips))[None]
    per_model = {m: _Clips({c: cells[(m, c)] for c in coded if (m, c) in cells}, clips) for m in models}
    uncoded = {m: _Clips({ORIGINAL: cells[(m, ORIGINAL)]}, clips) for m in models if (m, ORIGINAL) in cells}
    reference = reference if reference in per_model else None
    scores = []
    for model in models:
        m = per_model[model]
        scored = bool(m.conditions)
        accuracy = float(_pooled(m.correct, whole)[0]) if scored else None
        boot = _pooled(m.correct, index) if scored else np.array([])
        low, high = _interval(boot)
        u = uncoded.get(model)
        retained = retained_low = retained_high = None
        uncoded_accuracy = float(_pooled(u.correct, whole)[0]) if u is not None else None
        if u is not None and accuracy is not None and uncoded_accuracy:
            retained = accuracy / uncoded_accuracy
            with np.errstate(invalid="ignore", divide="ignore"):
                retained_low, retained_high = _interval(boot / _pooled(u.correct, index))
        loss = loss_low = loss_high = None
        if scored and m.has_probabilities:
            loss = float(_pooled(m.loss, whole)[0])
            loss_low, loss_high = _interval(_pooled(m.loss, index))
        rce = rce_low = rce_high = None
        if reference is not None and scored:
            shared = [c for c in m.conditions if c in per_model[reference].conditions]
            if shared:
                rce, rce_low, rce_high = _relative_error(m, per_model[reference], shared, whole, index)
        accuracies = {c: float(np.nanmean(m.correct[:, j])) for j, c in enumerate(m.conditions)}
        worst = min(accuracies, key=lambda c: (accuracies[c], c)) if accuracies else None
        scores.append(ModelScore(
            model=model, rank=0, complete=len(m.conditions) == len(coded), coded_conditions=len(m.conditions),
            uncoded_accuracy=uncoded_accuracy, coded_accuracy=accuracy,
            coded_accuracy_low=low, coded_accuracy_high=high, relative_coding_error=rce,
            relative_coding_error_low=rce_low, relative_coding_error_high=rce_high, retained_accuracy=retained,
            retained_accuracy_low=retained_low, retained_accuracy_high=retained_high, coded_log_loss=loss,
            coded_log_loss_low=loss_low, coded_log_loss_high=loss_high, worst_condition=worst,
            worst_accuracy=accuracies.get(worst) if worst else None, reference=reference))
    scores.sort(key=lambda s: (not s.complete, s.coded_accuracy is None, -(s.coded_accuracy or 0.0), s.model))
    for rank, score in enumerate(scores, 1):
        score.rank = rank
    return scores


def _relative_error(m: _Clips, ref: _Clips, conditions: list[str], whole: np.ndarray, index: np.ndarray):
    """The relative coding error (x100) on the whole set and its bootstrap interval; None where the reference
    makes no error in any family."""
    def value(rows: np.ndarray) -> np.ndarray:
        mine, theirs = _errors_by_family(m, rows, conditions), _errors_by_family(ref, rows, conditions)
        ratios = [np.where(theirs[f] > 0, mine[f] / np.maximum(theirs[f], 1e-12), np.nan) for f in mine]
        with np.errstate(invalid="ignore"):
            stacked = np.vstack(ratios)
            counted = np.sum(~np.isnan(stacked), axis=0)
            return np.where(counted > 0, np.nansum(stacked, axis=0) / np.maximum(counted, 1), np.nan) * 100

    point = value(whole)[0]
    if not np.isfinite(point):
        return None, None, None
    low, high = _interval(value(index))
    return float(point), low, high
