"""A paper's published numbers beside a run's: "Table 2: paper vs this run" and the qualitative segment comparison.

The published values are data (``codecbench/manifests/papers/<name>.json``), never code. A cell of the comparison
shows the paper's accuracy, this run's with its 95 % Wilson interval, the difference, and whether the paper's value
lies inside the interval; a model or condition the run lacks is a gap. The segment results of the study exist only
as a figure, so they are compared by rank (which segment gains most), not by number.
"""
from __future__ import annotations

import json
import math
from importlib import resources

from tabulate import tabulate

from ..results import ResultsError
from ..zoo import full_name, segment_name
from .table import GAP, ResultTable


def known_papers() -> list[str]:
    folder = resources.files("codecbench") / "manifests" / "papers"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_paper(name: str) -> dict:
    """The published numbers of paper ``name`` (see :func:`known_papers`)."""
    if name not in known_papers():
        raise ResultsError(f"no published numbers for paper {name!r}; known: {', '.join(known_papers())}")
    return json.loads((resources.files("codecbench") / "manifests" / "papers" / f"{name}.json").read_text())


def _model_at(epoch: int) -> str:
    return "base" if epoch == 0 else full_name(epoch)


def table2_rows(res: ResultTable, paper: dict) -> list[dict]:
    """One row per (condition, epoch) of the paper's Table 2: the paper's accuracy and this run's."""
    rows = []
    table = paper["table2"]
    for row in table["rows"]:
        for epoch, published in zip(table["epochs"], row["accuracy"]):
            cell = res.get(_model_at(epoch), row["condition"])
            run = float(cell["accuracy"]) if cell else math.nan
            low, high = (float(cell["ci_low"]), float(cell["ci_high"])) if cell else (math.nan, math.nan)
            rows.append({"category": row["category"], "condition": row["condition"], "epoch": epoch,
                         "model": _model_at(epoch), "paper": published, "run": run, "ci_low": low, "ci_high": high,
                         "n": cell["n"] if cell else 0, "delta": run - published,
                         "paper_inside_ci": bool(low <= published <= high) if cell else None})
    return rows


def table2_markdown(rows: list[dict], paper: dict) -> str:
    epochs = paper["table2"]["epochs"]
    by_condition: dict[tuple, dict] = {}
    for r in rows:
        by_condition.setdefault((r["category"], r["condition"]), {})[r["epoch"]] = r

    def cell(r: dict) -> str:
        if r["paper_inside_ci"] is None:
            return f"{r['paper']:.3f} / {GAP}"
        mark = "✓" if r["paper_inside_ci"] else "✗"
        return f"{r['paper']:.3f} / {r['run']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] {r['delta']:+.3f} {mark}"

    body = [[cat, cond, *(cell(cells[e]) for e in epochs)] for (cat, cond), cells in by_condition.items()]
    headers = ["cat", "condition", *(f"epoch {e} ({_model_at(e)})" for e in epochs)]
    compared = [r for r in rows if r["paper_inside_ci"] is not None]
    inside = sum(r["paper_inside_ci"] for r in compared)
    summary = (f"The paper's value lies inside this run's 95 % interval in {inside} of {len(compared)} cells"
               + (f"; {len(rows) - len(compared)} cells have no result in this run" if len(compared) < len(rows)
                  else "") + ".")
    return "\n\n".join([f"{paper['title']}: {paper['table2']['caption']}, on {paper['dataset']}. Each "
                        "cell: the paper's accuracy / this run's [95 % Wilson interval], the difference (run - "
                        "paper), and ✓ when the paper's value lies inside the interval.",
                        tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), summary])


def segment_rows(res: ResultTable, paper: dict) -> list[dict]:
    """Per condition the paper names: each segment's gain over base, and the rank of the segments it calls strong."""
    spec = paper.get("segments") or {}
    rows = []
    for cond in spec.get("compare_on", []):
        base = res.get("base", cond)
        if base is None:
            continue
        cells = {k: res.get(segment_name(k), cond) for k in range(1, 11)}
        gains = {k: float(c["accuracy"]) - float(base["accuracy"]) for k, c in cells.items() if c}
        if not gains:
            continue
        best = max(gains.values())
        # a segment's rank: 1 + the segments that gained strictly more (ties share a rank)
        rank = {k: 1 + sum(g > gains[k] for g in gains.values()) for k in gains}
        full = res.get(full_name(10), cond)
        rows.append({"condition": cond, "best_segments": [k for k in sorted(gains) if gains[k] == best],
                     "best_gain": best, "ranks_of_strong": {k: rank[k] for k in spec.get("strong", []) if k in gains},
                     "full_gain": float(full["accuracy"]) - float(base["accuracy"]) if full else math.nan,
                     "segments": len(gains)})
    return rows


def segments_markdown(rows: list[dict], paper: dict) -> str:
    spec = paper["segments"]
    body = [[r["condition"], f"segment{'s' * (len(r['best_segments']) > 1)} "
             f"{', '.join(map(str, r['best_segments']))} ({r['best_gain']:+.3f})",
             ", ".join(f"segment {k}: rank {rank} of {r['segments']}" for k, rank in r["ranks_of_strong"].items())
             or GAP, GAP if math.isnan(r["full_gain"]) else f"{r['full_gain']:+.3f}"] for r in rows]
    return "\n\n".join([f"{spec['caption'][0].upper()}{spec['caption'][1:]}. The study: {spec['statement']}.",
                        tabulate(body, headers=["condition", "largest gain over base",
                                                "segments the study calls strong",
                                                f"full fine-tuning ({full_name(10)}) gain"],
                                 tablefmt="github", disable_numparse=True)])


def paper_sections(res: ResultTable, paper: dict) -> tuple[list[str], list[dict]]:
    """The report's Markdown sections comparing ``res`` with ``paper``, and the Table 2 rows (for the CSV)."""
    rows = table2_rows(res, paper)
    sections = ["## Table 2: paper vs this run", table2_markdown(rows, paper)]
    seg = segment_rows(res, paper)
    if seg:
        sections += ["## Segments: paper vs this run", segments_markdown(seg, paper)]
    return sections, rows
