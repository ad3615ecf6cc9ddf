"""Bit-rate sweeps: the break-even and retained figures on known numbers, and a small sweep end to end."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from codecbench.codecs import parse_condition
from codecbench.codecs.matrix import parse_matrix
from codecbench.report import ResultTable, render, sweeps
from codecbench.results.files import write_item, write_run

from .evaluators import split_evaluator


def _cell(model, condition, correct_mask):
    n = len(correct_mask)
    labels = [0] * n
    return {"model": model, "condition": condition, "n": n, "correct": int(sum(correct_mask)),
            "accuracy": sum(correct_mask) / n, "clips": [f"c{i}" for i in range(n)], "labels": labels,
            "predictions": [0 if ok else 1 for ok in correct_mask]}


def test_break_even_and_retained_on_known_accuracies():
    n = 200
    accuracies = {"wav": 0.80, "mp3@32": 0.30, "mp3@64": 0.70, "mp3@128": 0.79, "mp3@320": 0.80}
    rows = [_cell("m", c, [i < a * n for i in range(n)]) for c, a in accuracies.items()]
    res = ResultTable({"meta": {}, "results": rows})
    (row,) = sweeps.summarise(res, n_boot=200)
    assert row["codec"] == "mp3" and row["rates"] == [32, 64, 128, 320]
    # within 0.02 of 0.80 from 128 kbps on (64 is 0.10 short)
    assert row["break_even_kbps"] == 128
    assert math.isclose(row["retained"], np.mean([0.30, 0.70, 0.79, 0.80]) / 0.80)
    assert row["retained_low"] <= row["retained"] <= row["retained_high"]
    assert row["break_even_low"] <= 128 <= row["break_even_high"]


def test_a_codec_that_never_reaches_the_original_has_no_break_even():
    n = 100
    rows = [_cell("m", "wav", [True] * n)] + [_cell("m", f"opus@{k}", [i < 50 for i in range(n)]) for k in (6, 12, 24)]
    (row,) = sweeps.summarise(ResultTable({"meta": {}, "results": rows}), n_boot=50)
    assert math.isinf(row["break_even_kbps"])
    assert "never" in sweeps.markdown([row])


def test_fewer_than_three_rates_is_not_a_sweep():
    names = ["wav", "mp3@32", "mp3@64", "aac@32", "aac@48", "aac@64"]
    assert sweeps.find_sweeps([parse_condition(c) for c in names]) == {
        "aac": [(32.0, "aac@32"), (48.0, "aac@48"), (64.0, "aac@64")]}


def test_a_small_sweep_end_to_end_on_real_codecs_and_models(tiny, tmp_path):
    matrix = parse_matrix({"finetune": {"conditions": ["mp3@64"]},
                           "categories": {"reference": {"conditions": ["wav"]},
                                          "mp3": {"conditions": ["mp3@32..64"]}}}, "sweep.toml")
    assert [c.name for c in matrix.categories["mp3"]] == ["mp3@32", "mp3@40", "mp3@48", "mp3@56", "mp3@64"]
    ev = split_evaluator(tiny["dataset"], "evaluate", matrix, tiny["zoo"], tiny["cache"], jobs=1, log=lambda m: None)
    run = tmp_path / "runs" / "s1"
    for cond in matrix.validation:
        for result in ev.evaluate_many([tiny["zoo"].entry(m) for m in ("base", "finetuned_full@e1")], cond):
            write_item(run, {**result.as_record(), "threshold": None, "outcome": "passed"})
    write_run(tmp_path, run, {"run_id": "s1", "dataset": {"name": "synthetic", "split": "evaluate"},
                              "matrix": {"name": "sweep", "fingerprint": matrix.fingerprint()}})
    markdown, written = render(tmp_path, tmp_path / "report")
    assert "## Accuracy against bit rate" in markdown and "break-even kbps" in markdown
    names = {p.name for p in written}
    assert {"sweeps.png", "sweeps.svg", "sweeps.csv"} <= names
    assert (tmp_path / "report" / "sweeps.png").stat().st_size > 10_000


@pytest.mark.parametrize("given, named", [("opus@24+loss0..20", "opus@24+loss0..20"),
                                          ("wav,opus@24+loss1,5,10,mp3@32", "opus@24+loss1,5,10"),
                                          ("encodec@1.5,3,6", "encodec@1.5,3,6")])
def test_a_sweep_in_the_condition_option_says_where_sweeps_go(given, named):
    from codecbench.errors import UsageError
    from codecbench.run.spec import to_conditions

    with pytest.raises(UsageError, match=rf"'{re.escape(named)}' is a sweep; sweeps are expanded in a matrix"):
        to_conditions(given, "--condition")
