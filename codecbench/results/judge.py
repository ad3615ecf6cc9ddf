"""The pass/fail decision of one benchmark item, as a pure function of its numbers.

:func:`judge` looks at a result record, its thresholds (accuracy or any ranking metric, if any) and the
baseline run's record for the same (model, condition) (if any), and returns a :class:`Verdict`. It records
nothing and raises nothing, so it can be tested, reused (``codecbench`` commands, the Python
API) and reasoned about on its own.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from codecbench.results.metrics import METRICS, paired_difference
from codecbench.results.rows import record_probabilities
from codecbench.results.stats import paired_comparison


@dataclasses.dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]
    #: Numbers the decision used, recorded with the result (baseline_accuracy, p_value, ...).
    facts: dict

    @property
    def outcome(self) -> str:
        return "passed" if self.passed else "failed"


def judge(record: dict, threshold: float | Mapping[str, float] | None = None, baseline: dict | None = None, *,
          tolerance: float = 0.01, alpha: float = 0.05, metric: str = "accuracy") -> Verdict:
    """The verdict on one result: fail past a bound of ``threshold``, or on a worsening of ``metric`` against
    ``baseline`` larger than ``tolerance`` **and** significant on the paired clips (accuracy: exact McNemar,
    ``p < alpha``; another metric: its paired bootstrap interval at ``1 - alpha`` lies wholly on the worse side).

    Parameters
    ----------
    record : dict
        The result: accuracy, its interval, n, per-clip ``clips``/``labels``/``predictions`` (and
        ``probabilities``), and the ranking metrics.
    threshold : float or mapping, optional
        The minimum accuracy, or bounds per metric (a minimum where higher is better, else a maximum).
    baseline : dict, optional
        The baseline run's record for the same model and condition.
    tolerance : float
        The largest worsening of ``metric`` that passes whatever its significance.
    alpha : float
        The significance level of the paired test.
    metric : str
        What the gate compares with the baseline (:mod:`codecbench.results.metrics`).

    Returns
    -------
    Verdict
        Passed or not, the reasons in words, and the numbers used (recorded with the result).
    """
    reasons: list[str] = []
    bounds = {} if threshold is None else \
        dict(threshold) if isinstance(threshold, Mapping) else {"accuracy": float(threshold)}
    facts: dict = {"threshold": bounds.get("accuracy")}
    if set(bounds) - {"accuracy"}:
        facts["bounds"] = bounds
    for name, bound in bounds.items():
        reason = _past_bound(record, name, bound)
        if reason:
            reasons.append(reason)
    if baseline is not None:
        if metric == "accuracy":
            reasons += _accuracy_gate(record, baseline, facts, tolerance, alpha)
        else:
            reasons += _metric_gate(record, baseline, facts, metric, tolerance, alpha)
    return Verdict(not reasons, tuple(reasons), facts)


def _past_bound(record: dict, name: str, bound: float) -> str | None:
    m = METRICS[name]
    value = record.get(name)
    if value is None:
        return (f"{m.label} has a bound ({bound:g}) but this result has no {m.label} (no per-clip probabilities "
                "were recorded)")
    if name == "accuracy":
        if value < bound:
            return (f"accuracy {value:.3f} (95% CI {record['ci_low']:.3f}-{record['ci_high']:.3f}, "
                    f"n={record['n']}) is below the threshold {bound:.3f}")
        return None
    interval = ""
    if record.get(f"{name}_low") is not None:
        interval = f" (95% CI {record[f'{name}_low']:.3f}-{record[f'{name}_high']:.3f}, n={record['n']})"
    if m.higher_is_better and value < bound:
        return f"{m.label} {value:.3f}{interval} is below the threshold {bound:.3f}"
    if not m.higher_is_better and value > bound:
        return f"{m.label} {value:.3f}{interval} is above the threshold {bound:.3f} (lower is better)"
    return None


def _accuracy_gate(record, baseline, facts, tolerance, alpha) -> list[str]:
    paired = paired_comparison(baseline, record)
    drop = -paired["delta"] if paired["n"] else 0.0
    facts.update(baseline_accuracy=float(baseline["accuracy"]), p_value=paired["p_value"], paired_clips=paired["n"])
    if drop > tolerance and paired["p_value"] < alpha:
        return [f"accuracy dropped from {baseline['accuracy']:.3f} to {record['accuracy']:.3f} "
                f"(-{drop:.3f} > tolerance {tolerance}) on {paired['n']} paired clips; "
                f"exact McNemar p = {paired['p_value']:.3g} < alpha {alpha} "
                f"({paired['reference_only']} clips only the baseline got right, "
                f"{paired['candidate_only']} only this run)"]
    return []


def _metric_gate(record, baseline, facts, metric, tolerance, alpha) -> list[str]:
    m = METRICS[metric]
    sides = []
    for side in (baseline, record):
        probabilities = record_probabilities(side)
        sides.append({**side, "probabilities": probabilities})
    n_classes = next((s["probabilities"].shape[1] for s in sides if s["probabilities"] is not None),
                     max([*record["labels"], *record["predictions"], 0]) + 1)
    diff = paired_difference(sides[0], sides[1], metric, n_classes=n_classes, confidence=1 - alpha)
    if diff is None:
        return [f"the gate compares {m.label}, which the baseline or this result lacks (no per-clip "
                "probabilities recorded); re-run the baseline or gate on accuracy"]
    facts.update({f"baseline_{metric}": baseline.get(metric), f"{metric}_change": diff["difference"],
                  f"{metric}_change_low": diff["low"], f"{metric}_change_high": diff["high"],
                  "paired_clips": diff["n"]})
    worse = -diff["difference"] if m.higher_is_better else diff["difference"]
    significant = diff["high"] < 0 if m.higher_is_better else diff["low"] > 0
    if worse > tolerance and significant:
        return [f"{m.label} worsened from {baseline.get(metric, float('nan')):.3f} to {record[metric]:.3f} "
                f"({diff['difference']:+.3f} > tolerance {tolerance}) on {diff['n']} paired clips; paired "
                f"bootstrap {100 * (1 - alpha):g} % interval of the change [{diff['low']:+.3f}, {diff['high']:+.3f}]"
                " excludes 0"]
    return []


def gate_summary(rows: list[dict], *, metric: str = "accuracy", tolerance: float = 0.01,
                 alpha: float = 0.05) -> str | None:
    """One line on the baseline gate of a run's rows (cells compared, regressions, the worst), or None when no row
    was compared with a baseline."""
    m = METRICS[metric]
    compared, regressions = [], []
    for row in rows:
        if metric == "accuracy":
            if row.get("baseline_accuracy") is None:
                continue
            change = row["accuracy"] - row["baseline_accuracy"]
            significant = row.get("p_value") is not None and row["p_value"] < alpha
        else:
            if row.get(f"{metric}_change") is None:
                continue
            change = row[f"{metric}_change"]
            significant = row[f"{metric}_change_high"] < 0 if m.higher_is_better else row[f"{metric}_change_low"] > 0
        worse = -change if m.higher_is_better else change
        compared.append((worse, row))
        if worse > tolerance and significant:
            regressions.append((worse, row))
    if not compared:
        return None
    line = (f"baseline gate on {m.label}: {len(compared)} cells compared, {len(regressions)} "
            f"regression{'s' if len(regressions) != 1 else ''}")
    if regressions:
        worse, row = max(regressions, key=lambda item: (item[0], item[1]["model"], item[1]["condition"]))
        line += f"; the worst: {row['model']} on {row['condition']} ({'-' if m.higher_is_better else '+'}{worse:.3f})"
    else:
        worse, row = max(compared, key=lambda item: (item[0], item[1]["model"], item[1]["condition"]))
        if worse > 0:
            line += f"; the largest worsening: {row['model']} on {row['condition']} ({worse:.3f}, not significant)"
    return line
