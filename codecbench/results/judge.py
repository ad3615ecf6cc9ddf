"""The pass/fail decision of one benchmark item, as a pure function of its numbers.

:func:`judge` looks at a result record, its accuracy threshold (if any) and the baseline run's
record for the same (model, condition) (if any), and returns a :class:`Verdict`. It records
nothing and raises nothing, so it can be tested, reused (``codecbench`` commands, the Python
API) and reasoned about on its own.
"""
from __future__ import annotations

import dataclasses

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


def judge(record: dict, threshold: float | None = None, baseline: dict | None = None, *,
          tolerance: float = 0.01, alpha: float = 0.05) -> Verdict:
    """The verdict on one result: fail below ``threshold``, or on a drop against ``baseline`` larger than
    ``tolerance`` **and** significant under the exact McNemar test on the paired clips (``p < alpha``).

    Parameters
    ----------
    record : dict
        The result: accuracy, its interval, n, and per-clip ``clips``/``labels``/``predictions``.
    threshold : float, optional
        The minimum accuracy, if the thresholds file sets one.
    baseline : dict, optional
        The baseline run's record for the same model and condition.
    tolerance : float
        The largest drop in accuracy that passes whatever its significance.
    alpha : float
        The significance level of the paired test.

    Returns
    -------
    Verdict
        Passed or not, the reasons in words, and the numbers used (recorded with the result).
    """
    reasons: list[str] = []
    facts: dict = {"threshold": threshold}
    accuracy = record["accuracy"]
    if threshold is not None and accuracy < threshold:
        reasons.append(f"accuracy {accuracy:.3f} (95% CI {record['ci_low']:.3f}-{record['ci_high']:.3f}, "
                       f"n={record['n']}) is below the threshold {threshold:.3f}")
    if baseline is not None:
        paired = paired_comparison(baseline, record)
        drop = -paired["delta"] if paired["n"] else 0.0
        facts.update(baseline_accuracy=float(baseline["accuracy"]), p_value=paired["p_value"],
                     paired_clips=paired["n"])
        if drop > tolerance and paired["p_value"] < alpha:
            reasons.append(f"accuracy dropped from {baseline['accuracy']:.3f} to {accuracy:.3f} "
                           f"(-{drop:.3f} > tolerance {tolerance}) on {paired['n']} paired clips; "
                           f"exact McNemar p = {paired['p_value']:.3g} < alpha {alpha} "
                           f"({paired['reference_only']} clips only the baseline got right, "
                           f"{paired['candidate_only']} only this run)")
    return Verdict(not reasons, tuple(reasons), facts)
