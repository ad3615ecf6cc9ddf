"""A board's static site: the ranked leaderboard (the HTML report of every submission, recomputed from their
per-clip data), a page per model (its card and every metric per condition) and a badge per model in the shields
endpoint format (https://shields.io/badges/endpoint-badge), for a team to publish as it is."""
from __future__ import annotations

import html
import json
from pathlib import Path

from codecbench.core.fsutil import atomic_write
from codecbench.report.html import render_html
from codecbench.report.ranking import ranking
from codecbench.report.table import ResultTable
from codecbench.results.metrics import METRICS
from codecbench.results.submission import Board

#: The card's fields, in the order a page shows them.
CARD = (("name", "model"), ("sha256", "model file SHA-256"), ("params", "parameters"), ("kind", "kind"),
        ("frontend", "front-end"), ("strategy", "how it was made"), ("parent", "parent"),
        ("training_data", "training data (declared)"), ("licence", "licence (declared)"))


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def badge(score) -> dict:
    """A shields endpoint badge of a model's headline: coded accuracy and rank."""
    if score.coded_accuracy is None:
        return {"schemaVersion": 1, "label": "coded accuracy", "message": "not scored", "color": "lightgrey"}
    accuracy = score.coded_accuracy
    colour = "brightgreen" if accuracy >= 0.8 else "green" if accuracy >= 0.7 else "yellow" if accuracy >= 0.5 \
        else "orange" if accuracy >= 0.3 else "red"
    return {"schemaVersion": 1, "label": "coded accuracy", "message": f"{accuracy:.3f} (#{score.rank})",
            "color": colour}


def model_page(res: ResultTable, name: str, card: dict, score) -> str:
    """One model's page: its card, its headline figures and every metric per condition."""
    e = html.escape
    card_rows = "".join(f"<tr><th>{e(label)}</th><td>{e(str(card.get(key) if card.get(key) is not None else '—'))}"
                        "</td></tr>" for key, label in CARD)
    head = "".join(f"<th>{e(label)}</th>" for label in ("condition", "accuracy [95 % CI]",
                                                        *(METRICS[m].label for m in METRICS if m != "accuracy")))
    rows = []
    for _, condition in res.conditions():
        cell = res.get(name, condition)
        if cell is None:
            continue
        metrics = "".join(f"<td>{_fmt(cell.get(m))} [{_fmt(cell.get(f'{m}_low'))}, {_fmt(cell.get(f'{m}_high'))}]"
                          "</td>" for m in METRICS if m != "accuracy")
        rows.append(f"<tr><td>{e(condition)}</td><td>{_fmt(cell['accuracy'])} [{_fmt(cell['ci_low'])}, "
                    f"{_fmt(cell['ci_high'])}]</td>{metrics}</tr>")
    headline = (f"Rank {score.rank}: coded accuracy {_fmt(score.coded_accuracy)} [{_fmt(score.coded_accuracy_low)}, "
                f"{_fmt(score.coded_accuracy_high)}], coded log-loss {_fmt(score.coded_log_loss)}, relative coding "
                f"error {_fmt(score.relative_coding_error, 1)} (vs {e(str(score.reference))}), uncoded accuracy "
                f"{_fmt(score.uncoded_accuracy)}.")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(name)}: codecbench board</title><style>body{{font-family:system-ui,sans-serif;margin:24px;"
            "max-width:1100px}}table{border-collapse:collapse;margin:8px 0 16px}th,td{border-bottom:1px solid "
            "#d9dde6;padding:4px 8px;text-align:left}.scroll{overflow-x:auto}</style></head><body>"
            f"<p><a href=\"../index.html\">← the board</a></p><h1>{e(name)}</h1><p>{headline}</p>"
            f"<h2>Model card</h2><table>{card_rows}</table><h2>Per condition</h2><p>Recomputed from the submitted "
            "per-clip predictions and probabilities; intervals: Wilson (accuracy), bootstrap over clips (others)."
            f"</p><div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</div></body></html>")


def render_board(board: Board, out: str | Path) -> Path:
    """Write the board's site into ``out``: ``index.html``, ``models/<name>.html``, ``badges/<name>.json``."""
    out = Path(out)
    doc = board.document()
    res = ResultTable(doc)
    dataset = doc["meta"]["dataset"]
    index = render_html(res, out / "leaderboard")
    cards = doc["meta"]["model_cards"]
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "badges").mkdir(parents=True, exist_ok=True)
    scores = ranking(res)
    for score in scores:
        atomic_write(out / "models" / f"{score.model}.html", model_page(res, score.model, cards[score.model], score))
        atomic_write(out / "badges" / f"{score.model}.json", json.dumps(badge(score)))
    e = html.escape
    items = "".join(f"<tr><td>{s.rank}</td><td><a href=\"models/{e(s.model)}.html\">{e(s.model)}</a></td>"
                    f"<td>{_fmt(s.coded_accuracy)}</td><td>{_fmt(s.coded_log_loss)}</td>"
                    f"<td>{_fmt(s.uncoded_accuracy)}</td></tr>" for s in scores)
    page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>codecbench board: "
            f"{e(str(dataset.get('name')))}</title><style>body{{font-family:system-ui,sans-serif;margin:24px}}"
            "table{border-collapse:collapse}th,td{border-bottom:1px solid #d9dde6;padding:4px 8px;text-align:left}"
            f"</style></head><body><h1>codecbench board: {e(str(dataset.get('name')))} "
            f"({e(str(dataset.get('split')))} split)</h1><p>{len(scores)} models, ranked by coded accuracy; every "
            "figure recomputed from the submitted per-clip data. <a href=\"leaderboard/index.html\">The full "
            "leaderboard</a> (sortable, with every condition, chart and paired comparison).</p><table><thead><tr>"
            "<th>rank</th><th>model</th><th>coded accuracy</th><th>coded log-loss</th><th>uncoded</th></tr></thead>"
            f"<tbody>{items}</tbody></table></body></html>")
    atomic_write(out / "index.html", page)
    return index.parent.parent / "index.html"
