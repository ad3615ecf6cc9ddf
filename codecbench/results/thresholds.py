"""Thresholds from TOML: a bound per model and condition on accuracy (by default) or any ranking metric, with
defaults.

    [default]               # every model
    default = 0.0           # any condition: the minimum accuracy
    cat1 = 0.7              # a category of the matrix
    "mp3@32" = 0.2          # one condition

    [default.log_loss]      # another metric: same keys; lower is better, so the bound is a maximum
    "mp3@32" = 1.2

    [models.finetuned_seg7] # one model: same keys (and metric tables), taking precedence

Whether a bound is a minimum or a maximum is the metric's (:mod:`codecbench.results.metrics`): accuracy and
class-wise accuracy are minima; log-loss, ECE and the Brier score maxima. Lookup order, per metric: model+condition,
model+category, model default, default+condition, default+category, default default; no entry means no bound.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from codecbench.codecs import parse_condition
from codecbench.codecs.matrix import Matrix
from codecbench.core.config import read_toml
from codecbench.errors import UsageError
from codecbench.results.metrics import METRICS
from codecbench.zoo import sort_key


class ThresholdError(UsageError):
    """A thresholds file that cannot be used; the message names the file and key."""


#: The range a bound on each metric must lie in.
BOUNDS = {"accuracy": (0.0, 1.0), "macro_accuracy": (0.0, 1.0), "ece": (0.0, 1.0), "brier": (0.0, 2.0),
          "log_loss": (0.0, 1e6)}


class Thresholds:
    """Bounds per metric: ``default[metric][key]`` and ``models[model][metric][key]``."""

    def __init__(self, default: dict[str, dict[str, float]], models: dict[str, dict[str, dict[str, float]]],
                 source: str):
        self.default, self.models, self.source = default, models, source

    def lookup(self, model: str, condition: str, category: str | None, metric: str = "accuracy") -> float | None:
        """The bound on ``metric`` for one cell, or None."""
        for table in (self.models.get(model, {}).get(metric, {}), self.default.get(metric, {})):
            for key in (condition, category, "default"):
                if key is not None and key in table:
                    return table[key]
        return None

    def bounds(self, model: str, condition: str, category: str | None) -> dict[str, float]:
        """Every metric's bound for one cell (metrics without one are left out)."""
        found = {m: self.lookup(model, condition, category, m) for m in METRICS}
        return {m: bound for m, bound in found.items() if bound is not None}


def _key(key: str, prefix: str, source: str, matrix: Matrix) -> str:
    where = f"{prefix}.{key}" if '"' not in key else f'{prefix}."{key}"'
    if key == "default" or key in matrix.categories:
        return key
    try:
        cond = parse_condition(key)
    except ValueError as exc:
        raise ThresholdError(f"{source}: {where}: not a category of matrix {matrix.name!r} "
                             f"({', '.join(matrix.categories)}), a metric ({', '.join(METRICS)}) nor a condition: "
                             f"{exc}") from None
    if cond not in matrix.validation:
        raise ThresholdError(f"{source}: {where}: condition {cond.name} is not in matrix {matrix.name!r}")
    return cond.name


def _bound(value, where: str, metric: str) -> float:
    low, high = BOUNDS[metric]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
            or not low <= float(value) <= high:
        what = "an accuracy" if metric in ("accuracy", "macro_accuracy") else f"a bound on {metric}"
        raise ThresholdError(f"{where} = {value!r}: {what} must be a number in [{low:g}, {high:g}]")
    return float(value)


def _table(raw, source: str, prefix: str, matrix: Matrix) -> dict[str, dict[str, float]]:
    """A ``[default]`` or ``[models.<name>]`` table: accuracy bounds, and a sub-table per other metric."""
    if not isinstance(raw, dict):
        raise ThresholdError(f"{source}: [{prefix}] must be a table of condition/category = accuracy")
    out: dict[str, dict[str, float]] = {}
    for key, value in raw.items():
        if key in METRICS and isinstance(value, dict):
            for inner, bound in value.items():
                name = _key(inner, f"{prefix}.{key}", source, matrix)
                out.setdefault(key, {})[name] = _bound(bound, f"{source}: {prefix}.{key}.{inner}", key)
            continue
        if isinstance(value, dict):
            raise ThresholdError(f"{source}: [{prefix}.{key}]: not a metric; a sub-table names one of "
                                 f"{', '.join(METRICS)}")
        name = _key(key, prefix, source, matrix)
        where = f"{prefix}.{key}" if '"' not in key else f'{prefix}."{key}"'
        out.setdefault("accuracy", {})[name] = _bound(value, f"{source}: {where}", "accuracy")
    return out


def load_thresholds(path: str | Path, matrix: Matrix, known_models: list[str]) -> Thresholds:
    path = Path(path)
    data = read_toml(path, ThresholdError, "thresholds file")
    unknown = set(data) - {"default", "models", "margin", "note"}
    if unknown:
        raise ThresholdError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                             "expected [default], [models.<name>], margin, note")
    default = _table(data.get("default", {}), str(path), "default", matrix)
    models = {}
    for name, table in data.get("models", {}).items():
        if name not in known_models:
            raise ThresholdError(f"{path}: models.{name}: unknown model; the zoo has {', '.join(known_models)}")
        models[name] = _table(table, str(path), f"models.{name}", matrix)
    return Thresholds(default, models, str(path))


def thresholds_from_results(doc: dict, margin: float = 0.05) -> str:
    """A thresholds TOML with each measured accuracy minus ``margin`` (floored to 0.01), per model."""


    if not 0 <= margin < 1:
        raise ThresholdError(f"margin must be in [0, 1), got {margin}")
    rows = doc["results"]
    meta = doc.get("meta", {})
    lines = [f"# Minimum accuracies: measured accuracy - {margin} (floored to 0.01), per model and condition.",
             f"# Measured on {meta.get('dataset', {}).get('name')} split {meta.get('dataset', {}).get('split')}, "
             f"run {meta.get('run_id')} of {meta.get('started')}.",
             f"# Regenerate: codecbench thresholds --results reports/ --margin {margin}",
             f"margin = {margin}", ""]
    for model in sorted({r["model"] for r in rows}, key=sort_key):
        lines.append(f"[models.{json_key(model)}]")
        for r in rows:
            if r["model"] == model:
                value = max(0.0, math.floor((r["accuracy"] - margin) * 100) / 100)
                lines.append(f'"{r["condition"]}" = {value:.2f}')
        lines.append("")
    return "\n".join(lines)


def json_key(name: str) -> str:
    """A TOML key for a model name: bare if it can be, quoted otherwise."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'
