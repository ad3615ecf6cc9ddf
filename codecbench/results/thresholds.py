"""Accuracy thresholds from TOML: a minimum accuracy per model and condition, with defaults.

    [default]               # every model
    default = 0.0           # any condition
    cat1 = 0.7              # a category of the matrix
    "mp3@32" = 0.2          # one condition

    [models.finetuned_seg7] # one model: same keys, taking precedence

Lookup order: model+condition, model+category, model default, default+condition,
default+category, default default; no entry means no threshold.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from codecbench.codecs import parse_condition
from codecbench.codecs.matrix import Matrix
from codecbench.core.config import read_toml
from codecbench.errors import UsageError
from codecbench.zoo import sort_key


class ThresholdError(UsageError):
    """A thresholds file that cannot be used; the message names the file and key."""


class Thresholds:
    def __init__(self, default: dict[str, float], models: dict[str, dict[str, float]], source: str):
        self.default, self.models, self.source = default, models, source

    def lookup(self, model: str, condition: str, category: str | None) -> float | None:
        for table in (self.models.get(model, {}), self.default):
            for key in (condition, category, "default"):
                if key is not None and key in table:
                    return table[key]
        return None


def _table(raw, source: str, prefix: str, matrix: Matrix) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ThresholdError(f"{source}: [{prefix}] must be a table of condition/category = accuracy")
    out: dict[str, float] = {}
    for key, value in raw.items():
        where = f"{prefix}.{key}" if '"' not in key else f'{prefix}."{key}"'
        if key != "default" and key not in matrix.categories:
            try:
                cond = parse_condition(key)
            except ValueError as exc:
                raise ThresholdError(f"{source}: {where}: not a category of matrix {matrix.name!r} "
                                     f"({', '.join(matrix.categories)}) nor a condition: {exc}") from None
            if cond not in matrix.validation:
                raise ThresholdError(f"{source}: {where}: condition {cond.name} is not in matrix {matrix.name!r}")
            key = cond.name
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ThresholdError(f"{source}: {where} = {value!r}: an accuracy must be a number in [0, 1]")
        out[key] = float(value)
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
