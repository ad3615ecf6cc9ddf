"""The ranking metrics (codecbench/results/metrics.py) and the headline score (codecbench/results/ranking.py):
against hand-computed values and scikit-learn's implementations, paired by construction, absent (never 0) where a
results file has no probabilities."""
import math

import numpy as np
import pytest

from codecbench.errors import DataError
from codecbench.results.metrics import (
    cell_metrics,
    pack_probabilities,
    paired_difference,
    resamples,
    unpack_probabilities,
)
from codecbench.results.ranking import family, rank_models
from codecbench.results.rows import METRIC_COLUMNS, record_metrics, row_problem

from .optional import import_or_missing


def _cell(seed=0, n=200, k=10, sharp=2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * sharp
    labels = rng.integers(0, k, n)
    logits[np.arange(n), labels] += 1.5  # better than chance
    p = np.exp(logits - logits.max(1, keepdims=True))
    return labels, p / p.sum(1, keepdims=True)


def test_metrics_by_hand_on_three_clips():
    labels = np.array([0, 1, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.0, 1.0, 0.0]])
    m = cell_metrics(labels, p.argmax(1), p, n_classes=3)
    assert m["accuracy"] == pytest.approx(2 / 3)
    # clip 3's p(label)=1 is clipped to 1-1e-15 and the row renormalised: -log of that is ~0
    assert m["log_loss"] == pytest.approx((-math.log(0.7) - math.log(0.3)) / 3, rel=1e-9)
    # class 0: 1 of 1 right; class 1: 1 of 2 right
    assert m["macro_accuracy"] == pytest.approx((1 + 0.5) / 2)
    # Brier: (0.09+0.04+0.01) + (0.36+0.49+0.01) + 0, over 3 clips
    assert m["brier"] == pytest.approx((0.14 + 0.86) / 3)
    # ECE, 15 bins: 0.7 -> bin (0.667, 0.733], right; 0.6 -> (0.533, 0.6], wrong; 1.0 -> last bin, right
    assert m["ece"] == pytest.approx((abs(1 - 0.7) + abs(0 - 0.6) + abs(1 - 1.0)) / 3)
    for name in ("log_loss", "macro_accuracy", "brier", "ece"):
        assert m[f"{name}_low"] <= m[name] <= m[f"{name}_high"] or m[f"{name}_low"] == m[f"{name}_high"]


def test_metrics_agree_with_scikit_learn():
    sk = import_or_missing("sklearn", "sklearn.metrics", "scikit-learn is not installed")
    balanced_accuracy_score, brier_score_loss, log_loss = sk.balanced_accuracy_score, sk.brier_score_loss, sk.log_loss

    labels, p = _cell()
    m = cell_metrics(labels, p.argmax(1), p, n_classes=10)
    assert m["log_loss"] == pytest.approx(log_loss(labels, p, labels=list(range(10))), rel=1e-12)
    assert m["macro_accuracy"] == pytest.approx(balanced_accuracy_score(labels, p.argmax(1)), rel=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(labels, p, labels=list(range(10)), scale_by_half=False),
                                       rel=1e-12)


def test_logits_and_probabilities_give_the_same_metrics():
    """A model declaring logits is turned into probabilities once (ScoringModel.probabilities): same metrics."""
    from codecbench.models.kinds import ScoringModel
    from codecbench.signal.frontends import parse_frontend

    labels, p = _cell(seed=3)
    logits = np.log(p) + 7.0  # any shift: softmax is shift-invariant
    frontend = parse_frontend({"kind": "waveform", "sample_rate": 16000})
    as_logits = ScoringModel("l", "python", frontend, list("abcdefghij"), lambda x: logits, "logits")
    as_probabilities = ScoringModel("p", "python", frontend, list("abcdefghij"), lambda x: p, "probabilities")
    a, b = as_logits.predict(np.zeros((len(p), 4))), as_probabilities.predict(np.zeros((len(p), 4)))
    ma, mb = (cell_metrics(labels, x.argmax(1), x, n_classes=10) for x in (a, b))
    assert ma == pytest.approx(mb, rel=1e-9)


def test_resamples_are_fixed_and_shared():
    a, b = resamples(50), resamples(50)
    assert np.array_equal(a, b) and a.shape == (1000, 50) and a.min() >= 0 and a.max() < 50
    # the stream is PCG64's raw output, so the first draws are pinned on every machine
    assert resamples(7, count=1)[0].tolist() == (np.random.PCG64(20201).random_raw(7) % 7).astype(int).tolist()


def test_paired_difference_is_tighter_than_the_unpaired_intervals():
    labels, p = _cell(seed=1, n=300)
    q = p.copy()
    q[:30] = np.roll(q[:30], 1, axis=1)  # the second model differs on 30 clips only
    a = {"model": "a", "clips": [str(i) for i in range(300)], "labels": labels.tolist(),
         "predictions": p.argmax(1).tolist(), "probabilities": p}
    b = {**a, "model": "b", "predictions": q.argmax(1).tolist(), "probabilities": q}
    diff = paired_difference(a, b, "log_loss", n_classes=10)
    ma, mb = (cell_metrics(labels, x.argmax(1), x, n_classes=10) for x in (p, q))
    assert diff["difference"] == pytest.approx(mb["log_loss"] - ma["log_loss"])
    assert diff["high"] - diff["low"] < (ma["log_loss_high"] - ma["log_loss_low"])
    assert paired_difference({**a, "probabilities": None}, b, "log_loss", n_classes=10) is None


def test_probabilities_pack_as_float16_and_refuse_a_wrong_shape():
    _, p = _cell(n=20)
    packed = pack_probabilities(p)
    back = unpack_probabilities(packed, 20, 10)
    assert np.allclose(back, p, atol=1e-3) and back.dtype == np.float64
    with pytest.raises(DataError, match=r"shape \(20, 10\), expected \(21"):
        unpack_probabilities(packed, 21)
    with pytest.raises(DataError, match="float16"):
        unpack_probabilities({**packed, "dtype": "float64"}, 20)


def _record(model, condition, labels, p, clips=None):
    pred = p.argmax(1)
    record = {"model": model, "condition": condition, "n": len(labels), "correct": int(np.sum(pred == labels)),
              "accuracy": float(np.mean(pred == labels)), "ci_low": 0.0, "ci_high": 1.0,
              "clips": clips or [f"c{i}" for i in range(len(labels))], "labels": labels.tolist(),
              "predictions": pred.tolist(), "probabilities": pack_probabilities(p)}
    return {**record, **record_metrics(record)}


def test_an_older_record_without_probabilities_has_its_metrics_absent_not_zero():
    labels, p = _cell(n=40)
    record = _record("base", "wav", labels, p)
    old = {k: v for k, v in record.items() if k not in METRIC_COLUMNS and k != "probabilities"}
    assert row_problem(old) is None
    found = record_metrics(old)
    assert found["log_loss"] is None and found["ece"] is None and found["brier"] is None
    assert found["macro_accuracy"] is not None  # needs predictions only
    scores = rank_models({("base", "wav"): old, ("base", "mp3@32"): old})
    assert scores[0].coded_log_loss is None and scores[0].coded_accuracy == pytest.approx(record["accuracy"])


def test_a_row_that_contradicts_itself_is_refused():
    labels, p = _cell(n=10)
    record = _record("base", "wav", labels, p)
    assert row_problem(record) is None
    assert "correct" in row_problem({**record, "correct": 11})
    assert "correct" in row_problem({**record, "correct": (record["correct"] + 1) % 10})
    assert "entries" in row_problem({**record, "predictions": record["predictions"][:-1]})
    assert "accuracy" in row_problem({**record, "accuracy": 0.123})
    assert "log_loss" in row_problem({**record, "log_loss": float("nan")})
    assert "shape" in row_problem({**record, "probabilities": pack_probabilities(p[:5])})


def test_family_sets_rates_aside():
    assert family("mp3@32") == "mp3" and family("aac@128>mp3@32") == "aac>mp3"
    assert family("opus@24+loss5+burst3") == "opus+loss+burst" and family("wav") == "wav"


def test_relative_coding_error_on_a_hand_made_table():
    """Two families (mp3 at two rates, opus at one); errors of the reference: mp3 4+6, opus 5; of the model:
    mp3 2+3, opus 5 -> (5/10 + 5/5) / 2 * 100 = 75."""
    n = 10
    labels = np.zeros(n, dtype=int)

    def cell(model, condition, wrong):
        p = np.full((n, 2), 0.1)
        p[:, 0] = 0.9
        p[:wrong] = [0.1, 0.9]
        return (model, condition), _record(model, condition, labels, p)

    cells = dict([cell("base", "wav", 0), cell("base", "mp3@32", 4), cell("base", "mp3@64", 6),
                  cell("base", "opus@64", 5), cell("better", "wav", 0), cell("better", "mp3@32", 2),
                  cell("better", "mp3@64", 3), cell("better", "opus@64", 5)])
    scores = {s.model: s for s in rank_models(cells)}
    assert scores["base"].relative_coding_error == pytest.approx(100)
    assert scores["better"].relative_coding_error == pytest.approx(75)
    assert scores["better"].coded_accuracy == pytest.approx(1 - 10 / 30)
    assert scores["better"].retained_accuracy == pytest.approx(1 - 10 / 30)
    assert scores["better"].rank == 1 and scores["base"].rank == 2
    assert scores["better"].worst_condition == "opus@64"
    low, high = scores["better"].coded_accuracy_low, scores["better"].coded_accuracy_high
    assert low <= scores["better"].coded_accuracy <= high and low < high


def test_an_incomplete_model_ranks_after_the_complete_ones():
    labels, p = _cell(n=30)
    good = np.eye(10)[labels] * 0.9 + 0.01
    cells = {("base", "wav"): _record("base", "wav", labels, p),
             ("base", "mp3@32"): _record("base", "mp3@32", labels, p),
             ("perfect", "wav"): _record("perfect", "wav", labels, good)}
    cells[("base", "opus@64")] = _record("base", "opus@64", labels, p)
    cells[("perfect", "mp3@32")] = _record("perfect", "mp3@32", labels, good)
    ranked = rank_models(cells)
    assert [s.model for s in ranked] == ["base", "perfect"] and not ranked[1].complete


# -- gates on a metric: thresholds and the baseline ------------------------------------------------------------
def test_thresholds_bound_any_metric_with_its_direction(tmp_path):
    from codecbench.codecs.matrix import load_matrix
    from codecbench.results.judge import judge
    from codecbench.results.thresholds import ThresholdError, load_thresholds

    path = tmp_path / "thresholds.toml"
    path.write_text('[default]\n"mp3@32" = 0.2\n[default.log_loss]\n"mp3@32" = 1.2\n'
                    '[models.base.ece]\ndefault = 0.15\n')
    thresholds = load_thresholds(path, load_matrix("peters"), ["base"])
    assert thresholds.bounds("base", "mp3@32", "cat2") == {"accuracy": 0.2, "log_loss": 1.2, "ece": 0.15}
    assert thresholds.bounds("other", "wav", "cat1") == {}
    labels, p = _cell(n=100)
    record = _record("base", "mp3@32", labels, p)
    assert judge(record, {"log_loss": record["log_loss"] + 0.01}).passed
    failed = judge(record, {"log_loss": record["log_loss"] - 0.01})
    assert not failed.passed and "above the threshold" in failed.reasons[0] and "lower is better" in failed.reasons[0]
    assert not judge(record, {"macro_accuracy": record["macro_accuracy"] + 0.01}).passed
    old = {k: v for k, v in record.items() if k not in METRIC_COLUMNS and k != "probabilities"}
    assert "no per-clip probabilities" in judge({**old, **record_metrics(old)}, {"log_loss": 9.0}).reasons[0]
    path.write_text('[default.log_loss]\n"mp3@32" = -1\n')
    with pytest.raises(ThresholdError, match=r"log_loss.*mp3@32.*\[0, 1e\+06\]"):
        load_thresholds(path, load_matrix("peters"), ["base"])
    path.write_text('[default.f1]\n"mp3@32" = 0.5\n')
    with pytest.raises(ThresholdError, match="not a metric"):
        load_thresholds(path, load_matrix("peters"), ["base"])


def test_the_baseline_gate_on_log_loss_fails_a_significant_worsening_only():
    from codecbench.results.judge import gate_summary, judge

    labels, p = _cell(seed=5, n=300)
    baseline = _record("base", "mp3@32", labels, p)
    flattened = p ** 3
    flattened /= flattened.sum(1, keepdims=True)  # same argmax, overconfident: log-loss up, accuracy equal
    worse = _record("base", "mp3@32", labels, flattened)
    assert worse["predictions"] == baseline["predictions"] and worse["log_loss"] > baseline["log_loss"] + 0.1
    assert judge(worse, baseline=baseline).passed  # accuracy is unchanged
    verdict = judge(worse, baseline=baseline, metric="log_loss")
    assert not verdict.passed and "log-loss worsened" in verdict.reasons[0]
    assert verdict.facts["log_loss_change_low"] > 0
    assert judge(baseline, baseline=baseline, metric="log_loss").passed
    line = gate_summary([{**worse, **verdict.facts}], metric="log_loss")
    assert line.startswith("baseline gate on log-loss: 1 cells compared, 1 regression; the worst: base on mp3@32")
    assert gate_summary([worse]) is None  # nothing was compared
