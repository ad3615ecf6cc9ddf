import json

import pytest

from codecbench.codecs import parse_condition as C
from codecbench.evaluation import Evaluator
from codecbench.report import GAP, render
from codecbench.results import ResultsError, write_item, write_run


@pytest.fixture
def results_dir(tiny, tmp_path):
    """A real results folder: base on every condition, two fine-tuned models on some (gaps)."""
    ev = Evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1, log=lambda m: None)
    run = tmp_path / "runs" / "r1"
    pairs = [("base", c) for c in ("wav", "mp3@64", "mp3@32", "sbc@64")] + \
            [("finetuned_seg9", c) for c in ("wav", "mp3@32")] + [("finetuned_full@e1", "wav")]
    for model, cond in pairs:
        write_item(run, {**ev.evaluate(model, C(cond)).as_record(), "threshold": None, "outcome": "passed"})
    ds = tiny["dataset"]
    meta = {"run_id": "r1", "dataset": {"name": "synthetic", "split": "evaluate", "recipe": ds.recipe,
                                        "fingerprint": ds.fingerprint("evaluate"),
                                        "clip_digests": ds.clip_digests("evaluate")},
            "matrix": {"name": "tiny", "fingerprint": tiny["matrix"].fingerprint()}}
    write_run(tmp_path, run, meta)
    return tmp_path


def test_report_renders_tables_figure_and_gaps(results_dir, tmp_path):
    out = tmp_path / "out"
    markdown, written = render(results_dir, out)
    names = {p.name for p in written}
    assert {"report.md", "table2.csv", "segments.csv", "significance.csv", "codec_facts.csv", "figure2.png",
            "figure2.svg"} <= names
    assert "## Table 2: full fine-tuning by epoch" in markdown and "| full e1" in markdown
    table2 = markdown.split("## Table 2")[1].split("##")[0]
    assert GAP in table2  # finetuned_full@e1 has no mp3@32 result: an explicit gap, not a number
    assert "mean cat1" in markdown and "p=" in markdown
    assert (out / "figure2.png").stat().st_size > 10_000
    facts = (out / "codec_facts.csv").read_text()
    assert "mp3@32" in facts and "achieved_kbps" in facts


def test_report_refuses_empty_old_and_unknown(results_dir, tmp_path):
    doc = json.loads((results_dir / "results.json").read_text())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no results file"):
        render(tmp_path / "empty", tmp_path / "o1")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**doc, "format": 0}))
    with pytest.raises(ResultsError, match="format 0"):
        render(old, tmp_path / "o2")
    nothing = tmp_path / "nothing.json"
    nothing.write_text(json.dumps({**doc, "results": []}))
    with pytest.raises(ResultsError, match="holds no results"):
        render(nothing, tmp_path / "o3")
    with pytest.raises(ResultsError, match="finetuned_seg3 are not in these results"):
        render(results_dir, tmp_path / "o4", models=["base", "finetuned_seg3"])


def _baseline_with_wrong_answers(doc: dict, model: str, condition: str, wrong: int) -> dict:
    """A copy of a run in which ``model`` on ``condition`` got ``wrong`` more clips wrong."""
    base = json.loads(json.dumps(doc))
    cell = next(r for r in base["results"] if r["model"] == model and r["condition"] == condition)
    flipped = 0
    for i, (label, prediction) in enumerate(zip(cell["labels"], cell["predictions"])):
        if flipped < wrong and label == prediction:
            cell["predictions"][i] = (label + 1) % 10
            flipped += 1
    assert flipped == wrong
    cell["correct"] -= wrong
    cell["accuracy"] = cell["correct"] / cell["n"]
    return base


def test_report_with_baseline_shows_each_cells_change(results_dir, tmp_path):
    doc = json.loads((results_dir / "results.json").read_text())
    cell = next(r for r in doc["results"] if r["correct"] >= 2)
    base = _baseline_with_wrong_answers(doc, cell["model"], cell["condition"], 2)
    (tmp_path / "base.json").write_text(json.dumps(base))
    markdown, _ = render(results_dir, tmp_path / "o", formats=("md",), baseline=tmp_path / "base.json")
    row = next(line for line in markdown.splitlines()
               if line.startswith(f"| {cell['model']} ") and f"| {cell['condition']} " in line)
    assert f"+{2 / cell['n']:.3f}" in row, row
    assert "Data: same content." in markdown


def test_report_baseline_on_other_data_is_refused_or_narrowed(results_dir, tmp_path):
    doc = json.loads((results_dir / "results.json").read_text())
    digests = doc["meta"]["dataset"]["clip_digests"]
    keys = sorted(digests)
    # one clip's audio differs (same keys, same recipe): compared on the others, and the report says so
    changed = json.loads(json.dumps(doc))
    changed["meta"]["dataset"]["fingerprint"] = "0" * 16
    changed["meta"]["dataset"]["clip_digests"][keys[0]] = "f" * 64
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    markdown, _ = render(results_dir, tmp_path / "o1", formats=("md",), baseline=tmp_path / "changed.json",
                         baseline_max_changed=0.5)
    assert f"1 of {len(keys)} clips differ in content" in markdown
    with pytest.raises(ResultsError, match=f"1 of {len(keys)} clips differ.*more than the 0.0% allowed"):
        render(results_dir, tmp_path / "o2", formats=("md",), baseline=tmp_path / "changed.json",
               baseline_max_changed=0.0)
    other = json.loads(json.dumps(changed))
    other["meta"]["dataset"]["recipe"] = {**(doc["meta"]["dataset"]["recipe"] or {}), "seed": 99}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ResultsError, match="recipe"):
        render(results_dir, tmp_path / "o3", formats=("md",), baseline=tmp_path / "other.json")


def test_compare_two_runs_clip_by_clip(results_dir, tmp_path, capsys):
    from codecbench.cli import main

    doc = json.loads((results_dir / "results.json").read_text())
    flipped = json.loads(json.dumps(doc))
    first = flipped["results"][0]
    first["predictions"][0] = (first["predictions"][0] + 1) % 10
    (tmp_path / "flipped.json").write_text(json.dumps(flipped))
    assert main(["compare", str(results_dir / "results.json"), str(tmp_path / "flipped.json")]) == 0
    out = capsys.readouterr().out
    n = sum(len(r["clips"]) for r in doc["results"])
    assert f"{len(doc['results'])} (model, condition) cells" in out and f"{n - 1} of {n} paired clips" in out
    # runs recorded when clips were keyed by file name pair by name
    old = json.loads(json.dumps(doc))
    for r in old["results"]:
        r["clips"] = [c.split("/")[-1] for c in r["clips"]]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["compare", str(tmp_path / "old.json"), str(results_dir / "results.json"), "--match-by", "name"]) == 0
    assert f"{n} of {n} paired clips with identical predictions" in capsys.readouterr().out
