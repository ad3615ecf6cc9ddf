import json
import re

import pytest

from codecbench.codecs import parse_condition as C
from codecbench.report import GAP, render
from codecbench.results.files import ResultsError, write_item, write_run

from .evaluators import split_evaluator


@pytest.fixture
def results_dir(tiny, tmp_path):
    """A real results folder: base on every condition, two fine-tuned models on some (gaps)."""
    ev = split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1,
                         log=lambda m: None)
    run = tmp_path / "runs" / "r1"
    pairs = [("base", c) for c in ("wav", "mp3@64", "mp3@32", "sbc@64")] + \
            [("finetuned_seg9", c) for c in ("wav", "mp3@32")] + [("finetuned_full@e1", "wav")]
    for model, cond in pairs:
        record = ev.evaluate(tiny["zoo"].entry(model), C(cond)).as_record()
        write_item(run, {**record, "threshold": None, "outcome": "passed"})
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
    # an interval is shown as both its ends (Wilson is asymmetric), never as "± half its width"
    assert "±" not in markdown
    base_wav = next(line for line in markdown.splitlines() if line.startswith("| cat1") and "| wav" in line)
    acc, low, high = (float(x) for x in re.search(r"(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]", base_wav).groups())
    assert low <= acc <= high
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
    # two runs that share cells but no clip compared nothing: an error, never "0 of 0 paired clips" and exit 0
    assert main(["compare", str(tmp_path / "old.json"), str(results_dir / "results.json")]) == 2
    err = capsys.readouterr().err
    assert "share" in err and "but no clip" in err and "comparing nothing is not agreement" in err
    assert "--match-by name" in err


def _deuteranope_lab(hex_colour: str):
    """CIE L*a*b* of a colour as a deuteranope sees it (Machado, Oliveira & Fernandes 2009, severity 1, on linear
    sRGB)."""
    import numpy as np

    srgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    machado = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]])
    seen = np.clip(machado @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ seen
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_palette_stays_apart_under_deuteranopia_and_never_relies_on_colour_alone():
    import itertools

    import numpy as np

    from codecbench.core.palette import OKABE_ITO, style_at

    def closest(colours):
        return min(float(np.linalg.norm(_deuteranope_lab(a) - _deuteranope_lab(b)))
                   for a, b in itertools.combinations(colours, 2))

    # every pair of the report's colours differs by a clearly visible CIE76 distance for a deuteranope
    assert closest(OKABE_ITO) > 15
    # the computation can tell: the report's former palette had two colours a deuteranope could not tell apart
    assert closest(["#2459c2", "#d1495b", "#2a9d5c", "#e08e0b", "#7b4fc9", "#1b9aaa", "#8c564b", "#c2185b"]) < 5
    # no two of the first 40 series share colour, marker and dash, and neighbours differ in marker too
    styles = [style_at(i) for i in range(40)]
    assert len({(s.colour, s.marker, s.dash) for s in styles}) == 40
    assert all(a.marker != b.marker for a, b in zip(styles, styles[1:]))


def test_png_and_page_draw_a_condition_in_the_same_style(results_dir, tmp_path):
    """The PNG's Figure 2 and the page take a condition's colour and marker from one palette."""
    from codecbench.core.palette import styles_for
    from codecbench.report import load_document
    from codecbench.report.html import group_data
    from codecbench.report.table import ResultTable

    res = ResultTable(load_document(results_dir, None))
    page = group_data(res, sweep_rows=[])["styles"]["conditions"]
    assert page == {c: s.as_dict() for c, s in styles_for(c for _, c in res.conditions()).items()}
    from matplotlib.colors import to_hex

    from codecbench.report.figures import draw_figure2

    fig = draw_figure2(res)
    drawn = {bars.get_label(): (to_hex(bars.lines[0].get_color()), bars.lines[0].get_marker())
             for bars in fig.axes[0].containers}
    from codecbench.core.palette import MARKERS
    for cond, style in page.items():
        label = next(k for k in drawn if k.startswith(f"{cond} ("))
        assert drawn[label] == (style["colour"].lower(), MARKERS[style["marker"]]), cond


def test_a_report_removes_the_files_an_earlier_report_left_and_keeps_everything_else(tmp_path):
    """A report of the paper's matrix after one of the transmission matrix left losses.png and paper_vs_run.csv,
    which read as this run's; they go, a file of the user's stays, and a format not rendered now is not touched."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "reports" / "example" / "results.json"
    for name in ("losses.png", "losses.svg", "paper_vs_run.csv", "notes.txt", "diagnosis-base-mp3_32.png"):
        (tmp_path / name).write_text("from before")
    _, written = render(example, tmp_path, ["md", "csv", "png"])
    assert not (tmp_path / "losses.png").exists() and not (tmp_path / "paper_vs_run.csv").exists()
    assert (tmp_path / "losses.svg").exists()  # svg was not rendered this time
    assert (tmp_path / "notes.txt").exists() and (tmp_path / "diagnosis-base-mp3_32.png").exists()
    assert (tmp_path / "ranking.csv").exists() and (tmp_path / "ranking.csv") in written
    render(example, tmp_path, ["html"])  # an HTML-only report keeps the Markdown and CSVs of the last full one
    assert (tmp_path / "report.md").exists() and (tmp_path / "table2.csv").exists()
