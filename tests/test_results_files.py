"""Comparing two runs' datasets by content and recipe (what the regression gate and report --baseline use)."""
from codecbench.results.files import compare_datasets, restrict_record


def _meta(digests: dict, fingerprint: str, recipe=None) -> dict:
    return {"dataset": {"name": "synthetic", "split": "evaluate", "fingerprint": fingerprint, "recipe": recipe,
                        "clip_digests": digests}}


RECIPE = {"seed": 0, "version": 6}
DIGESTS = {f"audio/c{i}.wav": f"{i:064x}" for i in range(100)}


def test_same_content_compares_on_every_clip():
    match = compare_datasets(_meta(DIGESTS, "aa", RECIPE), _meta(DIGESTS, "aa", RECIPE), max_changed=0.0)
    assert match.comparable and match.clips is None and match.total == 100


def test_a_few_changed_clips_narrow_the_comparison_and_too_many_refuse_it():
    other = dict(DIGESTS, **{"audio/c3.wav": "e" * 64, "audio/c7.wav": "e" * 64})
    match = compare_datasets(_meta(DIGESTS, "aa", RECIPE), _meta(other, "bb", RECIPE), max_changed=0.02)
    assert match.comparable and match.changed == 2 and len(match.clips) == 98
    assert "audio/c3.wav" not in match.clips and "2 of 100 clips differ" in match.reason
    refused = compare_datasets(_meta(DIGESTS, "aa", RECIPE), _meta(other, "bb", RECIPE), max_changed=0.01)
    assert not refused.comparable and "more than the 1.0% allowed" in refused.reason
    record = {"clips": ["audio/c3.wav", "audio/c4.wav"], "labels": [1, 2], "predictions": [1, 0]}
    assert restrict_record(record, match.clips) == {"clips": ["audio/c4.wav"], "labels": [2], "predictions": [0]}


def test_other_recipe_other_keys_or_no_digests_are_refused_with_the_reason():
    recipe = compare_datasets(_meta(DIGESTS, "aa", RECIPE), _meta(DIGESTS, "bb", {**RECIPE, "seed": 1}),
                              max_changed=1.0)
    assert not recipe.comparable and '"seed": 1' in recipe.reason and '"seed": 0' in recipe.reason
    fewer = {k: v for k, v in DIGESTS.items() if k != "audio/c5.wav"}
    keys = compare_datasets(_meta(DIGESTS, "aa", RECIPE), _meta(fewer, "bb", RECIPE), max_changed=1.0)
    assert not keys.comparable and "1 only in the baseline, 0 only in this run (e.g. audio/c5.wav)" in keys.reason
    old = compare_datasets(_meta({}, "aa", RECIPE), _meta(DIGESTS, "bb", RECIPE), max_changed=1.0)
    assert not old.comparable and "the baseline recorded no per-clip digests" in old.reason


def test_the_same_audio_under_another_fingerprint_means_other_labels():
    match = compare_datasets(_meta(DIGESTS, "aa", RECIPE), _meta(DIGESTS, "bb", RECIPE), max_changed=1.0)
    assert not match.comparable and "labelled differently" in match.reason
