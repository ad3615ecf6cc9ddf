"""Submissions and the shared board (codecbench/results/submission.py, codecbench/report/board.py): a round trip
from two results folders to a ranked site, refusals that name what differs, and numbers recomputed, never read."""
import json

import numpy as np
import pytest

from codecbench.cli import main
from codecbench.results.metrics import pack_probabilities
from codecbench.results.rows import record_metrics
from codecbench.results.submission import Board, SubmissionError, make_submission, write_submission

CONDITIONS = {"wav": ("cat1", "none"), "mp3@32": ("cat2", "LAME 3.100"), "opus@64": ("cat3", "libavcodec 62 libopus")}
N = 40


def _results(model: str, skill: float, seed: int) -> dict:
    """A results document as a run writes it: per-clip data, the dataset's digests, the codec libraries."""
    rng = np.random.default_rng(seed)
    clips = [f"audio/clip{i:03d}.wav" for i in range(N)]
    labels = [i % 4 for i in range(N)]
    records = []
    for condition, (category, _) in CONDITIONS.items():
        logits = rng.normal(size=(N, 4))
        logits[np.arange(N), labels] += skill * (1.0 if condition == "wav" else 0.5)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        predictions = p.argmax(1).tolist()
        correct = sum(int(a == b) for a, b in zip(labels, predictions))
        record = {"model": model, "condition": condition, "category": category, "n": N, "correct": correct,
                  "accuracy": correct / N, "ci_low": 0.0, "ci_high": 1.0, "clips": clips, "labels": labels,
                  "predictions": predictions, "probabilities": pack_probabilities(p), "achieved_kbps": None}
        records.append({**record, **record_metrics(record)})
    meta = {"run_id": f"run-{model}", "dataset": {"name": "synthetic", "split": "evaluate", "fingerprint": "f",
                                                  "recipe": "r", "class_names": ["a", "b", "c", "d"],
                                                  "clip_digests": {c: f"{i:064x}" for i, c in enumerate(clips)}},
            "matrix": {"name": "m"}, "models": {model: f"sha-{model}"},
            "model_facts": {model: {"params": 1000, "kind": "keras", "frontend": "hu2020"}},
            "codec_facts": {c: {"library": lib} for c, (_, lib) in CONDITIONS.items() if c != "wav"}}
    return {"format": 1, "meta": meta, "results": records}


@pytest.fixture
def two(tmp_path):
    """Two submissions made in separate folders, as two labs would."""
    paths = {}
    for model, skill, seed in (("strong", 3.0, 1), ("weak", 1.0, 2)):
        folder = tmp_path / model
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(_results(model, skill, seed)))
        assert main(["submit", "--results", str(folder / "results.json"), "--model", model, "--out",
                     str(folder / "sub.json"), "--licence", "MIT"]) == 0
        paths[model] = folder / "sub.json"
    return paths


def test_a_board_from_two_labs_ranks_them_with_every_number_recomputed(two, tmp_path, capsys):
    assert main(["leaderboard", "--add", str(two["weak"]), str(two["strong"]), "--board",
                 str(tmp_path / "board")]) == 0
    assert "open the board: file://" in capsys.readouterr().err
    board = Board(tmp_path / "board")
    doc = board.document()
    for model in ("strong", "weak"):
        original = {r["condition"]: r for r in _results(model, *{"strong": (3.0, 1), "weak": (1.0, 2)}[model])
                    ["results"]}
        for record in (r for r in doc["results"] if r["model"] == model):
            for key in ("accuracy", "correct", "log_loss", "ece", "brier", "macro_accuracy", "log_loss_low"):
                assert record[key] == pytest.approx(original[record["condition"]][key]), key
    site = tmp_path / "board" / "site"
    index = (site / "index.html").read_text()
    assert index.index("strong") < index.index("weak")  # ranked by coded accuracy
    assert json.loads((site / "badges" / "strong.json").read_text())["message"].endswith("(#1)")
    assert "MIT" in (site / "models" / "strong.html").read_text()
    assert (site / "leaderboard" / "index.html").is_file()


def test_a_submitted_number_is_never_read(two, tmp_path):
    doc = json.loads(two["weak"].read_text())
    doc["results"][1]["accuracy"] = 0.99  # a number a submitter "improved"; the per-clip data are unchanged
    doc["results"][1]["log_loss"] = 0.01
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(doc))
    board = Board(tmp_path / "board")
    board.add([two["strong"], altered])
    weak = next(r for r in board.document()["results"] if r["model"] == "weak" and r["condition"] == "mp3@32")
    truth = next(r for r in _results("weak", 1.0, 2)["results"] if r["condition"] == "mp3@32")
    assert weak["accuracy"] == pytest.approx(truth["accuracy"]) and weak["accuracy"] != 0.99
    assert weak["log_loss"] == pytest.approx(truth["log_loss"])


def _altered(path, tmp_path, change) -> str:
    doc = json.loads(path.read_text())
    change(doc)
    out = tmp_path / "changed.json"
    out.write_text(json.dumps(doc))
    return str(out)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["dataset"]["clip_digests"].update({"audio/clip007.wav": "f" * 64}),
     r"1 clips differ in content from the board's \(SHA-256\), e.g. audio/clip007.wav"),
    (lambda d: d["dataset"]["clip_digests"].pop("audio/clip039.wav"),
     r"other clips than the board's \(1 of the board's clips missing \(audio/clip039.wav"),
    (lambda d: d["matrix"]["conditions"]["mp3@32"].update({"library": "LAME 3.99"}),
     r"condition mp3@32 was coded by 'LAME 3.99', the board's by 'LAME 3.100'"),
    (lambda d: d["matrix"]["conditions"].pop("opus@64"),
     r"other conditions than the board's \(1 of the board's conditions missing \(opus@64"),
])
def test_a_submission_that_differs_is_refused_naming_what(two, tmp_path, change, message):
    board = Board(tmp_path / "board")
    board.add([two["strong"]])
    with pytest.raises(SubmissionError, match=message):
        board.add([_altered(two["weak"], tmp_path, change)])
    assert sorted(p.name for p in (tmp_path / "board" / "submissions").iterdir()) == ["strong.json"]


def test_a_model_of_the_same_name_with_another_file_needs_replace(two, tmp_path):
    board = Board(tmp_path / "board")
    board.add([two["strong"]])
    board.add([two["strong"]])  # the same file again: nothing to replace
    other = _altered(two["strong"], tmp_path, lambda d: d["model"].update({"sha256": "another"}))
    with pytest.raises(SubmissionError, match="already holds a model 'strong' with another file"):
        board.add([other])
    board.add([other], replace=True)


def test_submit_refuses_results_without_probabilities(tmp_path):
    doc = _results("old", 1.0, 3)
    for record in doc["results"]:
        record.pop("probabilities")
    with pytest.raises(SubmissionError, match="no per-clip probabilities"):
        make_submission(doc, "old")
    with pytest.raises(Exception, match="no results of model 'other'"):
        make_submission(doc, "other")
    good = make_submission(_results("new", 1.0, 3), "new", training_data="TAU 2020 fold 1", licence="CC-BY-4.0")
    assert good["model"]["training_data"] == "TAU 2020 fold 1" and good["model"]["licence"] == "CC-BY-4.0"
    assert "accuracy" not in good["results"][0]  # per-clip data only
    write_submission(tmp_path / "s.json", good)
    assert json.loads((tmp_path / "s.json").read_text())["format"] == "codecbench-submission"


def test_a_submitted_model_name_that_is_not_a_name_is_refused_naming_the_file(two, tmp_path):
    """A name that would leave the board's folder (``../evil``) is the submission's fault: a SubmissionError naming
    the file, not the zoo's error without it."""
    altered = _altered(two["weak"], tmp_path, lambda d: d["model"].update({"name": "../evil"}))
    board = Board(tmp_path / "board")
    with pytest.raises(SubmissionError, match=r"changed\.json: model name: model name '\.\./evil': use letters"):
        board.add([altered])
    assert not (tmp_path / "board" / "submissions").exists() or not any((tmp_path / "board" / "submissions").iterdir())
