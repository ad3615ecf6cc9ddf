"""The HTML report: one self-contained folder (``index.html`` with its data, script and styles inlined, and the
CSV files beside it) that opens from disk or any static host and makes no network request.

The page holds the leaderboard (one row per model, ranked by the headline robustness score: coded accuracy,
relative coding error, coded log-loss, uncoded accuracy, mean accuracy per category, worst condition, retained
accuracy and break-even bit rate where swept, each with its interval; sortable and filterable), the accuracy per
condition, the study's tables with the Markdown report's intervals and significance marks, interactive
figures (hover for the numbers, click a legend entry to hide a model, pick the models to show) and a detail
view per model (accuracy per condition, the paired comparison with any reference model, confusion matrices,
sidecar facts). The same page serves a leaderboard across runs: one section per (dataset, matrix), never mixed.

Charts are hand-written SVG in a small inlined script rather than a charting library (Vega-Lite with its runtime
is about 800 kB minified, Plotly over 3 MB; either would be inlined into every report): the page stays small (tens
of kB besides its data) and the few charts it has get what the study's figures need — round ticks, a zero line,
reference lines, axes fitted to the data, a colour-blind-safe palette with a marker and dash per series
(:mod:`.palette`, shared with the PNG figures), and a width fitted to the screen.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from codecbench.core.palette import styles_for
from codecbench.report import remedies, sweeps
from codecbench.report.codec_facts import codec_facts
from codecbench.report.paper import findings_rows, load_paper, on_papers_data, run_facts, table2_rows
from codecbench.report.ranking import ranking
from codecbench.report.table import ResultTable, full_epoch_models, segment_models
from codecbench.results.ranking import REFERENCE
from codecbench.results.rows import METRIC_COLUMNS
from codecbench.results.stats import paired_comparison, wilson_interval
from codecbench.zoo import full_name, model_kind

#: significance level of the marks in tables and details (as the Markdown report's)
ALPHA = 0.05


def _interval(correct: int, n: int) -> dict:
    low, high = wilson_interval(int(correct), int(n))
    return {"acc": correct / n if n else None, "lo": low, "hi": high, "n": int(n), "correct": int(correct)}


def _finite(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def _origin(facts: dict) -> str:
    """Where a model came from, in words, from its sidecar facts."""
    strategy, parent = facts.get("strategy"), facts.get("parent")
    if not parent:
        return {"base": "trained from scratch"}.get(strategy or "", strategy or "imported")
    how = {"full": "fine-tuned (all layers)", "segment": f"fine-tuned (segment {facts.get('segments')})",
           "postfilter": "post-filter added"}.get(strategy or "", strategy or "derived")
    epochs = f", {facts['epochs']} epochs" if facts.get("epochs") else ""
    return f"{how} from {parent}{epochs}"


def paper_data(res: ResultTable, paper_name: str) -> dict:
    """The paper-vs-run comparison as the page shows it: Table 2 cell by cell on the paper's own data, else the
    findings (the same rows as the Markdown report's, :mod:`.paper`)."""
    paper = load_paper(paper_name)
    facts = run_facts(res)
    data = {"name": paper_name, "title": paper["title"], "dataset": paper["dataset"],
            "caption": paper["table2"]["caption"], "epochs": paper["table2"]["epochs"],
            "facts": facts[0].upper() + facts[1:] + ".", "on_papers_data": on_papers_data(res, paper)}
    if data["on_papers_data"]:
        data["table2"] = [{k: _finite(v) for k, v in row.items()} for row in table2_rows(res, paper)]
    else:
        data["findings"] = findings_rows(res, paper)
    return data


def group_data(res: ResultTable, *, sweep_rows: list[dict] | None = None, paper: str | None = None,
               reference: str | None = REFERENCE) -> dict:
    """Everything the page shows of one results document (one dataset and matrix), as JSON-able data."""
    meta = res.meta
    conditions = [{"name": c, "category": cat, "codec": res.parsed[c].codec, "kbps": res.parsed[c].kbps,
                   "original": res.parsed[c].is_original} for cat, c in res.conditions()]
    facts = meta.get("model_facts", {})
    cells = {}
    for (model, cond), r in res.cells.items():
        cells[f"{model}|{cond}"] = {**_interval(r["correct"], r["n"]), "kbps": _finite(r.get("achieved_kbps")),
                                    "run_id": r.get("run_id", meta.get("run_id")),
                                    **{k: _finite(r.get(k)) for k in METRIC_COLUMNS}}
    sweep_rows = sweeps.summarise(res, n_boot=200) if sweep_rows is None else sweep_rows
    scores = {s.model: s for s in ranking(res, reference)}
    models = []
    # ranked: the leaderboard's default order is the headline's
    for model in sorted(res.models, key=lambda m: scores[m].rank if m in scores else len(scores) + 1):
        f = facts.get(model, {})
        # results of an older codecbench did not record kind and front-end: shown as such, never guessed
        row: dict = {"name": model, "kind": f.get("kind", "unrecorded"), "frontend": f.get("frontend", "unrecorded"),
                     "params": f.get("params"), "origin": _origin(f),
                     "sha256": meta.get("models", {}).get(model), "facts": f}
        wav = res.get(model, "wav")
        row["wav"] = _interval(wav["correct"], wav["n"]) if wav else None
        for cat, conds in res.categories.items():
            mine = [m for m in (res.get(model, c) for c in conds) if m]
            row[f"cat:{cat}"] = (_interval(sum(m["correct"] for m in mine), sum(m["n"] for m in mine))
                                 if mine else None)
        coded = [(c, r) for c, r in ((c, res.get(model, c)) for _, c in res.conditions()
                                     if not res.parsed[c].is_original) if r]
        if coded:
            name, worst = min(coded, key=lambda item: (item[1]["accuracy"], item[0]))
            row["worst"] = {"condition": name, **_interval(worst["correct"], worst["n"])}
        row["sweeps"] = {s["codec"]: {"retained": _finite(s["retained"]), "retained_lo": _finite(s["retained_low"]),
                                      "retained_hi": _finite(s["retained_high"]),
                                      "break_even": _finite(s["break_even_kbps"]),
                                      "break_even_lo": _finite(s["break_even_low"]),
                                      "break_even_hi": _finite(s["break_even_high"])}
                         for s in sweep_rows if s["model"] == model}
        score = scores.get(model)
        if score is not None:
            row.update(rank=score.rank, complete=score.complete,
                       coded={"acc": _finite(score.coded_accuracy), "lo": _finite(score.coded_accuracy_low),
                              "hi": _finite(score.coded_accuracy_high)},
                       rce={"v": _finite(score.relative_coding_error), "lo": _finite(score.relative_coding_error_low),
                            "hi": _finite(score.relative_coding_error_high)},
                       retained={"v": _finite(score.retained_accuracy), "lo": _finite(score.retained_accuracy_low),
                                 "hi": _finite(score.retained_accuracy_high)},
                       log_loss={"v": _finite(score.coded_log_loss), "lo": _finite(score.coded_log_loss_low),
                                 "hi": _finite(score.coded_log_loss_high)})
        models.append(row)
    paired, confusion = {}, {}
    names = meta.get("dataset", {}).get("class_names") or []
    for model in res.models:
        for _, cond in res.conditions():
            cell = res.get(model, cond)
            if not cell or "predictions" not in cell:
                continue
            k = max([len(names), *(int(v) + 1 for v in cell["labels"]), *(int(v) + 1 for v in cell["predictions"])])
            matrix = np.zeros((k, k), dtype=int)
            np.add.at(matrix, (np.asarray(cell["labels"], int), np.asarray(cell["predictions"], int)), 1)
            confusion[f"{model}|{cond}"] = matrix.tolist()
            for reference in res.models:
                ref = res.get(reference, cond)
                if reference == model or not ref or "predictions" not in ref:
                    continue
                p = paired_comparison(ref, cell)
                paired[f"{reference}|{model}|{cond}"] = {"delta": _finite(p["delta"]), "p": _finite(p["p_value"]),
                                                         "n": p["n"], "ref_only": p["reference_only"],
                                                         "cand_only": p["candidate_only"]}
    tables = {}
    for key, columns in (("table2", full_epoch_models(res)), ("segments", segment_models(res))):
        if key == "segments" and not any(model_kind(m)[0] == "segment" for _, m in columns):
            continue  # no segment model: the table would repeat Table 2
        if len(columns) > (0 if key == "table2" else 1) and any(model_kind(m)[0] != "base" for _, m in columns):
            tables[key] = [{"label": label, "model": m} for label, m in columns]
    dataset = meta.get("dataset", {})
    return {"dataset": {k: dataset.get(k) for k in ("name", "split", "fingerprint", "root")},
            "matrix": meta.get("matrix", {}).get("name"), "run_id": meta.get("run_id"),
            "started": meta.get("started"), "composed_from": meta.get("composed_from", []),
            "git_commit": meta.get("git_commit"), "categories": res.categories, "conditions": conditions,
            "models": models, "full_model": full_name(10) if full_name(10) in res.models else None,
            "cells": cells, "paired": paired, "confusion": confusion, "class_names": names,
            "tables": tables, "sweeps": {codec: [{"kbps": k, "condition": c} for k, c in points]
                                         for codec, points in sweeps.find_sweeps(
                                             [res.parsed[c] for _, c in res.conditions()]).items()},
            "loss_sweeps": {name: [{"loss": r, "condition": c} for r, c in points]
                            for name, points in sweeps.find_loss_sweeps(
                                [res.parsed[c] for _, c in res.conditions()]).items()},
            "codec_facts": json.loads(codec_facts(res).to_json(orient="records")),
            "styles": {"conditions": {c: st.as_dict() for c, st in styles_for(c for _, c in res.conditions()).items()},
                       "models": {m: st.as_dict() for m, st in styles_for(res.models).items()}},
            "paper": paper_data(res, paper) if paper else None,
            "reference": next((sc.reference for sc in scores.values() if sc.reference), None),
            "remedies": _remedies(res),
            "provenance": {"libraries": meta.get("libraries", {}), "machine": meta.get("machine", {}),
                           "precision": meta.get("precision"), "thresholds": meta.get("thresholds"),
                           "baseline": meta.get("baseline")}}


def _remedies(res: ResultTable) -> dict | None:
    """The remedies compared (:mod:`.remedies`), pairwise with Wilson intervals, or None with fewer than two."""
    pairs, per_condition = remedies.compare_remedies(res)
    if not pairs:
        return None
    rows = []
    for r in pairs:
        a = _interval(round(r["accuracy_a"] * r["pairs"]), r["pairs"])
        b = _interval(round(r["accuracy_b"] * r["pairs"]), r["pairs"])
        rows.append({**{k: r[k] for k in ("remedy_a", "model_a", "remedy_b", "model_b", "pairs", "a_only", "b_only")},
                     "a": a, "b": b, "p": _finite(r["p_value"])})
    return {"pairs": rows, "per_condition": per_condition}


def _asset(name: str) -> str:
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


#: Characters that mean something to the HTML parser inside a <script> element, as JSON string escapes.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def write_page(folder: Path, title: str, groups: list[dict], *, csv_files: Sequence[Path] = (), alpha: float = ALPHA,
               screenshot_note: str = "") -> Path:
    """Write ``folder/index.html`` (everything inlined) and copy ``csv_files`` into ``folder/csv/``."""
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    if csv_files:
        (folder / "csv").mkdir(exist_ok=True)
        for path in csv_files:
            shutil.copyfile(path, folder / "csv" / Path(path).name)
            links.append(f"csv/{Path(path).name}")
    data = {"title": title, "alpha": alpha, "groups": groups, "csv": links, "note": screenshot_note}
    # the data sits in a JSON script element: <, > and & are written as JSON escapes, so no value (a dataset folder
    # named "<!--<script>", a class name with "</script>") can close the element or open a comment in it
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).translate(_SCRIPT_SAFE)
    parts = {"title": html.escape(title, quote=False), "style": _asset("report.css"), "data": payload,
             "script": _asset("report.js")}
    # one pass: a value that happens to contain "{{...}}" is never substituted again
    page = re.sub(r"\{\{(title|style|data|script)\}\}", lambda m: parts[m[1]], _asset("report.html"))
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def render_html(res: ResultTable, folder: Path, *, csv_files: Sequence[Path] = (), sweep_rows=None,
                alpha: float = ALPHA, paper: str | None = None, diagnoses: Sequence = (),
                reference: str | None = REFERENCE) -> Path:
    """The HTML report of one results document (with the comparison against ``paper``'s numbers, if named, and the
    ``(Diagnosis, figure path or None)`` pairs of ``codecbench diagnose``, their figures inlined)."""
    dataset = res.meta.get("dataset", {})
    title = f"codecbench report: {dataset.get('name', '?')} ({dataset.get('split', '?')} split)"
    group = group_data(res, sweep_rows=sweep_rows, paper=paper, reference=reference)
    group["diagnoses"] = [{"model": d.model, "condition": d.condition, "verdict": d.verdict,
                           "figure": "data:image/png;base64," + base64.b64encode(figure.read_bytes()).decode()
                           if figure is not None else None} for d, figure in diagnoses]
    return write_page(folder, title, [group], csv_files=csv_files, alpha=alpha)


def render_leaderboard(documents: list[dict], folder: Path, *, alpha: float = ALPHA) -> Path:
    """One page for many results documents: a section per (dataset, matrix), newest result per cell."""
    groups = [group_data(ResultTable(doc)) for doc in documents if doc["results"]]
    names = sorted({g["dataset"]["name"] or "?" for g in groups})
    return write_page(folder, f"codecbench leaderboard: {len(groups)} dataset/matrix groups ({', '.join(names)})",
                      groups, alpha=alpha)
