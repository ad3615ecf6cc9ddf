"""``codecbench report``: the paper's tables and Figure 2 from a results folder.

Renders Table 2 (conditions by category x base and full fine-tuning by epoch), the segments
table (base, full, segments 1-10, with per-category means), the significance of each model
against the base model (exact McNemar on paired predictions), codec facts (achieved bit rate,
surviving bandwidth) and Figure 2 (accuracy change per fine-tuned segment, one line per
condition, full fine-tuning dashed) as Markdown, CSV, PNG and SVG; bit-rate sweeps get their own figure and
table (:mod:`codecbench.sweeps`). Missing cells are shown as gaps, never filled in.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from . import sweeps
from .results import ResultsError, compare_datasets, latest_document, load_results, restrict_record
from .stats import paired_comparison, wilson_interval
from .zoo import full_name, model_kind, sort_key

GAP = "—"
OLDER = "†"
FORMATS = ("md", "csv", "png", "svg")


class Results:
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

    def get(self, model: str, condition: str) -> dict | None:
        return self.cells.get((model, condition))

    def conditions(self) -> list[tuple[str, str]]:
        return [(cat, c) for cat, conds in self.categories.items() for c in conds]


def _acc(cell: dict | None) -> float:
    return float(cell["accuracy"]) if cell else math.nan


def _subset_accuracy(cell: dict | None, clips: frozenset | None) -> float:
    """A cell's accuracy on ``clips`` only (None: as recorded)."""
    if not cell or clips is None:
        return _acc(cell)
    kept = restrict_record(cell, clips)
    return float(np.mean(np.array(kept["predictions"]) == np.array(kept["labels"]))) if kept["clips"] else math.nan


def _fmt(cell: dict | None, best: bool = False, ci: bool = True, run_id: str | None = None) -> str:
    if not cell:
        return GAP
    low, high = wilson_interval(int(cell["correct"]), int(cell["n"]))
    text = f"{cell['accuracy']:.3f}" + (f" ±{(high - low) / 2:.3f}" if ci else "")
    older = OLDER if run_id and cell.get("run_id", run_id) != run_id else ""
    return (f"**{text}**" if best else text) + older


def full_epoch_models(res: Results) -> list[tuple[str, str]]:
    """(column label, model) for base (epoch 0) and finetuned_full@eN by epoch."""
    cols = [("base (e0)", "base")] if "base" in res.models else []
    cols += [(f"full e{model_kind(m)[1]}", m) for m in res.models if model_kind(m)[0] == "full"]
    return cols


def segment_models(res: Results) -> list[tuple[str, str]]:
    cols = [("base", "base")] if "base" in res.models else []
    if full_name(10) in res.models:
        cols.append(("full", full_name(10)))
    cols += [(f"seg{model_kind(m)[1]}", m) for m in res.models if model_kind(m)[0] == "segment"]
    return cols


def accuracy_table(res: Results, columns: list[tuple[str, str]], category_means: bool = False) -> pd.DataFrame:
    """Long-to-wide: one row per (category, condition), one accuracy column per model (NaN = gap)."""
    rows = []
    for cat, cond in res.conditions():
        rows.append({"category": cat, "condition": cond, **{label: _acc(res.get(m, cond)) for label, m in columns}})
    frame = pd.DataFrame(rows, columns=["category", "condition"] + [label for label, _ in columns])
    if category_means and not frame.empty:
        means = frame.groupby("category", sort=False)[[label for label, _ in columns]].mean(numeric_only=True)
        for cat, values in means.iterrows():
            frame.loc[len(frame)] = {"category": cat, "condition": f"mean {cat}", **values.to_dict()}
    return frame


def markdown_table(res: Results, columns: list[tuple[str, str]], category_means: bool = False) -> str:
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
                cells.append(_fmt(res.get(model, row["condition"]), is_best, run_id=res.meta.get("run_id")))
        out.append([row["category"], row["condition"], *cells])
    return tabulate(out, headers=["cat", "condition", *labels], tablefmt="github", disable_numparse=True)


def significance_rows(res: Results, reference: str = "base") -> list[dict]:
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


def significance_markdown(rows: list[dict], res: Results, alpha: float = 0.05) -> str:
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


def codec_facts(res: Results, threshold_db: float = 30.0, seconds: float = 5.0) -> pd.DataFrame:
    """Per condition: achieved bit rate (from the results) and the bandwidth that survives the codec.

    Bandwidth is the highest frequency (1/3-octave bands) at which a round trip of pink noise keeps
    its band energy within ``threshold_db`` dB of the original.
    """
    from . import codecs

    sr = 44100
    rng = np.random.default_rng(0)
    spec = np.fft.rfft(rng.standard_normal(int(seconds * sr)))
    freqs = np.fft.rfftfreq(int(seconds * sr), 1 / sr)
    noise = np.fft.irfft(spec / np.sqrt(np.maximum(freqs, 20.0)), int(seconds * sr))
    noise = (0.1 * noise / np.std(noise)).astype(np.float32)
    edges = 20.0 * 2 ** (np.arange(0, 31) / 3)
    edges = edges[edges < sr / 2]
    ref = np.abs(np.fft.rfft(noise)) ** 2
    rows = []
    for _, cond in res.conditions():
        kbps = [c["achieved_kbps"] for (m, c2), c in res.cells.items() if c2 == cond and c.get("achieved_kbps")]
        bandwidth = None
        ok, why = codecs.availability(cond)
        if ok:
            out = np.abs(np.fft.rfft(codecs.roundtrip(noise, sr, cond))) ** 2
            kept = [hi for lo, hi in zip(edges[:-1], edges[1:])
                    if 10 * np.log10((out[(freqs >= lo) & (freqs < hi)].sum() + 1e-20) /
                                     (ref[(freqs >= lo) & (freqs < hi)].sum() + 1e-20)) > -threshold_db]
            bandwidth = float(max(kept)) if kept else 0.0
        rows.append({"condition": cond, "achieved_kbps": float(np.mean(kbps)) if kbps else None,
                     "bandwidth_hz": bandwidth, "note": "" if ok else why.split(". ")[0]})
    return pd.DataFrame(rows, columns=["condition", "achieved_kbps", "bandwidth_hz", "note"])


def figure2(res: Results, out_base: Path, formats=("png", "svg")) -> list[Path]:
    """Accuracy change vs base per fine-tuned segment; full fine-tuning dashed in the same colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segs = [(model_kind(m)[1], m) for m in res.models if model_kind(m)[0] == "segment"]
    if "base" not in res.models or not segs:
        return []
    segs.sort()
    fig, ax = plt.subplots(figsize=(11, 5.2), dpi=120)
    colours = plt.get_cmap("tab10")
    offsets = np.linspace(-0.2, 0.2, max(1, len(res.conditions())))
    for i, ((cat, cond), dx) in enumerate(zip(res.conditions(), offsets)):
        base = res.get("base", cond)
        if not base:
            continue
        xs, ys, lo, hi = [], [], [], []
        for k, m in segs:
            cell = res.get(m, cond)
            if not cell:
                continue
            low, high = wilson_interval(int(cell["correct"]), int(cell["n"]))
            xs.append(k + dx)
            ys.append(cell["accuracy"] - base["accuracy"])
            lo.append(cell["accuracy"] - low)
            hi.append(high - cell["accuracy"])
        colour = colours(i % 10)
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=4, lw=1.5, capsize=2, color=colour,
                    label=f"{cond} ({cat})")
        full = res.get(full_name(10), cond)
        if full:
            ax.axhline(full["accuracy"] - base["accuracy"], color=colour, ls="--", lw=1, alpha=0.8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks([k for k, _ in segs])
    ax.set_xlabel("fine-tuned segment (1-9: convolution + BatchNorm, 10: channel attention)")
    ax.set_ylabel("accuracy change vs base model (absolute)")
    dataset = res.meta.get("dataset", {}).get("name", "?")
    ax.set_title(f"Segmental fine-tuning ({dataset}): solid = segment alone, dashed = full model (10 epochs)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="condition (category)",
              title_fontsize=8, frameon=False)
    return save_figure(fig, out_base, formats)


def save_figure(fig, out_base: Path, formats) -> list[Path]:
    """Write ``fig`` as ``out_base.<format>`` for each format, close it, and return the paths."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    paths = []
    for fmt in formats:
        path = out_base.with_suffix(f".{fmt}")
        fig.savefig(path)
        paths.append(path)
    plt.close(fig)
    return paths


def postfilter_rows(res: Results) -> list[dict]:
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
            mine = [_acc(res.get(model, c)) for c in conds]
            theirs = [_acc(res.get(parent, c)) for c in conds] if parent else []
            row[f"{cat}_mean"] = float(np.nanmean(mine)) if not all(map(math.isnan, mine)) else math.nan
            row[f"{cat}_parent_mean"] = float(np.nanmean(theirs)) if theirs and not all(map(math.isnan, theirs)) \
                else math.nan
        rows.append(row)
    return rows


def postfilter_markdown(rows: list[dict], res: Results) -> str:
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


def load_document(results: str | Path, run_id: str | None = None) -> dict:
    """What a report shows: a results.json as it is; a results folder through its history (the latest result of
    every model and condition for the newest run's dataset and matrix, or exactly ``run_id``)."""
    results = Path(results)
    history = results / "history.sqlite" if results.is_dir() else None
    if history is not None and history.is_file():
        return latest_document(history, run_id)
    if run_id is not None:
        raise ResultsError(f"{results}: --run needs the results history ({results / 'history.sqlite'})")
    return load_results(results)


def render(results: str | Path, out_dir: str | Path, formats=FORMATS, models: list[str] | None = None,
           baseline: str | Path | None = None, alpha: float = 0.05, run_id: str | None = None,
           baseline_max_changed: float = 0.02) -> tuple[str, list[Path]]:
    """Write the report files; return the Markdown and the paths written."""
    doc = load_document(results, run_id)
    if not doc["results"]:
        raise ResultsError(f"{results}: the results file holds no results yet; run `pytest benchmarks/` first")
    res = Results(doc, models)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    meta = res.meta
    sections = [f"# codecbench report: {meta.get('dataset', {}).get('name', '?')} "
                f"({meta.get('dataset', {}).get('split', '?')} split)",
                f"Run `{meta.get('run_id', '?')}` of {meta.get('started', '?')}, matrix "
                f"`{meta.get('matrix', {}).get('name', '?')}`, git `{(meta.get('git_commit') or '?')[:10]}`. "
                "Cells are accuracies ± half the 95 % Wilson interval; the best of each row is bold; "
                f"`{GAP}` marks a model not evaluated on that condition."]
    older = [r for r in meta.get("composed_from", []) if r != meta.get("run_id")]
    if older:
        sections[-1] += (f" Cells marked `{OLDER}` come from earlier runs on the same dataset and matrix "
                         f"({', '.join(f'`{r}`' for r in older)}): the latest result of each model and condition.")
    full_cols = full_epoch_models(res)
    seg_cols = segment_models(res)
    if full_cols:
        sections += ["## Table 2: full fine-tuning by epoch", markdown_table(res, full_cols)]
    if len(seg_cols) > 1:
        sections += ["## Segmental fine-tuning (Experiment B)", markdown_table(res, seg_cols, category_means=True)]
    other = [(m, m) for m in res.models if m not in {m for _, m in full_cols + seg_cols}]
    if other:
        sections += ["## Other models", markdown_table(res, [("base", "base")] * ("base" in res.models) + other)]
    pf_rows = postfilter_rows(res)
    if pf_rows:
        sections += ["## Post-filter models (coded features enhanced, classifier unchanged) and their cost",
                     "Parameters and the inference time added per clip (measured when the post-filter was trained, "
                     "on that machine) come from the model's sidecar; accuracies are per-category means, the "
                     "parent's in brackets.", postfilter_markdown(pf_rows, res)]
    sig = significance_rows(res)
    sections += ["## Change vs base model (exact McNemar on paired clips; * p < %.2g)" % alpha,
                 significance_markdown(sig, res, alpha)]
    skipped = [(m, c, len(r.get("skipped") or [])) for (m, c), r in sorted(res.cells.items()) if r.get("skipped")]
    if skipped:
        sections += ["## Clips left out (--on-error skip)",
                     "These results do not cover the whole split: the clips below could not be coded.",
                     tabulate([[m, c, k, res.get(m, c)["n"]] for m, c, k in skipped],
                              headers=["model", "condition", "clips left out", "clips scored"], tablefmt="github")]
    facts = codec_facts(res)
    sections += ["## Codec facts (bandwidth: highest 1/3-octave band within 30 dB of the original, pink noise)",
                 tabulate([[r.condition, GAP if pd.isna(r.achieved_kbps) else f"{r.achieved_kbps:.1f}",
                            GAP if pd.isna(r.bandwidth_hz) else f"{r.bandwidth_hz / 1000:.1f} kHz", r.note]
                           for r in facts.itertuples()], headers=["condition", "achieved kbps", "bandwidth", "note"],
                          tablefmt="github", disable_numparse=True)]
    long = pd.DataFrame([{"model": m, "condition": c, "category": next((k for k, v in res.categories.items()
                                                                        if c in v), None),
                          "n": r["n"], "accuracy": r["accuracy"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                          "achieved_kbps": r.get("achieved_kbps")} for (m, c), r in sorted(res.cells.items())])
    if baseline:
        base_doc = load_results(baseline)
        match = compare_datasets(base_doc.get("meta", {}), meta, max_changed=baseline_max_changed)
        if not match.comparable:
            raise ResultsError(f"--baseline {baseline}: cannot be compared with run {meta.get('run_id')}: "
                               f"{match.reason}")
        base = Results(base_doc)
        # on partly changed data both sides are scored on the clips whose content is equal
        long["baseline_accuracy"] = [_subset_accuracy(base.get(m, c), match.clips)
                                     for m, c in zip(long["model"], long["condition"])]
        if match.clips is not None:
            long["accuracy"] = [_subset_accuracy(res.get(m, c), match.clips)
                                for m, c in zip(long["model"], long["condition"])]
        long["delta"] = long["accuracy"] - long["baseline_accuracy"]
        sections += ["## Against the baseline run",
                     f"Data: {match.reason}.",
                     tabulate([[m, c, f"{a:.3f}", GAP if np.isnan(b) else f"{b:.3f}",
                                GAP if np.isnan(d) else f"{d:+.3f}"]
                               for m, c, a, b, d in long[["model", "condition", "accuracy", "baseline_accuracy",
                                                          "delta"]].itertuples(index=False)],
                              headers=["model", "condition", "accuracy", "baseline", "delta"], tablefmt="github",
                              disable_numparse=True)]
    figure_paths = figure2(res, out / "figure2", [f for f in formats if f in ("png", "svg")])
    if figure_paths:
        sections += ["## Figure 2: accuracy change per fine-tuned segment", "![Figure 2](figure2.png)"]
    written += figure_paths
    sweep_rows = sweeps.summarise(res)
    if sweep_rows:
        sweep_paths = sweeps.figure(res, out / "sweeps", [f for f in formats if f in ("png", "svg")])
        sections += ["## Accuracy against bit rate",
                     "Retained accuracy: accuracy under the codec / accuracy on the original, averaged over the "
                     "swept rates. Break-even: the lowest rate from which on accuracy stays within "
                     f"{sweeps.BREAK_EVEN_MARGIN} of the original's. Intervals: paired bootstrap over clips.",
                     sweeps.markdown(sweep_rows)]
        if sweep_paths:
            sections.append("![Accuracy against bit rate](sweeps.png)")
        written += sweep_paths
    markdown = "\n\n".join(sections) + "\n"
    if "md" in formats:
        (out / "report.md").write_text(markdown)
        written.append(out / "report.md")
    if "csv" in formats:
        for name, frame in (("table2", accuracy_table(res, full_cols)),
                            ("segments", accuracy_table(res, seg_cols, category_means=True)),
                            ("significance", pd.DataFrame(sig)), ("codec_facts", facts), ("accuracy_long", long),
                            *((("sweeps", pd.DataFrame(sweep_rows)),) if sweep_rows else ()),
                            *((("postfilter", pd.DataFrame(pf_rows)),) if pf_rows else ())):
            # six significant digits: accuracies keep theirs, small p-values keep their magnitude (1.26e-29)
            frame.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
            written.append(out / f"{name}.csv")
    return markdown, written
