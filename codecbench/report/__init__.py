"""``codecbench report``: the paper's tables and figures from a results folder.

Renders the ranking by the headline robustness score (:mod:`.ranking`), the ranking metrics per cell,
Table 2 (conditions by category x base and full fine-tuning by epoch), the segments
table (base, full, segments 1-10, with per-category means), the significance of each model
against the base model (exact McNemar on paired predictions), codec facts (achieved bit rate and
surviving bandwidth, measured during the run on its own clips) and Figure 2 (accuracy change per
fine-tuned segment) as Markdown, CSV, PNG and SVG; bit-rate sweeps get their own figure and table
(:mod:`.sweeps`). Missing cells are shown as gaps, never filled in.

Modules: :mod:`.table` (the results as cells, and the tables), :mod:`.figures`, :mod:`.sweeps`,
:mod:`.codec_facts`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from codecbench.report import remedies, sweeps
from codecbench.report.codec_facts import codec_facts, facts_markdown
from codecbench.report.figures import figure2
from codecbench.report.ranking import gate_sections, metric_sections, ranking_sections
from codecbench.report.table import (
    GAP,
    OLDER,
    ResultTable,
    accuracy_table,
    csv_frame,
    full_epoch_models,
    markdown_table,
    markdown_text,
    postfilter_markdown,
    postfilter_rows,
    segment_models,
    significance_markdown,
    significance_rows,
    subset_accuracy,
)
from codecbench.results.diagnoses import Diagnosis, read_diagnoses, safe_name
from codecbench.results.files import ResultsError, compare_datasets, latest_document, load_results
from codecbench.results.ranking import REFERENCE
from codecbench.results.rows import METRIC_COLUMNS
from codecbench.zoo import model_kind

FORMATS = ("md", "csv", "png", "svg", "html")


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


def render(results: str | Path, out_dir: str | Path, formats=FORMATS, *, models: list[str] | None = None,
           baseline: str | Path | None = None, alpha: float = 0.05, run_id: str | None = None,
           baseline_max_changed: float = 0.02, paper: str | None = None,
           reference: str | None = REFERENCE) -> tuple[str, list[Path]]:
    """Write the report of a results folder or file.

    Parameters
    ----------
    results : path
        A results folder (read through its history: the latest result of every model and condition) or a
        ``results.json``.
    out_dir : path
        Where the files go (created if needed).
    formats : sequence of str
        Some of ``md``, ``csv``, ``png``, ``svg``, ``html``.
    models : list of str, optional
        Only these models (default: every model in the results).
    baseline : path, optional
        A results file to compare against, clip by clip, on the clips whose content is unchanged.
    alpha : float
        Significance level of the paired tests.
    run_id : str, optional
        Exactly this run of the history.
    baseline_max_changed : float
        The largest share of changed clips a baseline may have and still be compared.
    reference : str, optional
        The model the relative coding error is measured against (default ``base``; :mod:`codecbench.results.ranking`).
    paper : str, optional
        Compare with this paper's published numbers (:mod:`.paper`; default: the paper a ``reproduce`` run names
        in its metadata, if any).

    Returns
    -------
    (str, list of Path)
        The Markdown report and every file written.
    """
    doc = load_document(results, run_id)
    if not doc["results"]:
        raise ResultsError(f"{results}: the results file holds no results yet; run `pytest benchmarks/` first")
    res = ResultTable(doc, models)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    meta = res.meta
    text = markdown_text  # every string from the results file is literal text in the Markdown
    sections = [f"# codecbench report: {text(meta.get('dataset', {}).get('name', '?'))} "
                f"({text(meta.get('dataset', {}).get('split', '?'))} split)",
                f"Run {text(meta.get('run_id', '?'))} of {text(meta.get('started', '?'))}, matrix "
                f"{text(meta.get('matrix', {}).get('name', '?'))}, git {text((meta.get('git_commit') or '?')[:10])}. "
                "Cells are accuracies [95 % Wilson interval]; the best of each row is bold; "
                f"`{GAP}` marks a model not evaluated on that condition."]
    older = [r for r in meta.get("composed_from", []) if r != meta.get("run_id")]
    if older:
        sections[-1] += (f" Cells marked `{OLDER}` come from earlier runs on the same dataset and matrix "
                         f"({', '.join(text(r) for r in older)}): the latest result of each model and condition.")
    sections += gate_sections(res)
    ranking_md, ranking_rows = ranking_sections(res, reference)
    sections += ranking_md
    full_cols = full_epoch_models(res)
    seg_cols = segment_models(res)
    paper = paper or meta.get("reproduces")
    paper_rows: list[dict] = []
    if paper:
        from codecbench.report.paper import load_paper, paper_sections

        paper_md, paper_rows = paper_sections(res, load_paper(paper))
        sections += paper_md
    if full_cols:
        sections += ["## Table 2: full fine-tuning by epoch", markdown_table(res, full_cols)]
    if any(model_kind(m)[0] == "segment" for _, m in seg_cols):  # else it would repeat Table 2
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
    sections += metric_sections(res)
    skipped = [(m, c, len(r.get("skipped") or [])) for (m, c), r in sorted(res.cells.items()) if r.get("skipped")]
    if skipped:
        sections += ["## Clips left out (--on-error skip)",
                     "These results do not cover the whole split: the clips below could not be coded.",
                     tabulate([[m, c, k, res.cells[(m, c)]["n"]] for m, c, k in skipped],
                              headers=["model", "condition", "clips left out", "clips scored"], tablefmt="github")]
    facts = codec_facts(res)
    if len(facts):
        sections += ["## Codec facts",
                     "Measured during the run on its own clips (8 spread over the split): the bandwidth kept is "
                     "where the coded clips, counting up in bands 1.5 % wide, first fall more than 30 dB below the "
                     "source's energy (its edge: 6 dB below the passband just under it, so a low-pass is found "
                     "within 2 %); the mel distance (80 bands, dB), SNR and SI-SDR compare the aligned decode with "
                     "its source, as codec benchmarks do, so the accuracy lost can be read beside how much the "
                     "signal changed; `—`: not measured (results of an older codecbench).",
                     facts_markdown(facts)]
    long = pd.DataFrame([{"model": m, "condition": c, "category": next((k for k, v in res.categories.items()
                                                                        if c in v), None),
                          "n": r["n"], "accuracy": r["accuracy"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                          **{k: r.get(k) for k in METRIC_COLUMNS},
                          "achieved_kbps": r.get("achieved_kbps")} for (m, c), r in sorted(res.cells.items())])
    if baseline:
        base_doc = load_results(baseline)
        match = compare_datasets(base_doc.get("meta", {}), meta, max_changed=baseline_max_changed)
        if not match.comparable:
            raise ResultsError(f"--baseline {baseline}: cannot be compared with run {meta.get('run_id')}: "
                               f"{match.reason}")
        base = ResultTable(base_doc)
        # on partly changed data both sides are scored on the clips whose content is equal
        long["baseline_accuracy"] = [subset_accuracy(base.get(m, c), match.clips)
                                     for m, c in zip(long["model"], long["condition"])]
        if match.clips is not None:
            long["accuracy"] = [subset_accuracy(res.get(m, c), match.clips)
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
    loss_sweeps = sweeps.find_loss_sweeps([res.parsed[c] for _, c in res.conditions()])
    if loss_sweeps:
        loss_paths = sweeps.figure(res, out / "losses", [f for f in formats if f in ("png", "svg")], loss=True)
        sections += ["## Accuracy against packet loss",
                     "Accuracy at each share of packets lost, with its 95 % Wilson interval; 0 %: the codec without "
                     "loss.", sweeps.loss_markdown(res, loss_sweeps)]
        if loss_paths:
            sections.append("![Accuracy against packet loss](losses.png)")
        written += loss_paths
    remedy_pairs, remedy_conditions = remedies.compare_remedies(res)
    if remedy_pairs:
        sections += ["## The remedies compared",
                     "Each remedy by one model ("
                     + ", ".join(f"{remedy}: {markdown_text(model)}"
                                 for remedy, model in remedies.representatives(res.models).items())
                     + "), compared pairwise over every coded condition both ran, paired by clip and condition "
                       "(exact McNemar); consistency fine-tuning joins when the results hold a "
                       "`finetuned_consistency` model (docs/remedies.md).",
                     remedies.markdown(remedy_pairs, remedy_conditions, alpha)]
    diagnosis_md, diagnosis_paths, diagnosed = _diagnoses(Path(results), out)
    sections += diagnosis_md
    written += diagnosis_paths
    markdown = "\n\n".join(sections) + "\n"
    if "md" in formats:
        (out / "report.md").write_text(markdown)
        written.append(out / "report.md")
    if "csv" in formats:
        for name, frame in (*((("ranking", pd.DataFrame(ranking_rows)),) if ranking_rows else ()),
                            ("table2", accuracy_table(res, full_cols)),
                            ("segments", accuracy_table(res, seg_cols, category_means=True)),
                            ("significance", pd.DataFrame(sig)), ("codec_facts", facts), ("accuracy_long", long),
                            *((("sweeps", pd.DataFrame(sweep_rows)),) if sweep_rows else ()),
                            *((("paper_vs_run", pd.DataFrame(paper_rows)),) if paper_rows else ()),
                            *((("postfilter", pd.DataFrame(pf_rows)),) if pf_rows else ()),
                            *((("remedies", pd.DataFrame(remedy_pairs)),) if remedy_pairs else ())):
            # six significant digits: accuracies keep theirs, small p-values keep their magnitude (1.26e-29)
            csv_frame(frame).to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
            written.append(out / f"{name}.csv")
    if "html" in formats:
        from codecbench.report.html import render_html

        csv_files = [p for p in written if p.suffix == ".csv"]
        written.append(render_html(res, out / "html", csv_files=csv_files, sweep_rows=sweep_rows, alpha=alpha,
                                   paper=paper, diagnoses=diagnosed, reference=reference))
    _remove_stale(out, written, formats)
    return markdown, written


#: What ``render`` writes into its folder, by name: a file of these names that this render did not write is left
#: from an earlier report (another matrix, a model since dropped) and would be read as this run's.
REPORT_FILES = ("report.md", "figure2.png", "figure2.svg", "sweeps.png", "sweeps.svg", "losses.png", "losses.svg",
                *(f"{name}.csv" for name in ("ranking", "table2", "segments", "significance", "codec_facts",
                                             "accuracy_long", "sweeps", "paper_vs_run", "postfilter", "remedies")))


def _remove_stale(out: Path, written: list[Path], formats) -> list[Path]:
    """Remove the report files in ``out`` of the formats rendered now that this render did not write (never other
    files, never diagnoses: ``codecbench diagnose`` writes those into the results folder, which may be ``out``)."""
    kept = {p.resolve() for p in written}
    stale = [out / name for name in REPORT_FILES if (out / name).suffix.lstrip(".") in formats
             and (out / name).is_file() and (out / name).resolve() not in kept]
    for path in stale:
        path.unlink()
    csv_folder = out / "html" / "csv"
    if (out / "html" / "index.html").resolve() in kept and csv_folder.is_dir():
        shown = {p.name for p in written if p.suffix == ".csv"}
        for path in csv_folder.glob("*.csv"):
            if path.name not in shown:
                path.unlink()
                stale.append(path)
    return stale


def _diagnoses(results: Path, out: Path) -> tuple[list[str], list[Path], list[tuple[Diagnosis, Path | None]]]:
    """The section of the diagnoses ``codecbench diagnose`` wrote into the results folder, their figures copied
    next to the report, and each diagnosis with its figure (for the HTML page)."""
    folder = results if results.is_dir() else results.parent
    found = read_diagnoses(folder)
    if not found:
        return [], [], []
    sections = ["## Why models fail: diagnoses",
                "Per band of the model's log-mel: the change the codec makes (coded - uncoded, dB, mean ± spread "
                "over clips), the change of the model's input after its front-end's normalisation, and the "
                "accuracy lost when that band alone is coded (renormalised as the front-end does, and with the "
                "clip's scale kept). Written by `codecbench diagnose`."]
    written: list[Path] = []
    diagnosed: list[tuple[Diagnosis, Path | None]] = []
    for diagnosis in found:
        stem = f"diagnosis-{safe_name(diagnosis.model)}-{safe_name(diagnosis.condition)}"
        figure = folder / f"{stem}.png"
        diagnosed.append((diagnosis, figure if figure.is_file() else None))
        sections.append(f"### {markdown_text(diagnosis.model)} under {markdown_text(diagnosis.condition)}\n\n"
                        + diagnosis.markdown())
        if figure.is_file():
            if folder.resolve() != out.resolve():
                shutil.copyfile(figure, out / figure.name)
            sections.append(f"![diagnosis of {markdown_text(diagnosis.model)}]({figure.name})")
            written.append(out / figure.name)
    return sections, written, diagnosed
