"""The report's ranking: every model by its headline robustness score (:mod:`codecbench.results.ranking`), and the
ranking metrics of each cell (log-loss, class-wise accuracy, calibration, Brier; :mod:`codecbench.results.metrics`)
as a model x condition table."""
from __future__ import annotations

from tabulate import tabulate

from codecbench.report.table import GAP, ResultTable, markdown_text
from codecbench.results.judge import gate_summary
from codecbench.results.metrics import METRICS
from codecbench.results.ranking import REFERENCE, ModelScore, rank_models

EXPLANATION = (
    "Ranked by **coded accuracy**: the accuracy pooled over every coded condition of the run (each (clip, condition) "
    "pair counts once), higher is better. **Relative coding error**: per codec family (a codec, chain or loss model "
    "over its rates), the model's errors divided by {reference}'s, averaged over families, x 100; 100 is as robust "
    "as {reference}, lower is better. **Retained**: coded / uncoded accuracy. **Coded log-loss**: DCASE's log-loss "
    "pooled over the coded conditions, lower is better. Intervals: 95 % bootstrap over clips (each drawn clip "
    "brings all its conditions), the same resamples for every model. Models without every coded condition are "
    "ranked last and marked `incomplete`.")


def ranking(res: ResultTable, reference: str | None = REFERENCE) -> list[ModelScore]:
    """The models of ``res`` ranked by the headline score."""
    return rank_models(res.cells, reference=reference)


def _value(value, low=None, high=None, digits: int = 3) -> str:
    if value is None:
        return GAP
    text = f"{value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def ranking_markdown(scores: list[ModelScore]) -> str:
    """The ranking as a Markdown table."""
    rows = []
    for s in scores:
        worst = GAP if s.worst_condition is None else f"{markdown_text(s.worst_condition)} {s.worst_accuracy:.3f}"
        rows.append([s.rank, markdown_text(s.model) + ("" if s.complete else " (incomplete)"),
                     _value(s.uncoded_accuracy),
                     _value(s.coded_accuracy, s.coded_accuracy_low, s.coded_accuracy_high),
                     _value(s.relative_coding_error, s.relative_coding_error_low, s.relative_coding_error_high, 1),
                     _value(s.retained_accuracy, s.retained_accuracy_low, s.retained_accuracy_high),
                     _value(s.coded_log_loss, s.coded_log_loss_low, s.coded_log_loss_high), worst])
    reference = next((s.reference for s in scores if s.reference), None)
    return tabulate(rows, headers=["rank", "model", "uncoded", "coded accuracy",
                                   f"relative coding error (vs {reference or '—'})", "retained", "coded log-loss",
                                   "worst condition"], tablefmt="github", disable_numparse=True)


def ranking_sections(res: ResultTable, reference: str | None = REFERENCE) -> tuple[list[str], list[dict]]:
    """The ranking section of the Markdown report and its rows (for ``ranking.csv``)."""
    scores = ranking(res, reference)
    if not scores:
        return [], []
    shown = next((s.reference for s in scores if s.reference), None) or "the reference model (absent here)"
    return (["## Ranking: robustness to coding", EXPLANATION.format(reference=markdown_text(shown)),
             ranking_markdown(scores)], [s.as_row() for s in scores])


def metric_markdown(res: ResultTable, name: str) -> str | None:
    """A model x condition table of one ranking metric with its intervals; None when no cell has it."""
    conditions = [c for _, c in res.conditions()]
    if not any((res.get(m, c) or {}).get(name) is not None for m in res.models for c in conditions):
        return None
    rows = [[markdown_text(m)] + [_value((cell := res.get(m, c) or {}).get(name), cell.get(f"{name}_low"),
                                         cell.get(f"{name}_high")) for c in conditions] for m in res.models]
    return tabulate(rows, headers=["model", *(markdown_text(c) for c in conditions)], tablefmt="github",
                    disable_numparse=True)


def metric_sections(res: ResultTable) -> list[str]:
    """One table per ranking metric beyond accuracy (log-loss first: DCASE's ranking metric)."""
    sections = []
    for name in ("log_loss", "macro_accuracy", "ece", "brier"):
        table = metric_markdown(res, name)
        if table is None:
            continue
        m = METRICS[name]
        sections += [f"### {m.label} per condition ({'higher' if m.higher_is_better else 'lower'} is better)", table]
    if sections:
        sections.insert(0, "## Metrics per condition\n\nPer cell, with 95 % bootstrap intervals over clips: DCASE's "
                           "multi-class log-loss (probabilities clipped at 1e-15), class-wise average accuracy, the "
                           "expected calibration error (15 equal-width bins) and the multi-class Brier score. Cells "
                           f"of results written without probabilities show `{GAP}`.")
    return sections


def gate_sections(res: ResultTable) -> list[str]:
    """The regression gate of a run recorded with ``--baseline``: one line (cells compared, regressions, the worst)
    and the failing cells; nothing for a run without a baseline."""
    meta = res.meta
    if not meta.get("baseline"):
        return []
    metric = meta.get("baseline_metric") or "accuracy"
    rows = list(res.cells.values())
    line = gate_summary(rows, metric=metric, tolerance=meta.get("tolerance", 0.01), alpha=meta.get("alpha", 0.05))
    failed = [r for r in rows if r.get("outcome") == "failed"]
    sections = [f"## Regression gate against {markdown_text(meta['baseline'])}",
                (line or "No cell was compared with the baseline (no shared clips).") + "."]
    if failed:
        sections.append(tabulate(
            [[markdown_text(r["model"]), markdown_text(r["condition"]), _value(r.get("baseline_accuracy")),
              f"{r['accuracy']:.3f}", GAP if r.get("p_value") is None else f"{r['p_value']:.3g}"]
             for r in sorted(failed, key=lambda r: (r["model"], r["condition"]))],
            headers=["model", "condition", "baseline accuracy", "accuracy", "p"], tablefmt="github",
            disable_numparse=True))
    return sections


def comment_markdown(markdown: str, *, top: int = 10) -> str:
    """The report's short summary for a pull-request comment: its title and run line, the regression gate and the
    first ``top`` rows of the ranking."""
    lines = markdown.splitlines()
    out = lines[:3]
    for title in ("## Regression gate", "## Ranking"):
        start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
        if start is None:
            continue
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        section = lines[start:end]
        if title == "## Ranking":  # the heading, the table's header and separator, then the best rows
            table = next((i for i, line in enumerate(section) if line.startswith("|")), len(section))
            section = section[:1] + section[table:table + 2 + top] + \
                ([f"\n({len(section) - table - 2 - top} more in the full report)"]
                 if len(section) - table - 2 > top else [])
        out += [""] + section
    return "\n".join(out).rstrip() + "\n"
