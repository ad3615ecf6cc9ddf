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

from codecbench.report.table import GAP, ResultTable, markdown_text
from codecbench.results.files import ResultsError
from codecbench.zoo import full_name, segment_name


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
            inside = bool(low <= published <= high) if cell else None
            rows.append({"dataset": (res.meta.get("dataset") or {}).get("name"), "category": row["category"],
                         "condition": row["condition"], "epoch": epoch, "model": _model_at(epoch),
                         "paper": published, "run": run, "ci_low": low, "ci_high": high,
                         "n": cell["n"] if cell else 0, "delta": run - published, "paper_inside_ci": inside,
                         "agrees": None if inside is None else ("yes" if inside else "no")})
    return rows


def table2_markdown(rows: list[dict], paper: dict) -> str:
    """The paper's Table 2 beside this run's, one row per (condition, epoch): the published accuracy, this run's with
    its 95 % interval, the difference, and whether they agree (the published value inside the run's interval)."""
    def agrees(r: dict) -> str:
        return GAP if r["paper_inside_ci"] is None else ("yes" if r["paper_inside_ci"] else "no")

    body = [[r["category"], r["condition"], f"{r['epoch']} ({_model_at(r['epoch'])})", f"{r['paper']:.3f}",
             GAP if r["paper_inside_ci"] is None else f"{r['run']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
             GAP if r["paper_inside_ci"] is None else f"{r['delta']:+.3f}", agrees(r)] for r in rows]
    headers = ["cat", "condition", "epoch (model)", "paper", "this run [95 % CI]", "run - paper", "agrees?"]
    compared = [r for r in rows if r["paper_inside_ci"] is not None]
    inside = sum(r["paper_inside_ci"] for r in compared)
    summary = (f"The paper's value lies inside this run's 95 % interval in {inside} of {len(compared)} cells"
               + (f"; {len(rows) - len(compared)} cells have no result in this run" if len(compared) < len(rows)
                  else "") + ".")
    return "\n\n".join([f"{paper['title']}: {paper['table2']['caption']}, on {paper['dataset']}. Each row: the "
                        "paper's accuracy, this run's with its 95 % Wilson interval, the difference (run - paper), "
                        "and whether they agree (the paper's value inside the interval).",
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


def on_papers_data(res: ResultTable, paper: dict) -> bool:
    """Whether the run scored the paper's own evaluation data (its dataset and split): only then are numbers
    compared; on other data the findings are."""
    dataset = res.meta.get("dataset") or {}
    return dataset.get("name") == paper.get("dataset_name") and dataset.get("split") == paper.get("split", "evaluate")


def run_facts(res: ResultTable) -> str:
    """The run's own data in a caption: dataset, split, clips scored, and the epochs its models were trained for."""
    dataset = res.meta.get("dataset") or {}
    clips = max((int(c.get("n", 0)) for c in res.cells.values()), default=0)
    facts = res.meta.get("model_facts") or {}
    full = sorted({int(f["epochs"]) for m, f in facts.items() if f.get("strategy") == "full" and f.get("epochs")})
    seg = sorted({int(f["epochs"]) for m, f in facts.items() if str(f.get("strategy", "")).startswith("segment")
                  and f.get("epochs")})
    parts = [f"this run: {markdown_text(dataset.get('name', 'an unnamed dataset'))}, "
             f"{markdown_text(dataset.get('split', '?'))} split, {clips:,} clips"]
    if full:
        parts.append(f"full fine-tuning saved at epochs {', '.join(map(str, full))}")
    if seg:
        parts.append(f"segments fine-tuned for {', '.join(map(str, seg))} epoch{'s' if seg != [1] else ''}")
    return "; ".join(parts)


def extra_epochs_markdown(res: ResultTable, paper: dict) -> str | None:
    """Full fine-tuning epochs this run saved that the paper did not report, as rows of their own."""
    reported = set(paper["table2"]["epochs"])
    extra = sorted({int(m.split("@e")[1]) for m, _ in res.cells if m.startswith("finetuned_full@e")} - reported)
    if not extra:
        return None
    conds = [r["condition"] for r in paper["table2"]["rows"]]
    body = []
    for e in extra:
        row: list = [f"epoch {e} ({full_name(e)})"]
        for c in conds:
            cell = res.get(full_name(e), c)
            row.append(GAP if cell is None else f"{float(cell['accuracy']):.3f} [{float(cell['ci_low']):.3f}, "
                                                f"{float(cell['ci_high']):.3f}]")
        body.append(row)
    return ("Epochs of this run the paper did not report (no published value to compare with):\n\n"
            + tabulate(body, headers=["model", *conds], tablefmt="github", disable_numparse=True))


def findings_rows(res: ResultTable, paper: dict) -> list[dict]:
    """The paper's findings against this run's, for a run on other data: the base model's worst condition, how much
    of its uncoded accuracy it keeps at 64 kbps, the gain of full fine-tuning there, and segment 7's rank."""
    table = {r["condition"]: r["accuracy"] for r in paper["table2"]["rows"]}
    epochs = paper["table2"]["epochs"]
    at = {e: i for i, e in enumerate(epochs)}
    rows = []
    base = {c: res.get("base", c) for c in table}
    scored = {c: float(cell["accuracy"]) for c, cell in base.items() if cell}
    paper_worst = min(table, key=lambda c: table[c][0])
    rows.append({"finding": "the base model's worst condition", "paper": f"{paper_worst} ({table[paper_worst][0]:.3f})",
                 "run": _worst(scored)})
    for cond in (c for c in table if c.endswith("@64")):
        ratio_paper = table[cond][0] / table["wav"][0]
        ratio_run = scored[cond] / scored["wav"] if cond in scored and scored.get("wav") else math.nan
        rows.append({"finding": f"share of uncoded accuracy kept at {cond}", "paper": f"{ratio_paper:.2f}",
                     "run": GAP if math.isnan(ratio_run) else f"{ratio_run:.2f}"})
    tuned = [e for e in epochs if e and any(m == full_name(e) for m, _ in res.cells)]
    if tuned and paper_worst in scored:
        e = 10 if 10 in tuned else tuned[-1]
        cell = res.get(full_name(e), paper_worst)
        gain_run = float(cell["accuracy"]) - scored[paper_worst] if cell else math.nan
        rows.append({"finding": f"full fine-tuning's gain on {paper_worst} after {e} epochs",
                     "paper": f"{table[paper_worst][at[e]] - table[paper_worst][0]:+.3f}",
                     "run": GAP if math.isnan(gain_run) else f"{gain_run:+.3f}"})
    for r in segment_rows(res, paper):
        ranks = ", ".join(f"segment {k}: rank {rank} of {r['segments']}" for k, rank in r["ranks_of_strong"].items())
        rows.append({"finding": f"segment ranking on {r['condition']}", "paper": paper["segments"]["statement"],
                     "run": f"largest gain: segment {', '.join(map(str, r['best_segments']))} "
                            f"({r['best_gain']:+.3f}); {ranks or 'segment 7 not in this run'}"})
    return rows


def _worst(scored: dict[str, float]) -> str:
    if not scored:
        return GAP
    worst = min(scored, key=lambda c: scored[c])
    return f"{worst} ({scored[worst]:.3f})"


def paper_sections(res: ResultTable, paper: dict) -> tuple[list[str], list[dict]]:
    """The report's Markdown sections comparing ``res`` with ``paper``, and the Table 2 rows (for the CSV).

    Numbers are compared only on the paper's own data (:func:`on_papers_data`); on other data the section says so in
    its title and compares the findings instead (:func:`findings_rows`)."""
    rows = table2_rows(res, paper)
    facts = run_facts(res)
    if not on_papers_data(res, paper):
        found = findings_rows(res, paper)
        dataset = markdown_text((res.meta.get("dataset") or {}).get("name", "other data"))
        body = tabulate([[f["finding"], f["paper"], f["run"]] for f in found],
                        headers=["finding", "the paper", "this run"], tablefmt="github",
                        disable_numparse=True)
        # the CSV too compares findings, naming the data: TAU's numbers beside another dataset's would read as a
        # comparison that is not one
        name = (res.meta.get("dataset") or {}).get("name")
        return ([f"## Findings: paper vs this run (on {dataset}, not the paper's data)",
                f"This run did not score the paper's data ({paper['dataset']}), so its accuracies are not comparable "
                f"with the published ones; the comparison is of the findings. {facts[0].upper()}{facts[1:]}.", body],
                [{"dataset": name, "paper_dataset": paper["dataset"], **f} for f in found])
    sections = ["## Table 2: paper vs this run", table2_markdown(rows, paper) + f"\n\n{facts[0].upper()}{facts[1:]}."]
    extra = extra_epochs_markdown(res, paper)
    if extra:
        sections.append(extra)
    seg = segment_rows(res, paper)
    if seg:
        sections += ["## Segments: paper vs this run", segments_markdown(seg, paper) + f"\n\n{facts[0].upper()}"
                     f"{facts[1:]}."]
    return sections, rows
