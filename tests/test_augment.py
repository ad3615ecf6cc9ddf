"""Codec augmentation for any training loop: the transform (aligned, same length, seeded, audiomentations'
conventions), the epoch-level pool (each pair coded once across epochs, draws independent of workers), its
framework adaptors, the export of coded sets, and parameters refused at construction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecbench import codecs
from codecbench.augment import CodecAugment, CodecAugmentedDataset
from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache
from codecbench.datasets import load_dataset, synth_scene
from codecbench.errors import ArgumentError

from . import optional

SR = 44100
#: one condition per family the transform is checked on (HE-AAC where libfdk-aac is installed)
FAMILIES = ["mp3@32", "aac@48", "opus@24", "sbc@64", "mp2@64", "vorbis@64", "ac3@96", "amr-nb@12.2", "g722@64",
            "aptx", "lc3@64", "he-aac@24"]


def _clip(seconds=1.0, seed=0):
    return synth_scene(seed % 10, np.random.default_rng(seed), seconds, SR).astype(np.float32)


def _lag(a: np.ndarray, b: np.ndarray, span: int = 40) -> int:
    """The lag (samples) of ``b`` against ``a`` with the largest correlation, within +-span."""
    n = len(a) - 2 * span
    scores = [float(np.dot(a[span:span + n], b[span + k:span + k + n])) for k in range(-span, span + 1)]
    return int(np.argmax(scores)) - span


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_comes_back_aligned_with_the_same_length_and_rate(name):
    cond = C(name)
    optional.codec(name)
    x = _clip()
    augment = CodecAugment([name], p=1.0, seed=0)
    y = augment(x, SR)
    assert augment.parameters == {"should_apply": True, "condition": cond.name}
    assert y.shape == x.shape and y.dtype == np.float32 and not np.array_equal(x, y)
    # within one sample at the rate the codec ran at (an 8 kHz AMR-NB sample is 5.5 samples at 44.1 kHz), against
    # what a codec at that rate can carry
    rate = codecs.codec_rate(cond, SR)
    carried = codecs.resample(codecs.resample(x, SR, rate), rate, SR)
    assert abs(_lag(carried, y)) <= max(1, int(np.ceil(SR / rate)))


def test_multichannel_clips_are_coded_per_channel_or_downmixed():
    stereo = np.stack([_clip(seed=1), _clip(seed=2)])
    per_channel = CodecAugment(["mp3@64"], p=1.0)(stereo, SR)
    assert per_channel.shape == stereo.shape and not np.allclose(per_channel[0], per_channel[1])
    downmixed = CodecAugment(["mp3@64"], p=1.0, channels="downmix")(stereo, SR)
    assert downmixed.shape == stereo.shape and np.array_equal(downmixed[0], downmixed[1])


@pytest.mark.parametrize("name", ["mp3@64", "sbc@128"])
def test_a_signal_above_full_scale_follows_the_benchmarks_level_policy(name):
    """A float clip at 40x full scale: the codec is fed it scaled to peak 1.0 (MP3 kept a peak of 34.8 and SBC
    clipped at 1.0 otherwise), and the decode is scaled back, so the example keeps its level and content."""
    x = _clip(seed=3)
    x /= np.max(np.abs(x))
    loud = CodecAugment([name], p=1.0, seed=0)(40 * x, SR)
    quiet = CodecAugment([name], p=1.0, seed=0)(x, SR)
    np.testing.assert_allclose(loud, 40 * quiet, rtol=1e-4, atol=1e-4)
    assert 30 < np.max(np.abs(loud)) < 50


def test_a_seed_gives_the_same_draws_and_samples_and_p_zero_leaves_clips_alone():
    x = _clip()
    runs = []
    for _ in range(2):
        augment = CodecAugment(codecs={"mp3": 2, "opus": 1}, bitrates={"mp3": (32, 48), "opus": (16, 32)}, p=0.7,
                               seed=11)
        runs.append([(augment(x, SR), dict(augment.parameters)) for _ in range(6)])
    assert [p for _, p in runs[0]] == [p for _, p in runs[1]]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(*runs))
    drawn = {p["condition"] for _, p in runs[0] if p["should_apply"]}
    assert drawn and all(c.split("@")[0] in ("mp3", "opus") for c in drawn)
    assert all(32 <= int(c.split("@")[1]) <= 48 for c in drawn if c.startswith("mp3"))
    untouched = CodecAugment(["mp3@32"], p=0.0)
    assert untouched(x, SR) is x and untouched.parameters["should_apply"] is False


def test_frozen_parameters_repeat_the_last_draw():
    x = _clip()
    augment = CodecAugment(codecs=["mp3", "opus"], bitrates={"mp3": (32, 128), "opus": (16, 64)}, p=1.0, seed=3)
    first = augment(x, SR)
    augment.freeze_parameters()
    assert np.array_equal(augment(x, SR), first)
    augment.unfreeze_parameters()


@pytest.mark.parametrize("kwargs, match", [
    ({"conditions": ["mp4@32"]}, "unknown codec 'mp4'"),
    ({"codecs": ["mp4"]}, "unknown codec 'mp4'"),
    ({"codecs": ["mp3"], "bitrates": {"mp3": (64, 32)}}, "mp3 range 64-32 kbps is empty"),
    ({"codecs": ["mp3"], "bitrates": {"mp3": (4, 64)}}, "mp3 range 4-64 kbps leaves its valid range"),
    ({"codecs": ["mp3"], "bitrates": {"opus": (16, 32)}}, "bitrates: opus is not among the codecs"),
    ({"codecs": ["aptx"], "bitrates": {"aptx": (300, 400)}}, "aptx has one bit rate"),
    ({"codecs": {"mp3": 0}}, "weight of 'mp3' must be a positive number"),
    ({"conditions": []}, "conditions: empty"),
    ({"conditions": ["mp3@32"], "p": 1.5}, r"p: a probability in \[0, 1\], got 1.5"),
    ({"conditions": ["mp3@32"], "p": -0.1}, r"p: a probability in \[0, 1\]"),
    ({"conditions": ["mp3@32"], "channels": "left"}, "channels: one of per_channel, downmix"),
    ({}, "give either conditions"),
])
def test_bad_parameters_are_named_errors_at_construction(kwargs, match):
    from codecbench.errors import CodecbenchError

    with pytest.raises(CodecbenchError, match=match):
        CodecAugment(**kwargs)


def test_the_transform_cache_turns_the_second_epoch_into_decoding(tmp_path):
    x = _clip()
    cache = Cache(tmp_path / "cache")
    augment = CodecAugment(["mp3@32"], p=1.0, cache=cache)
    first = augment(x, SR)
    entries = sorted(cache.entries("coded"))
    assert len(entries) == 1
    mtime = entries[0].stat().st_mtime_ns
    assert np.array_equal(augment(x, SR), first)  # read back: same samples, nothing coded again
    assert sorted(cache.entries("coded")) == entries and entries[0].stat().st_mtime_ns == mtime


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    cache = Cache(root / "cache")
    dataset = load_dataset("synthetic:train=1,evaluate=1,duration=1.0,seed=9", cache_dir=cache.root)
    return dataset, cache


def test_the_pool_codes_each_pair_once_across_epochs(small_set):
    dataset, cache = small_set
    pool = CodecAugmentedDataset(dataset, codecs={"mp3": 1, "opus": 1}, bitrates={"mp3": (32, 33), "opus": (16, 17)},
                                 p=0.8, seed=4, cache=Cache(cache.root.parent / "pool-cache"), jobs=1)
    pairs = set()
    for epoch in range(4):
        pool.set_epoch(epoch)
        pool.prepare()
        pairs |= {(i, c) for i, c in enumerate(pool.conditions()) if not c.is_original}
        x, label = pool[0]
        assert x.dtype == np.float32 and x.ndim == 1 and label == dataset.labels("train")[0]
    # 4 coded conditions at most per clip: by epoch 4 most pairs repeat, and each was coded exactly once
    assert pool.counts["coded"] == len(pairs) and pool.counts["cached"] > 0


def test_the_pool_keeps_decoded_audio_in_memory_within_its_budget(small_set, monkeypatch):
    """A pair served again comes from memory (no decode), as a copy the caller may change; the budget bounds what
    is kept (least recently used out first), 0 keeps nothing, and a pickled pool (a data-loader worker) starts empty
    with the same budget."""
    import pickle

    from codecbench.augment import pool as pool_module

    dataset, cache = small_set
    pool = CodecAugmentedDataset(dataset, conditions=["mp3@32"], cache=cache, jobs=1)
    pool.prepare()
    first = pool.item(0)
    decodes = []
    from codecbench.store import fill as fill_module

    monkeypatch.setattr(fill_module, "coded_signal", lambda *a: decodes.append(a))  # None: would fail if called
    first[:] = 0.0  # changing what was served does not change what is kept
    again = pool.item(0)
    assert not decodes and again.any() and pool._kept.used == again.nbytes
    monkeypatch.undo()
    tiny = pool_module._Recent(2 * again.nbytes)
    for key in "abc":
        tiny.put(key, again)
    assert tiny.get("a") is None and tiny.get("c") is not None and tiny.used == 2 * again.nbytes
    none = CodecAugmentedDataset(dataset, conditions=["mp3@32"], cache=cache, jobs=1, memory_bytes=0)
    assert np.array_equal(none.item(0), again) and none._kept.used == 0
    copied = pickle.loads(pickle.dumps(pool))
    assert copied._kept.used == 0 and copied._kept.budget == pool._kept.budget
    with pytest.raises(ArgumentError, match="memory_bytes: a number of bytes >= 0, got -1"):
        CodecAugmentedDataset(dataset, conditions=["mp3@32"], cache=cache, memory_bytes=-1)


def test_pool_draws_do_not_depend_on_order_or_worker_processes(small_set):
    from joblib import Parallel, delayed

    dataset, cache = small_set
    pool = CodecAugmentedDataset(dataset, codecs=["mp3", "opus", "sbc"], p=0.9, seed=7, cache=cache, jobs=1)
    pool.set_epoch(2)
    sequential = [pool.condition(i) for i in range(len(pool))]
    backwards = [pool.condition(i) for i in reversed(range(len(pool)))][::-1]
    in_workers = Parallel(n_jobs=2, backend="loky")(delayed(pool.condition)(i) for i in range(len(pool)))
    assert sequential == backwards == in_workers
    assert pool.conditions(epoch=3) != sequential  # another epoch, other draws
    first = CodecAugmentedDataset(dataset, codecs=["mp3", "opus", "sbc"], p=0.9, seed=7, cache=cache, jobs=1)
    assert first.conditions(epoch=2) == sequential  # a new pool with the same seed: the same draws


@pytest.mark.backend_matrix
def test_pool_serves_a_front_ends_features_and_a_keras_sequence(small_set):
    from codecbench.signal.frontends import BASELINE

    dataset, cache = small_set
    pool = CodecAugmentedDataset(dataset, conditions=["mp3@32", "wav"], seed=1, cache=cache, frontend="hu2020",
                                 jobs=1)
    pool.prepare()
    x, _ = pool[3]
    assert x.shape[0] == 128 and x.shape[-1] == 3 and pool.frontend == BASELINE
    sequence = pool.keras_sequence(batch_size=4)
    xb, yb = sequence[0]
    assert xb.shape[:2] == (4, 128) and yb.shape == (4, len(dataset.class_names))
    before = pool.conditions()
    sequence.on_epoch_end()
    assert pool.epoch == 1 and pool.conditions() != before


#: PyTorch runs in a process of its own, so its OpenMP threads never share a test worker with TensorFlow's
TORCH_ALONE = optional.needs("torch", optional.has_module("torch"), "PyTorch is not installed (pip install torch)")


def _python(code: str, tmp_path, timeout: int = 600) -> str:
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                          cwd=str(Path(__file__).parents[1]))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@TORCH_ALONE
def test_a_torch_dataloader_with_two_workers_serves_what_one_process_serves(small_set, tmp_path):
    dataset, cache = small_set
    out = _python(f"""
import torch
from codecbench.augment import CodecAugmentedDataset
from codecbench.core.cache import Cache
from codecbench.datasets import load_dataset
cache = Cache({str(cache.root)!r})
dataset = load_dataset({str(dataset.root)!r}, cache_dir=cache.root)
pool = CodecAugmentedDataset(dataset, codecs=["mp3", "opus"], p=0.8, seed=5, cache=cache, jobs=1)
pool.prepare()
torch_set = pool.torch_dataset()
alone = [torch_set[i][0] for i in range(len(torch_set))]
loader = torch.utils.data.DataLoader(torch_set, batch_size=1, num_workers=2, shuffle=False)
together = [x[0] for x, _ in loader]
same = len(together) == len(alone) and all(torch.equal(a, b) for a, b in zip(alone, together))
print("same" if same else "DIFFERENT", len(alone))
""", tmp_path)
    assert out.split()[-2:] == ["same", str(len(dataset.clips("train")))]


@optional.needs("audiomentations", optional.has_module("audiomentations"),
                "audiomentations is not installed (pip install audiomentations)")
def test_it_drops_into_audiomentations_compose():
    from audiomentations import Compose, Gain

    x = _clip()
    chain = Compose([Gain(min_gain_db=-6, max_gain_db=-6, p=1.0), CodecAugment(["mp3@32"], p=1.0, seed=0)])
    y = chain(samples=x, sample_rate=SR)
    assert y.shape == x.shape and chain.transforms[1].parameters["condition"] == "mp3@32"
    chain.freeze_parameters()
    assert np.array_equal(chain(samples=x, sample_rate=SR), y)


def test_export_writes_a_coded_set_that_load_dataset_reads_back(small_set, tmp_path):
    from codecbench.store.export import export

    dataset, cache = small_set
    conds = [C("wav"), C("mp3@32")]
    summary = export(dataset, "evaluate", conds, tmp_path / "coded", cache, file_format="flac", jobs=1)
    n = len(dataset.clips("evaluate"))
    assert summary.files == 2 * n and summary.written == 2 * n
    back = load_dataset(tmp_path / "coded", splits=("evaluate",))
    assert len(back.clips("evaluate")) == 2 * n and back.class_names == dataset.class_names
    coded = [c for c in back.clips("evaluate") if "/mp3_32/" in c.key]
    x, rate = sf.read(coded[0].path)
    assert rate == 44100 and len(x) == sf.info(dataset.clips("evaluate")[0].path).frames
    again = export(dataset, "evaluate", conds, tmp_path / "coded", cache, file_format="flac", jobs=1)
    assert again.written == 0 and again.skipped == 2 * n and again.coded == 0


@TORCH_ALONE
def test_the_pytorch_recipe_runs_on_a_tiny_configuration(tmp_path):
    """The worked example's flow: train with and without the pool, benchmark both, compare them on mp3@32."""
    out = _python(f"""
import importlib.util, json
spec = importlib.util.spec_from_file_location("pytorch_recipe", "examples/pytorch_recipe.py")
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)
out = recipe.main(["--dataset", "synthetic:train=2,evaluate=2,duration=1.0,seed=8", "--epochs", "2",
                   "--cache-dir", {str(tmp_path / "cache")!r}, "--jobs", "1"])
frame = out["frame"]
print(json.dumps({{"models": sorted(set(frame["model"])), "conditions": sorted(set(frame["condition"])),
                  "n": out["mp3@32"]["n"], "p": out["mp3@32"]["p_value"]}}))
""", tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["models"] == ["augmented", "plain"] and result["conditions"] == ["mp3@32", "wav"]
    assert result["n"] == 20 and 0.0 <= result["p"] <= 1.0
    assert "exact McNemar p =" in out and "epoch 2/2" in out


def test_the_fixed_mode_is_the_fine_tuning_set_codecbench_trains_on(small_set):
    """every=True: each clip under each condition, condition by condition, the same every epoch; its reader is what
    codecbench's own Keras fine-tuning reads (one implementation)."""
    from codecbench.remedies.recipe import training_set

    dataset, cache = small_set
    conds = [C("wav"), C("mp3@64")]
    pool = CodecAugmentedDataset(dataset, conditions=conds, every=True, frontend="hu2020", cache=cache, jobs=1)
    n = len(dataset.clips("train"))
    assert len(pool) == 2 * n and pool.condition(0) == C("wav") and pool.condition(n) == C("mp3@64")
    assert pool.conditions(epoch=0) == pool.conditions(epoch=5)
    pool.prepare()
    data = training_set(dataset, conds, cache, jobs=1)
    assert data.features.keys == pool.reader().keys and data.features.conditions == pool.conditions()
    assert np.array_equal(data.labels, [pool.label(i) for i in range(len(pool))])
    assert np.array_equal(data.features.get(n + 1), pool[n + 1][0])
    with pytest.raises(Exception, match="every=True serves fixed conditions"):
        CodecAugmentedDataset(dataset, codecs=["mp3"], every=True, cache=cache)


def test_the_tf_data_adaptor_serves_the_current_epoch(small_set):
    dataset, cache = small_set
    pool = CodecAugmentedDataset(dataset, conditions=["mp3@32"], p=0.5, seed=2, cache=cache, jobs=1)
    pool.prepare()
    items = list(pool.tf_dataset().take(3).as_numpy_iterator())
    assert len(items) == 3 and all(x.dtype == np.float32 and x.ndim == 1 for x, _ in items)
    assert [int(y) for _, y in items] == list(dataset.labels("train")[:3])
    assert np.array_equal(items[1][0], pool.item(1))
