"""The four remedies compared on the same evaluation: full fine-tuning, segment fine-tuning, the post-filter and
codec-invariant (consistency) fine-tuning, each represented by one model of the results, compared pairwise with an
exact McNemar test on paired predictions (the same clips under the same coded conditions), and per condition."""
from __future__ import annotations

import itertools

import numpy as np
from tabulate import tabulate

from codecbench.report.table import ResultTable, markdown_text
from codecbench.results.stats import mcnemar_exact, wilson_interval
from codecbench.zoo import model_kind


def representatives(models: list[str]) -> dict[str, str]:
    """``{remedy: model}`` for the remedies present: full fine-tuning at 10 epochs (the paper's sweet spot; else the
    longest), segment 7 (the paper's best single segment; else the lowest), the first post-filter, the first
    consistency model."""
    full = sorted((model_kind(m)[1], m) for m in models if model_kind(m)[0] == "full")
    segments = sorted((model_kind(m)[1], m) for m in models if model_kind(m)[0] == "segment")
    chosen = {
        "full fine-tuning": next((m for e, m in full if e == 10), full[-1][1] if full else None),
        "segment fine-tuning": next((m for k, m in segments if k == 7), segments[0][1] if segments else None),
        "post-filter": next((m for m in models if "+postfilter" in m), None),
        "consistency": next((m for m in models if model_kind(m)[0] == "consistency"), None),
    }
    return {remedy: model for remedy, model in chosen.items() if model is not None}


def _correct(cell: dict) -> dict[str, bool]:
    return dict(zip(cell["clips"], (np.asarray(cell["predictions"]) == np.asarray(cell["labels"])).tolist()))


def compare_remedies(res: ResultTable) -> tuple[list[dict], list[dict]]:
    """Pairwise rows (pooled over the coded conditions both models ran, paired by clip and condition) and one row per
    condition with each remedy's accuracy; empty when fewer than two remedies are present."""
    chosen = representatives(res.models)
    if len(chosen) < 2:
        return [], []
    coded = [c for _, c in res.conditions() if not res.parsed[c].is_original]
    pairs = []
    for (remedy_a, a), (remedy_b, b) in itertools.combinations(chosen.items(), 2):
        right_a, right_b = [], []
        for cond in coded:
            cell_a, cell_b = res.get(a, cond), res.get(b, cond)
            if cell_a is None or cell_b is None:
                continue
            ca, cb = _correct(cell_a), _correct(cell_b)
            shared = [clip for clip in ca if clip in cb]
            right_a += [ca[clip] for clip in shared]
            right_b += [cb[clip] for clip in shared]
        if not right_a:
            continue
        p, a_only, b_only = mcnemar_exact(np.array(right_a), np.array(right_b))
        pairs.append({"remedy_a": remedy_a, "model_a": a, "remedy_b": remedy_b, "model_b": b, "pairs": len(right_a),
                      "accuracy_a": float(np.mean(right_a)), "accuracy_b": float(np.mean(right_b)),
                      "a_only": a_only, "b_only": b_only, "p_value": p})
    per_condition = []
    for cond in coded:
        row: dict = {"condition": cond}
        for remedy, model in [("base", "base"), *chosen.items()]:
            cell = res.get(model, cond)
            row[remedy] = cell["correct"] / cell["n"] if cell and cell["n"] else None
        per_condition.append(row)
    return pairs, per_condition


def markdown(pairs: list[dict], per_condition: list[dict], alpha: float = 0.05) -> str:
    """The pairwise table (with Wilson intervals of the pooled accuracies) and the per-condition table."""
    rows = []
    for r in pairs:
        lo_a, hi_a = wilson_interval(round(r["accuracy_a"] * r["pairs"]), r["pairs"])
        lo_b, hi_b = wilson_interval(round(r["accuracy_b"] * r["pairs"]), r["pairs"])
        better = "-" if r["p_value"] >= alpha else (r["remedy_a"] if r["a_only"] > r["b_only"] else r["remedy_b"])
        rows.append([f"{r['remedy_a']} ({markdown_text(r['model_a'])})",
                     f"{r['remedy_b']} ({markdown_text(r['model_b'])})", f"{r['pairs']:,}",
                     f"{r['accuracy_a']:.3f} [{lo_a:.3f}, {hi_a:.3f}]",
                     f"{r['accuracy_b']:.3f} [{lo_b:.3f}, {hi_b:.3f}]",
                     f"{r['a_only']} / {r['b_only']}", f"{r['p_value']:.2g}", better])
    first = tabulate(rows, headers=["remedy A", "remedy B", "pairs", "accuracy A", "accuracy B",
                                    "only A / only B right", "McNemar p", f"better (p < {alpha:g})"],
                     tablefmt="github")
    columns = list(per_condition[0]) if per_condition else []
    second = tabulate([[markdown_text(r["condition"])] + [f"{r[c]:.3f}" if r[c] is not None else "-"
                                                         for c in columns[1:]] for r in per_condition],
                      headers=columns, tablefmt="github")
    return first + "\n\nAccuracy per coded condition:\n\n" + second
