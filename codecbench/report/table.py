"""The results of a run as a table of (model, condition) cells, and the report's tables built from it.

:class:`ResultTable` is how a report reads a results document: the edge where stored condition
names become :class:`~codecbench.codecs.Condition` objects again. The tables (Table 2, segments,
significance against a reference, post-filter costs) are data frames or Markdown.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tabulate import tabulate

from codecbench.codecs import Condition, parse_condition
from codecbench.results.files import ResultsError, restrict_record
from codecbench.results.stats import paired_comparison, wilson_interval
from codecbench.zoo import full_name, model_kind, sort_key

GAP = "—"
OLDER = "†"


class ResultTable:
    """A results document indexed by (model, condition)."""

    def __init__(self, doc: dict, models: list[str] | None = None):
        self.meta = doc.get("meta", {})
        rows = doc["results"]
        if models:
            unknown = sorted(set(models) - {r["model"] for r in rows})
            if unknown:
                raise ResultsError(f"models {', '.join(unknown)} are not in these results; they hold "
                                   f"{', '.join(sorted({r['model'] for r in rows}, key=sort_key))}")
            rows = [r for r in rows if r["model"] in models]
        self.cells = {(r["model"], r["condition"]): r for r in rows}
        self.models = sorted({r["model"] for r in rows}, key=sort_key)
        matrix = self.meta.get("matrix", {}).get("fingerprint", {}).get("categories", {})
        seen = [c for cat in matrix.values() for c in cat]
        self.categories: dict[str, list[str]] = {cat: [c for c in conds if any(k[1] == c for k in self.cells)]
                                                 for cat, conds in matrix.items()}
        extra = sorted({k[1] for k in self.cells} - set(seen))
        if extra:
            self.categories["other"] = extra
        self.categories = {k: v for k, v in self.categories.items() if v}
        # stored names become conditions once, here; everything downstream asks this table
        self.parsed: dict[str, Condition] = {c: parse_condition(c) for c in {k[1] for k in self.cells}}

    def get(self, model: str, condition: str) -> dict | None:
        return self.cells.get((model, condition))

    def conditions(self) -> list[tuple[str, str]]:
        return [(cat, c) for cat, conds in self.categories.items() for c in conds]


#: what formats or links in Markdown (parentheses only matter after a bracket, which is escaped)
_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]{}<>#|!~"})


def markdown_text(text) -> str:
    """``text`` from a run or a user (a dataset's or model's name) as literal Markdown: its special characters are
    escaped and line breaks become spaces, so it can neither format nor inject markup."""
    return " ".join(str(text).split()).translate(_MARKDOWN_SPECIAL)


#: A CSV cell starting with one of these is a formula to a spreadsheet (CSV injection): such text gets a leading '.
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value):
    """A string cell of a report's CSV as literal text (a spreadsheet would run ``=HYPERLINK(...)``); other values
    as they are."""
    if isinstance(value, str) and value.startswith(_CSV_FORMULA):
        return "'" + value
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell made literal for a spreadsheet (:func:`csv_text`)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(csv_text)
    return out


def accuracy_of(cell: dict | None) -> float:
    return float(cell["accuracy"]) if cell else math.nan


def subset_accuracy(cell: dict | None, clips: frozenset | None) -> float:
    """A cell's accuracy on ``clips`` only (None: as recorded)."""
    if not cell or clips is None:
        return accuracy_of(cell)
    kept = restrict_record(cell, clips)
    return float(np.mean(np.array(kept["predictions"]) == np.array(kept["labels"]))) if kept["clips"] else math.nan


def format_cell(cell: dict | None, best: bool = False, ci: bool = True, run_id: str | None = None) -> str:
    if not cell:
        return GAP
    low, high = wilson_interval(int(cell["correct"]), int(cell["n"]))
    # the Wilson interval is asymmetric near 0 and 1: both ends, never half its width
    text = f"{cell['accuracy']:.3f}" + (f" [{low:.3f}, {high:.3f}]" if ci else "")
    older = OLDER if run_id and cell.get("run_id", run_id) != run_id else ""
    return (f"**{text}**" if best else text) + older


def full_epoch_models(res: ResultTable) -> list[tuple[str, str]]:
    """(column label, model) for base (epoch 0) and finetuned_full@eN by epoch."""
    cols = [("base (e0)", "base")] if "base" in res.models else []
    cols += [(f"full e{model_kind(m)[1]}", m) for m in res.models if model_kind(m)[0] == "full"]
    return cols


def segment_models(res: ResultTable) -> list[tuple[str, str]]:
    cols = [("base", "base")] if "base" in res.models else []
    if full_name(10) in res.models:
        cols.append(("full", full_name(10)))
    cols += [(f"seg{model_kind(m)[1]}", m) for m in res.models if model_kind(m)[0] == "segment"]
    return cols


def accuracy_table(res: ResultTable, columns: list[tuple[str, str]], category_means: bool = False) -> pd.DataFrame:
    """Long-to-wide: one row per (category, condition), one accuracy column per model (NaN = gap)."""
    rows = []
    for cat, cond in res.conditions():
        rows.append({"category": cat, "condition": cond,
                     **{label: accuracy_of(res.get(m, cond)) for label, m in columns}})
    frame = pd.DataFrame(rows, columns=["category", "condition"] + [label for label, _ in columns])
    if category_means and not frame.empty:
        means = frame.groupby("category", sort=False)[[label for label, _ in columns]].mean(numeric_only=True)
        for cat, values in means.iterrows():
            frame.loc[len(frame)] = {"category": cat, "condition": f"mean {cat}", **values.to_dict()}
    return frame


def markdown_table(res: ResultTable, columns: list[tuple[str, str]], category_means: bool = False) -> str:
    frame = accuracy_table(res, columns, category_means)
    labels = [label for label, _ in columns]
    out = []
    for _, row in frame.iterrows():
        values = np.array([row[label] for label in labels], dtype=float)
        best = np.nanmax(values) if np.isfinite(values).sum() > 1 else None  # one value: nothing to stand out
        cells = []
        for (label, model), value in zip(columns, values):
            is_best = best is not None and np.isfinite(value) and value == best
            if str(row["condition"]).startswith("mean "):
                cells.append(GAP if not np.isfinite(value) else (f"**{value:.3f}**" if is_best else f"{value:.3f}"))
            else:
                cells.append(format_cell(res.get(model, row["condition"]), is_best, run_id=res.meta.get("run_id")))
        out.append([row["category"], row["condition"], *cells])
    return tabulate(out, headers=["cat", "condition", *labels], tablefmt="github", disable_numparse=True)


def significance_rows(res: ResultTable, reference: str = "base") -> list[dict]:
    """Each model against ``reference`` per condition: accuracy change and exact McNemar p on shared clips."""
    rows = []
    for model in res.models:
        if model == reference:
            continue
        for cat, cond in res.conditions():
            a, b = res.get(reference, cond), res.get(model, cond)
            if not a or not b:
                continue
            paired = paired_comparison(a, b)
            rows.append({"model": model, "category": cat, "condition": cond, "delta": paired["delta"],
                         "p_value": paired["p_value"], "n": paired["n"]})
    return rows


def significance_markdown(rows: list[dict], res: ResultTable, alpha: float = 0.05) -> str:
    if not rows:
        return "(no model to compare with the base model)"
    models = sorted({r["model"] for r in rows}, key=sort_key)
    cell = {(r["model"], r["condition"]): r for r in rows}
    table = []
    for cat, cond in res.conditions():
        line = [cat, cond]
        for m in models:
            r = cell.get((m, cond))
            line.append(GAP if not r else f"{r['delta']:+.3f}{'*' if r['p_value'] < alpha else ''} "
                                          f"(p={r['p_value']:.2g})")
        table.append(line)
    return tabulate(table, headers=["cat", "condition", *models], tablefmt="github", disable_numparse=True)


def postfilter_rows(res: ResultTable) -> list[dict]:
    """Post-filter models next to their parent: cost (parameters, added inference time) and per-category mean
    accuracy of both."""
    facts = res.meta.get("model_facts", {})
    rows = []
    for model in res.models:
        pf = (facts.get(model) or {}).get("postfilter")
        if not pf:
            continue
        parent = facts[model].get("parent")
        row = {"model": model, "parent": parent, "postfilter_params": pf.get("params"),
               "classifier_params": pf.get("classifier_params"), "added_ms_per_clip": pf.get("added_ms_per_clip")}
        for cat, conds in res.categories.items():
            mine = [accuracy_of(res.get(model, c)) for c in conds]
            theirs = [accuracy_of(res.get(parent, c)) for c in conds] if parent else []
            row[f"{cat}_mean"] = float(np.nanmean(mine)) if not all(map(math.isnan, mine)) else math.nan
            row[f"{cat}_parent_mean"] = float(np.nanmean(theirs)) if theirs and not all(map(math.isnan, theirs)) \
                else math.nan
        rows.append(row)
    return rows


def postfilter_markdown(rows: list[dict], res: ResultTable) -> str:
    headers = ["model", "parent", "post-filter parameters", "added inference time"] + \
        [f"{cat} mean (parent)" for cat in res.categories]
    table = []
    for r in rows:
        size = f"{r['postfilter_params']:,}"
        if r["classifier_params"]:
            size += (f" (+{r['postfilter_params'] / r['classifier_params']:.0%} of the classifier's "
                     f"{r['classifier_params']:,})")
        cells = [r["model"], r["parent"] or GAP, size,
                 f"{r['added_ms_per_clip']:.2f} ms per clip"]
        for cat in res.categories:
            mine, theirs = r[f"{cat}_mean"], r[f"{cat}_parent_mean"]
            cells.append(GAP if math.isnan(mine) else
                         f"{mine:.3f} ({GAP if math.isnan(theirs) else f'{theirs:.3f}'})")
        table.append(cells)
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
