"""Statistics for accuracies: Wilson intervals and the exact McNemar test on paired predictions."""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom

from codecbench.errors import ArgumentError


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(0, 1)`` for ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import norm
    z = float(norm.ppf(0.5 + confidence / 2))
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Two-sided exact McNemar test of paired correctness; returns ``(p, a_only, b_only)``.

    ``a_only`` counts clips only A got right, ``b_only`` those only B got right; under the
    null hypothesis each discordant clip is a fair coin flip.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ArgumentError(f"paired predictions need equal lengths, got {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    if n == 0:
        return 1.0, 0, 0
    p = min(1.0, 2 * float(binom.cdf(min(a_only, b_only), n, 0.5)))
    return p, a_only, b_only


def paired_comparison(reference: dict, candidate: dict) -> dict:
    """Compare two result records (``clips``, ``labels``, ``predictions``) on the clips they share.

    Returns the number of shared clips, both accuracies on them, the change, and the exact
    McNemar p with the counts of clips only the reference / only the candidate got right.
    """
    for side, rec in (("reference", reference), ("candidate", candidate)):
        if len(set(rec["clips"])) != len(rec["clips"]):
            raise ArgumentError(f"the {side} result of {rec.get('model')} on {rec.get('condition')} lists a clip "
                                "twice; clips are paired by their path relative to the dataset root, which must be "
                                "unique")
    ref = dict(zip(reference["clips"], (np.array(reference["predictions"]) == np.array(reference["labels"])).tolist()))
    shared = [i for i, clip in enumerate(candidate["clips"]) if clip in ref]
    new = (np.array(candidate["predictions"]) == np.array(candidate["labels"]))[shared]
    old = np.array([ref[candidate["clips"][i]] for i in shared], dtype=bool)
    p, ref_only, cand_only = mcnemar_exact(old, new)
    ref_acc = float(old.mean()) if shared else float("nan")
    cand_acc = float(new.mean()) if shared else float("nan")
    return {"n": len(shared), "reference_accuracy": ref_acc, "candidate_accuracy": cand_acc,
            "delta": cand_acc - ref_acc, "p_value": p, "reference_only": ref_only, "candidate_only": cand_only}
