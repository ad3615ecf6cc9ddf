"""The rows of a results document: checked where a results file is read (an edge: names are parsed here), and the
per-model and per-condition facts of a table composed of several runs' rows."""
from __future__ import annotations

import math
import numbers

from codecbench.codecs import parse_condition
from codecbench.errors import CodecbenchError
from codecbench.results.metrics import METRICS, cell_metrics, unpack_probabilities
from codecbench.zoo import check_name

#: The columns the ranking metrics add to a record (the accuracy's own interval is Wilson's ``ci_low``/``ci_high``).
METRIC_COLUMNS = [f"{name}{suffix}" for name in METRICS if name != "accuracy" for suffix in ("", "_low", "_high")]


def record_probabilities(record: dict):
    """A record's probabilities as a ``(n, classes)`` array, or None when it has none (an older results file)."""
    packed = record.get("probabilities")
    if packed is None:
        return None
    return unpack_probabilities(packed, len(record.get("predictions") or []))


def record_metrics(record: dict) -> dict:
    """The ranking metrics of a record, recomputed from its per-clip labels, predictions and probabilities
    (never taken from the record itself): ``{metric: value, metric_low: ..., metric_high: ...}``, None where the
    record has no probabilities."""
    probabilities = record_probabilities(record)
    labels, predictions = record.get("labels") or [], record.get("predictions") or []
    n_classes = probabilities.shape[1] if probabilities is not None else max([*labels, *predictions, 0]) + 1
    found = cell_metrics(labels, predictions, probabilities, n_classes=n_classes)
    return {key: found[key] for key in METRIC_COLUMNS}


def row_problem(row) -> str | None:
    """What is wrong with one result row as a report reads it, or None."""

    if not isinstance(row, dict):
        return "not an object"
    for key in ("model", "condition"):
        if not isinstance(row.get(key), str) or not row[key]:
            return f"{key!r} is missing or not a name"

    try:  # names are the zoo's and the codec table's: nothing else (markup, formulas) reaches a report from here
        check_name(row["model"])
        parse_condition(row["condition"])
    except CodecbenchError as exc:
        return str(exc)
    n = row.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return f"'n' must be a whole number of clips >= 0, got {n!r}"
    for key in ("accuracy", "ci_low", "ci_high"):
        if key not in row and key != "accuracy":
            continue
        value = row.get(key)
        if value is None and n == 0:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
                or not 0.0 <= float(value) <= 1.0:
            return f"{key!r} must be a number in [0, 1], got {value!r}"
    return _consistency_problem(row, n)


def _consistency_problem(row: dict, n: int) -> str | None:
    """What in a row contradicts the rest of it (per-clip lists of another length, a count or accuracy that is not
    theirs, probabilities of another shape, a metric that is not a number), or None."""
    lists = {key: row[key] for key in ("clips", "labels", "predictions") if key in row}
    for key, value in lists.items():
        if not isinstance(value, list) or len(value) != n:
            got = len(value) if isinstance(value, list) else repr(value)
            return f"{key!r} must list {n} entries (one per clip), got {got}"
    for key in ("labels", "predictions"):
        if key in lists and any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in lists[key]):
            return f"{key!r} must hold class indices (whole numbers >= 0)"
    correct = row.get("correct")
    if correct is not None:
        if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct <= n:
            return f"'correct' must be a whole number from 0 to n={n}, got {correct!r}"
        if "labels" in lists and "predictions" in lists and \
                correct != sum(a == b for a, b in zip(lists["labels"], lists["predictions"])):
            return f"'correct' is {correct}, but the predictions match the labels on " \
                   f"{sum(a == b for a, b in zip(lists['labels'], lists['predictions']))} clips"
        if n and row.get("accuracy") is not None and abs(float(row["accuracy"]) - correct / n) > 1e-9:
            return f"'accuracy' is {row['accuracy']!r}, but correct/n is {correct}/{n}"
    if row.get("probabilities") is not None:
        try:
            record_probabilities(row)
        except CodecbenchError as exc:
            return str(exc)
    for key in METRIC_COLUMNS:
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not math.isfinite(float(value))):
            return f"{key!r} must be a number or null, got {value!r}"
    return None


def facts_of_cells(cells: dict, by_id: dict) -> dict:
    """The per-model and per-condition facts of a composed table, each from the run its cells came from.

    A run's metadata describes its own models and conditions only (``pytest benchmarks/ --model finetuned_seg7``
    records one model's facts); taking the newest run's metadata for the whole table labelled every other model
    "unrecorded". Here a model's sha256 and facts come from the newest run that scored it, a condition's codec facts
    from the newest run that coded it.
    """
    order = {rid: (by_id[rid][1] or "", rid) for rid in by_id}
    newest_model: dict[str, str] = {}
    newest_condition: dict[str, str] = {}
    for (model, condition), cell in cells.items():
        rid = cell["run_id"]
        if model not in newest_model or order[rid] > order[newest_model[model]]:
            newest_model[model] = rid
        if condition not in newest_condition or order[rid] > order[newest_condition[condition]]:
            newest_condition[condition] = rid
    out: dict = {"models": {}, "model_facts": {}, "codec_facts": {}}
    for model, rid in newest_model.items():
        run_meta = by_id[rid][3]
        if model in (run_meta.get("models") or {}):
            out["models"][model] = run_meta["models"][model]
        if model in (run_meta.get("model_facts") or {}):
            out["model_facts"][model] = run_meta["model_facts"][model]
    for condition, rid in newest_condition.items():
        facts = (by_id[rid][3].get("codec_facts") or {}).get(condition)
        if facts is not None:
            out["codec_facts"][condition] = facts
    return out
