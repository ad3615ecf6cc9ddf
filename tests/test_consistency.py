"""Codec-invariant (consistency) fine-tuning, the fourth remedy: its loss, a tiny real run, the command, and the
report's comparison of the four remedies on paired predictions."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from codecbench.cli import main
from codecbench.remedies.consistency import finetune_consistency
from codecbench.report import render
from codecbench.report.remedies import compare_remedies, markdown, representatives
from codecbench.report.table import ResultTable
from codecbench.results.stats import mcnemar_exact
from codecbench.training.paired import consistency_loss
from codecbench.training.schedule import TrainConfig
from codecbench.zoo import Zoo, sort_key

EXAMPLE = Path(__file__).parent.parent / "reports" / "example" / "results.json"


def test_the_consistency_term_is_zero_for_identical_predictions_and_grows_with_their_difference():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    assert np.allclose(np.asarray(consistency_loss(p, p, 2.0)), 0.0, atol=1e-6)
    near = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]], dtype=np.float32)
    far = np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1]], dtype=np.float32)
    near_loss, far_loss = np.asarray(consistency_loss(p, near, 2.0)), np.asarray(consistency_loss(p, far, 2.0))
    assert np.all(near_loss > 0) and np.all(far_loss > near_loss)


def test_a_tiny_run_lowers_the_coded_uncoded_disagreement(tiny, tmp_path):
    out = Zoo(tmp_path / "zoo")
    # the tiny base is near chance (its coded and uncoded predictions disagree on ~70 % of clips): 3 epochs at a
    # rate of 0.05 and weight 4 moved that to 0.67 on one BLAS kernel and 0.77 on another; 6 epochs at 0.02 with
    # weight 8 bring it to about 0.57, a margin that does not hang on the machine's arithmetic
    quick = TrainConfig(epochs=6, batch_size=8, learning_rate=0.02, crop_frames=24, time_mask_frames=4, seed=0)
    base = tiny["zoo"].parent("base", "fine-tuning")
    name = finetune_consistency(out, base, tiny["dataset"], tiny["matrix"], tiny["cache"], epochs=6, weight=8.0,
                                config=quick, verbose=0)
    meta = out.metadata(name)
    assert meta["strategy"] == "consistency" and meta["parent"] == "base"
    assert meta["finetune_conditions"] == ["wav", "mp3@64"] and meta["consistency"]["weight"] == 8.0
    before, after = meta["consistency"]["disagreement_before"], meta["consistency"]["disagreement_after"]
    assert after < before, (before, after)
    assert sort_key(name) < sort_key("base+postfilter")  # listed with the fine-tunings


def test_the_command_saves_a_consistency_model_with_its_sidecar(tiny, tmp_path, capsys):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for path in Path(tiny["zoo"].root).glob("base.*"):
        (zoo / path.name).write_bytes(path.read_bytes())
    assert main(["consistency", "--from", "base", "--epochs", "1", "--model-dir", str(zoo), "--dataset",
                 tiny["spec"], "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"])]) == 0
    out = capsys.readouterr().out
    assert "finetuned_consistency: coded training clips predicted unlike their uncoded version" in out
    assert json.loads((zoo / "finetuned_consistency.json").read_text())["consistency"]["temperature"] == 2.0
    with pytest.raises(SystemExit):
        main(["consistency", "--from", "base", "--model-dir", str(zoo), "--weight", "-1"])
    assert "--weight" in capsys.readouterr().err


def test_the_report_compares_the_four_remedies_on_paired_predictions(tmp_path):
    doc = json.loads(EXAMPLE.read_text())
    # a fourth remedy for the comparison: base's own predictions under the consistency model's name
    doc["results"] += [{**copy.deepcopy(r), "model": "finetuned_consistency"} for r in doc["results"]
                       if r["model"] == "base"]
    res = ResultTable(doc)
    assert representatives(res.models) == {"full fine-tuning": "finetuned_full@e10",
                                           "segment fine-tuning": "finetuned_seg7", "post-filter": "base+postfilter",
                                           "consistency": "finetuned_consistency"}
    pairs, per_condition = compare_remedies(res)
    assert len(pairs) == 6 and len(per_condition) == len([c for _, c in res.conditions() if c != "wav"])
    # the segment-vs-consistency pair is segment 7 against base, pooled over the coded conditions, by clip
    row = next(r for r in pairs if r["model_a"] == "finetuned_seg7" and r["model_b"] == "finetuned_consistency")
    right_seg, right_base = [], []
    for _, cond in res.conditions():
        if cond == "wav":
            continue
        seg, base = res.get("finetuned_seg7", cond), res.get("base", cond)
        base_right = dict(zip(base["clips"], np.equal(base["predictions"], base["labels"])))
        right_seg += list(np.equal(seg["predictions"], seg["labels"]))
        right_base += [base_right[c] for c in seg["clips"]]
    p, seg_only, base_only = mcnemar_exact(np.array(right_seg), np.array(right_base))
    assert (row["a_only"], row["b_only"], row["pairs"]) == (seg_only, base_only, len(right_seg))
    assert abs(row["p_value"] - p) < 1e-12
    table = markdown(pairs, per_condition)
    assert "segment fine-tuning (finetuned" in table and "Accuracy per coded condition" in table
    # in the rendered report: the Markdown section, the CSV and the HTML page's table
    (tmp_path / "results.json").write_text(json.dumps(doc))
    report, written = render(tmp_path / "results.json", tmp_path / "out", formats=("md", "csv", "html"))
    assert "## The remedies compared" in report and tmp_path / "out" / "remedies.csv" in written
    assert '"remedies":{"pairs":[{"remedy_a":"full fine-tuning","model_a":"finetuned_full@e10"' in \
        (tmp_path / "out" / "html" / "index.html").read_text()
