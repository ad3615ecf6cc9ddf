"""Two runs compared clip by clip: per (model, condition) cell both accuracies, the share of identical predictions,
the exact McNemar p, and whether one run's accuracy lies inside the other's Wilson interval (``codecbench compare``;
the GPU check and CI's backend matrix gate on it)."""
from __future__ import annotations

from pathlib import Path

from codecbench.results.files import ResultsError
from codecbench.zoo import sort_key


def compare_runs(reference: dict, candidate: dict, *, match_by: str = "key") -> dict:
    """Two results documents (:func:`load_results`) compared cell by cell on the (model, condition) pairs they share:
    per cell both accuracies, the share of paired clips with identical predictions, the exact McNemar p, and whether
    the candidate's accuracy lies inside the reference's Wilson interval; and the totals. ``match_by="name"`` pairs
    clips by file name (runs recorded before clips were keyed by path)."""
    from codecbench.results.stats import paired_comparison, wilson_interval

    def cells(document: dict) -> dict:
        out = {}
        for r in document["results"]:
            if match_by == "name":
                r = {**r, "clips": [Path(c).name for c in r["clips"]]}
            out[(r["model"], r["condition"])] = r
        return out

    ref, cand = cells(reference), cells(candidate)
    shared = sorted(set(ref) & set(cand), key=lambda k: (sort_key(k[0]), k[1]))
    if not shared:
        raise ResultsError("the two runs share no (model, condition) cell")
    rows = []
    for key in shared:
        a, b = ref[key], cand[key]
        pred_a = dict(zip(a["clips"], a["predictions"]))
        common = [c for c in b["clips"] if c in pred_a]
        identical = sum(pred_a[c] == p for c, p in zip(b["clips"], b["predictions"]) if c in pred_a)
        low, high = wilson_interval(int(a["correct"]), int(a["n"]))
        rows.append({"model": key[0], "condition": key[1], "reference": a["accuracy"], "candidate": b["accuracy"],
                     "reference_ci": [low, high], "identical": identical, "paired": len(common),
                     "agreement": identical / len(common) if common else 0.0,
                     "inside_reference_ci": low <= b["accuracy"] <= high,
                     "p_value": paired_comparison(a, b)["p_value"]})
    if not any(r["paired"] for r in rows):
        hint = "" if match_by == "name" else "; runs recorded before clips were keyed by path pair with --match-by name"
        raise ResultsError(f"the two runs share {len(rows)} (model, condition) cells but no clip: they scored other "
                           f"data (datasets {reference.get('meta', {}).get('dataset', {}).get('name')!r} and "
                           f"{candidate.get('meta', {}).get('dataset', {}).get('name')!r}); comparing nothing is not "
                           f"agreement{hint}")
    return {"cells": rows, "same_accuracy": sum(r["reference"] == r["candidate"] for r in rows),
            "identical": sum(r["identical"] for r in rows), "paired": sum(r["paired"] for r in rows),
            "min_agreement": min(r["agreement"] for r in rows),
            "all_inside_reference_ci": all(r["inside_reference_ci"] for r in rows)}
