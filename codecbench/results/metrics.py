"""The metrics a (model, condition) cell is ranked by, computed from its per-clip labels and probabilities, each with
a 95 % bootstrap interval.

=================  ==========================================================================  ==============
metric             definition                                                                  better
=================  ==========================================================================  ==============
``accuracy``       share of clips whose most probable class is the label                       higher
``log_loss``       mean of ``-log p(label)``, probabilities clipped at 1e-15 and renormalised  lower
                   (DCASE's multi-class log-loss, its ranking metric for scene classification)
``macro_accuracy`` class-wise average accuracy: the recall of each class present, averaged     higher
``ece``            expected calibration error: clips binned by their top probability into 15   lower
                   equal-width bins, ``sum |accuracy - confidence| * share of clips`` per bin
``brier``          multi-class Brier score: mean over clips of ``sum_k (p_k - [k = label])^2``  lower
                   (0 to 2)
=================  ==========================================================================  ==============

Intervals come from a bootstrap over clips. The resamples are drawn from PCG64's raw stream with a fixed seed, so
they are the same on every machine and for every cell of the same clips: two models' intervals, and the interval
of their difference (:func:`paired_difference`), come from one set of resamples (paired). A cell without
probabilities (a results file written before they were kept) has its accuracy only; the other metrics are ``None``,
never 0.
"""
from __future__ import annotations

import base64
import dataclasses
from typing import Sequence

import numpy as np

from codecbench.errors import DataError

#: DCASE's clipping of probabilities before the logarithm.
EPSILON = 1e-15
#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15
#: Bootstrap resamples per interval, and the seed of the stream they are drawn from.
RESAMPLES = 1000
SEED = 20201
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric's name, how it reads in a table, and which way is better."""

    name: str
    label: str
    higher_is_better: bool
    needs_probabilities: bool


METRICS = {m.name: m for m in (
    Metric("accuracy", "accuracy", True, False),
    Metric("log_loss", "log-loss", False, True),
    Metric("macro_accuracy", "class-wise accuracy", True, False),
    Metric("ece", "ECE", False, True),
    Metric("brier", "Brier", False, True),
)}


def metric(name: str) -> Metric:
    """The metric called ``name``; an unknown name is a DataError listing the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise DataError(f"unknown metric {name!r}; expected one of {', '.join(METRICS)}") from None


# -- probabilities in results files: float16, base64 -------------------------------------------------------------
def pack_probabilities(probabilities: np.ndarray) -> dict:
    """Probabilities ``(clips, classes)`` as a compact JSON value (float16, little-endian, base64)."""
    array = np.asarray(probabilities, dtype="<f2")
    return {"dtype": "float16", "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode()}


def unpack_probabilities(value, n: int, n_classes: int | None = None) -> np.ndarray:
    """The ``(n, classes)`` float64 array :func:`pack_probabilities` wrote; anything else is a DataError."""
    if not isinstance(value, dict) or value.get("dtype") != "float16":
        dtype = value.get("dtype") if isinstance(value, dict) else type(value).__name__
        raise DataError(f"probabilities are not a packed float16 array (dtype {dtype!r})")
    try:
        shape = tuple(int(s) for s in value["shape"])
        array = np.frombuffer(base64.b64decode(value["base64"], validate=True), dtype="<f2").reshape(shape)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"probabilities are not a packed float16 array ({exc})") from None
    if len(shape) != 2 or shape[0] != n or (n_classes is not None and shape[1] != n_classes):
        raise DataError(f"probabilities have shape {shape}, expected ({n}, {n_classes or 'classes'})")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise DataError("probabilities hold negative or non-finite values")
    return array


# -- the metrics on one set of clips -------------------------------------------------------------------------------
def clip_log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each clip's ``-log p(label)`` after DCASE's clipping at 1e-15 and renormalisation."""
    p = np.clip(probabilities, EPSILON, 1 - EPSILON)
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(labels)), labels])


def clip_brier(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each clip's ``sum_k (p_k - [k = label])^2``."""
    target = np.zeros_like(probabilities)
    target[np.arange(len(labels)), labels] = 1.0
    return np.sum((probabilities - target) ** 2, axis=1)


def confidence_bins(probabilities: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The bin of each clip's top probability: ``(k/bins, (k+1)/bins]``, the first bin closed at 0."""
    confidence = probabilities.max(axis=1)
    return np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)


def _weighted_counts(rows: np.ndarray, groups: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per row of a resample matrix, the sum of ``weights`` (or the count) in each of ``k`` groups: ``(rows, k)``."""
    b = rows.shape[0]
    flat = (np.arange(b)[:, None] * k + groups).ravel()
    w = None if weights is None else np.broadcast_to(weights, groups.shape).ravel()
    return np.bincount(flat, weights=w, minlength=b * k).reshape(b, k)


def _macro(labels: np.ndarray, correct: np.ndarray, index: np.ndarray, n_classes: int) -> np.ndarray:
    """Class-wise average accuracy of each resample (rows of ``index``), over the classes each holds."""
    groups = labels[index]
    totals = _weighted_counts(index, groups, n_classes)
    hits = _weighted_counts(index, groups, n_classes, correct[index].astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(totals > 0, hits / np.maximum(totals, 1), np.nan)
    return np.nanmean(recall, axis=1)


def _ece(correct: np.ndarray, confidence: np.ndarray, bins_of: np.ndarray, index: np.ndarray,
         bins: int = ECE_BINS) -> np.ndarray:
    """The expected calibration error of each resample (rows of ``index``)."""
    groups = bins_of[index]
    n = index.shape[1]
    hits = _weighted_counts(index, groups, bins, correct[index].astype(float))
    confident = _weighted_counts(index, groups, bins, confidence[index])
    return np.abs(hits - confident).sum(axis=1) / n


def _values(labels, predictions, probabilities, index: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Every metric on each resample (each row of ``index`` is one set of clip indices)."""
    correct = predictions == labels
    out = {"accuracy": correct[index].mean(axis=1),
           "macro_accuracy": _macro(labels, correct, index, n_classes)}
    if probabilities is not None:
        out["log_loss"] = clip_log_loss(labels, probabilities)[index].mean(axis=1)
        out["brier"] = clip_brier(labels, probabilities)[index].mean(axis=1)
        out["ece"] = _ece(correct, probabilities.max(axis=1), confidence_bins(probabilities), index)
    return out


def resamples(n: int, count: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``count`` bootstrap resamples of ``n`` clip indices, ``(count, n)``: the same on every machine and numpy
    version (PCG64's raw 64-bit stream, reduced modulo ``n``; the bias is below 1e-15 for any real ``n``)."""
    if n == 0:
        return np.zeros((count, 0), dtype=np.int32)
    raw = np.random.PCG64(seed).random_raw(count * n)
    # int32: 1000 resamples of the paper's 16,935 clips take 68 MB instead of 135
    return (np.asarray(raw, dtype=np.uint64) % np.uint64(n)).astype(np.int32).reshape(count, n)


def _check(labels, predictions, probabilities, n_classes):
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise DataError(f"{len(labels)} labels but {len(predictions)} predictions")
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.shape != (len(labels), n_classes):
            raise DataError(f"probabilities of shape {probabilities.shape}, expected ({len(labels)}, {n_classes})")
    if len(labels) and (labels.min() < 0 or max(labels.max(), predictions.max()) >= n_classes
                        or predictions.min() < 0):
        raise DataError(f"a label or prediction outside the {n_classes} classes")
    return labels, predictions, probabilities


def cell_metrics(labels: Sequence[int], predictions: Sequence[int], probabilities: np.ndarray | None, *,
                 n_classes: int, count: int = RESAMPLES, seed: int = SEED) -> dict[str, float | None]:
    """Every metric of one cell with its bootstrap interval: ``{name: value, name_low: ..., name_high: ...}``.

    Metrics that need probabilities are ``None`` (with their bounds) when ``probabilities`` is None.
    """
    labels, predictions, probabilities = _check(labels, predictions, probabilities, n_classes)
    n = len(labels)
    out: dict[str, float | None] = {}
    if n == 0:
        for name in METRICS:
            out.update({name: None, f"{name}_low": None, f"{name}_high": None})
        return out
    point = _values(labels, predictions, probabilities, np.arange(n)[None], n_classes)
    boot = _values(labels, predictions, probabilities, resamples(n, count, seed), n_classes)
    tail = (1 - CONFIDENCE) / 2 * 100
    for name in METRICS:
        if name not in point:
            out.update({name: None, f"{name}_low": None, f"{name}_high": None})
            continue
        low, high = np.nanpercentile(boot[name], [tail, 100 - tail])
        out.update({name: float(point[name][0]), f"{name}_low": float(low), f"{name}_high": float(high)})
    return out


def paired_difference(a: dict, b: dict, name: str, *, n_classes: int, count: int = RESAMPLES,
                      seed: int = SEED, confidence: float = CONFIDENCE) -> dict | None:
    """``name`` of cell ``b`` minus cell ``a`` on the clips both scored, with a paired bootstrap interval.

    ``a`` and ``b`` are result records (``clips``, ``labels``, ``predictions``, optionally ``probabilities`` as
    arrays). None when the metric needs probabilities one of them lacks, or they share no clip.
    """
    needs = metric(name).needs_probabilities
    if needs and (a.get("probabilities") is None or b.get("probabilities") is None):
        return None
    where_b = {clip: i for i, clip in enumerate(b["clips"])}
    shared = [(i, where_b[clip]) for i, clip in enumerate(a["clips"]) if clip in where_b]
    if not shared:
        return None
    ia, ib = (np.array(side, dtype=np.int64) for side in zip(*shared))
    labels = np.asarray(a["labels"])[ia]
    if not np.array_equal(labels, np.asarray(b["labels"])[ib]):
        raise DataError(f"{a.get('model')} and {b.get('model')} give shared clips different labels")

    def values(record, idx, index):
        probs = None if record.get("probabilities") is None else np.asarray(record["probabilities"])[idx]
        return _values(labels, np.asarray(record["predictions"])[idx], probs, index, n_classes)[name]

    index = resamples(len(labels), count, seed)
    whole = np.arange(len(labels))[None]
    diff = values(b, ib, whole)[0] - values(a, ia, whole)[0]
    boot = values(b, ib, index) - values(a, ia, index)
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(boot, [tail, 100 - tail])
    return {"metric": name, "n": len(labels), "difference": float(diff), "low": float(low), "high": float(high)}
