"""The post-filter strategy: trained for real on a tiny set, saved in front of its unchanged parent, evaluated by
the benchmark like any model, with its parameters and added inference time in results.json and the report."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from codecbench.codecs import parse_condition as C
from codecbench.remedies.postfilter import (
    PostFilterConfig,
    PostFilterError,
    build_postfilter,
    pair_indices,
    train_postfilter,
)
from codecbench.zoo import Zoo

from .plugin_args import run_plugin

pytest_plugins = ["pytester"]

SUITE = """
def test_codec_robustness(codecbench_case, codecbench_check):
    codecbench_check(codecbench_case)
"""


@pytest.fixture(scope="module")
def pf_zoo(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("pf") / "zoo"
    zoo = Zoo(root)
    for f in tiny["zoo"].root.glob("base.*"):  # the parent beside it, as a user's zoo would hold both
        root.mkdir(exist_ok=True)
        shutil.copy(f, root / f.name)
    base = zoo.parent("base", "fine-tuning")
    name = train_postfilter(zoo, base, tiny["dataset"], tiny["matrix"], tiny["cache"],
                            config=PostFilterConfig(filters=8, layers=3, epochs=1, batch_size=8, crop_frames=24),
                            jobs=1, verbose=0)
    return zoo, name


@pytest.mark.backend_matrix
def test_saved_in_front_of_the_unchanged_parent_with_its_cost(pf_zoo, tiny):
    zoo, name = pf_zoo
    assert name == "base+postfilter"
    meta = zoo.metadata(name)
    pf = meta["postfilter"]
    assert meta["strategy"] == "postfilter" and meta["parent"] == "base"
    assert pf["params"] == 8 * 3 * 9 + 8 + 8 * 8 * 9 + 8 + 3 * 8 * 9 + 3
    # both timings were measured, and the cost shown is their difference (floored at 0 for timing noise)
    assert pf["ms_per_clip"] > 0 and pf["parent_ms_per_clip"] > 0
    # the whole model runs the parent after the post-filter: it cannot be much faster than the parent alone, and
    # what the post-filter adds is at most the whole model's time (measured side by side, never negative)
    assert pf["ms_per_clip"] >= 0.5 * pf["parent_ms_per_clip"]
    assert 0.0 <= pf["added_ms_per_clip"] <= pf["ms_per_clip"]
    assert pf["added_ms_per_clip"] < pf["ms_per_clip"] or pf["parent_ms_per_clip"] == 0
    assert pf["pairs"] > 0 and np.isfinite(pf["final_loss"])
    combined, _ = zoo.load(name)
    parent, _ = tiny["zoo"].load("base")
    inner = next(layer for layer in combined.layers if layer.name == parent.name)
    # the classifier inside is the parent, weight for weight
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), parent.get_weights()))


def test_an_untrained_postfilter_is_the_identity():
    pf = build_postfilter(3, PostFilterConfig(filters=4, layers=2))
    x = np.random.default_rng(0).random((2, 16, 10, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(pf.predict_on_batch(x)), x, atol=1e-6)


def test_pairs_need_the_original():
    sources, targets = pair_indices(["a", "b", "a", "b"], [C(c) for c in ("wav", "wav", "mp3@64", "mp3@64")])
    assert sources.tolist() == [0, 1, 2, 3] and targets.tolist() == [0, 1, 0, 1]
    with pytest.raises(PostFilterError, match="needs the original audio"):
        pair_indices(["a", "b"], [C("mp3@64"), C("mp3@64")])


def meta_pf(zoo, name):
    return zoo.metadata(name)["postfilter"]


def test_benchmarked_like_any_model_with_its_cost_in_results_and_report(pf_zoo, tiny, pytester):
    zoo, name = pf_zoo
    pytester.makepyfile(test_suite=SUITE)
    result = run_plugin(
        pytester, "--model-dir", str(zoo.root), "--dataset", tiny["spec"],
        "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"]), "--results",
        str(pytester.path / "reports"), "--jobs", "1")
    result.assert_outcomes(passed=8)
    doc = json.loads((pytester.path / "reports" / "results.json").read_text())
    assert {r["model"] for r in doc["results"]} == {"base", name}
    facts = doc["meta"]["model_facts"][name]
    assert facts["strategy"] == "postfilter" and facts["postfilter"]["params"] > 0
    assert facts["postfilter"]["added_ms_per_clip"] == meta_pf(zoo, name)["added_ms_per_clip"]
    from codecbench.report import render
    markdown, written = render(pytester.path / "reports", pytester.path / "report")
    assert "## Post-filter models" in markdown
    assert f"{facts['postfilter']['added_ms_per_clip']:.2f} ms per clip" in markdown
    assert any(p.name == "postfilter.csv" for p in written)
