import dataclasses

import keras
import numpy as np
import pytest

from codecbench.errors import UsageError
from codecbench.models import build_fcnn, preset_config
from codecbench.remedies.finetune import finetune, train_base
from codecbench.remedies.recipe import ModelMismatch, check_fits
from codecbench.zoo import Zoo, ZooError, compare

from . import optional


def test_zoo_holds_the_named_models_with_provenance(tiny):
    zoo = tiny["zoo"]
    assert zoo.names() == ["base", "finetuned_full@e1", "finetuned_seg9", "finetuned_seg10"]
    meta = zoo.metadata("finetuned_seg10")
    assert meta["strategy"] == "segment 10" and meta["parent"] == "base"
    assert meta["parent_sha256"] == zoo.sha256("base")
    assert meta["finetune_conditions"] == ["wav", "mp3@64"]
    assert meta["dataset"]["fingerprint"] == tiny["dataset"].fingerprint("train")
    assert {"keras", "numpy", "av"} <= set(meta["libraries"])
    assert meta["class_names"] == tiny["dataset"].class_names and meta["training_seconds"] > 0
    with pytest.raises(ZooError, match="unknown model 'finetuned_seg7'.*available: base"):
        zoo.resolve("finetuned_seg7")


@pytest.mark.backend_matrix
def test_frozen_segments_stay_bit_identical_batchnorm_statistics_included(tiny):
    zoo = tiny["zoo"]
    base, _ = zoo.load("base")
    tuned, _ = zoo.load("finetuned_seg9")
    changed = {l.name for l, m in zip(base.layers, tuned.layers)
               if any(not np.array_equal(a, b) for a, b in zip(l.get_weights(), m.get_weights()))}
    assert changed and changed <= {"seg09_conv", "seg09_bn", "seg09_bn2"}
    assert "seg09_conv" in changed
    for lb, lt in zip(base.layers, tuned.layers):
        if lb.name.startswith(("seg01", "seg05", "seg08", "seg10")):
            for a, b in zip(lb.get_weights(), lt.get_weights()):
                np.testing.assert_array_equal(a, b)


@pytest.mark.backend_matrix
def test_full_finetuning_changes_every_segment(tiny):
    base, _ = tiny["zoo"].load("base")
    full, meta = tiny["zoo"].load("finetuned_full@e1")
    assert meta["strategy"] == "full" and meta["epochs"] == 1
    for name in ("seg01_conv", "seg05_conv", "seg10_att_dense2"):
        assert not np.array_equal(base.get_layer(name).get_weights()[0], full.get_layer(name).get_weights()[0])


@pytest.mark.backend_matrix
def test_same_seed_same_weights(tiny, tmp_path):
    config = dataclasses.replace(tiny["config"], epochs=1)
    zoos = [Zoo(tmp_path / f"z{i}") for i in range(2)]
    for zoo in zoos:
        train_base(zoo, tiny["dataset"], tiny["cache"], config=config, jobs=1, verbose=0)
    assert compare(zoos[0], zoos[1]) == [{"model": "base", "max_abs_diff": 0.0, "note": "bit-identical"}]
    rows = {r["model"]: r for r in compare(tiny["zoo"], zoos[0])}
    assert rows["base"]["max_abs_diff"] > 0  # two epochs against one
    assert rows["finetuned_seg9"]["note"].startswith("missing in")


def test_a_model_that_does_not_fit_is_refused(tiny, tmp_path):
    zoo = Zoo(tmp_path / "zoo")
    wrong = build_fcnn(preset_config("small", (128, 36, 3), 5))
    zoo.save("base", wrong, {"config": {}})
    base = zoo.parent("base", "fine-tuning")
    with pytest.raises(ModelMismatch, match="predicts 5 classes, dataset synthetic has 10"):
        finetune(zoo, base, tiny["dataset"], tiny["matrix"], tiny["cache"], epochs=1, config=tiny["config"],
                 jobs=1, verbose=0)
    sample = np.zeros((64, 36, 3), np.float32)
    with pytest.raises(ModelMismatch, match=r"takes input \(128, None, 3\)"):
        check_fits(build_fcnn(preset_config("small", (128, 36, 3), 10)), tiny["dataset"], sample, "m")


def test_unavailable_finetuning_conditions_are_skipped_and_recorded(tiny, tmp_path):
    from codecbench.codecs import availability
    from codecbench.codecs.matrix import parse_matrix

    if availability("he-aac@32")[0]:
        optional.not_applicable("libfdk_aac is installed, HE-AAC is available here")
    matrix = parse_matrix({"finetune": {"conditions": ["he-aac@32"], "include_original": True},
                           "categories": {"a": {"conditions": ["wav"]}}}, "m.toml")
    zoo = Zoo(tmp_path / "zoo")
    zoo.save("base", tiny["zoo"].load("base")[0], tiny["zoo"].metadata("base"))
    base = zoo.parent("base", "fine-tuning")
    with pytest.warns(UserWarning, match="he-aac@32 skipped: libfdk_aac not found"):
        finetune(zoo, base, tiny["dataset"], matrix, tiny["cache"], segments=[10], epochs=1,
                 config=tiny["config"], jobs=1, verbose=0)
    meta = zoo.metadata("finetuned_seg10")
    assert meta["finetune_conditions"] == ["wav"] and meta["finetune_conditions_skipped"] == ["he-aac@32"]


def test_checkpoint_after_each_epoch_and_resume(tiny, tmp_path, monkeypatch):
    config = dataclasses.replace(tiny["config"], epochs=1)
    zoo = Zoo(tmp_path / "zoo")
    checkpoint = Zoo(zoo.root / "checkpoints")
    written = []
    original_save = Zoo.save

    def recording_save(self, name, model, metadata, **kwargs):
        if self.root == checkpoint.root:
            written.append((name, metadata["epochs"]))
        return original_save(self, name, model, metadata, **kwargs)

    monkeypatch.setattr(Zoo, "save", recording_save)
    train_base(zoo, tiny["dataset"], tiny["cache"], config=config, jobs=1, verbose=0)
    assert written == [("base", 1)] and checkpoint.names() == []  # written each epoch, removed once final
    checkpoint.save("base", zoo.load("base")[0], zoo.metadata("base"))  # what a Ctrl-C after epoch 1 leaves:
    for leftover in (zoo.root / "base.keras", zoo.root / "base.json"):  # a checkpoint, no finished model
        leftover.unlink()
    train_base(zoo, tiny["dataset"], tiny["cache"], config=dataclasses.replace(config, epochs=2), jobs=1,
               verbose=0, resume=True)
    meta = zoo.metadata("base")
    assert meta["epochs"] == 2 and [row["epoch"] for row in meta["epoch_log"]] == [1, 2]


@pytest.mark.backend_matrix
def test_model_code_trains_fine_tunes_one_segment_shares_prefixes_and_runs_mixed_precision():
    """Training, fine-tuning one segment, prefix-shared evaluation and mixed precision, on the Keras backend of the
    run (CI's backend matrix runs it under JAX and PyTorch too; it ran in a JAX subprocess, 100 s here)."""
    import keras

    from codecbench.models import derive_segments
    from codecbench.models.prefix import SharedPrefixPredictor
    from codecbench.training.loop import array_getter, fit
    from codecbench.training.precision import with_precision
    from codecbench.training.schedule import TrainConfig

    base = build_fcnn(preset_config("small", (128, 36, 3), 10))
    x = np.random.default_rng(0).random((16, 128, 36, 3), dtype=np.float32)
    y = np.arange(16) % 10
    config = TrainConfig(epochs=1, batch_size=8, crop_frames=24, time_mask_frames=4)
    fit(base, array_getter(x), y, config, verbose=0)  # training
    seg7 = keras.models.clone_model(base)
    seg7.set_weights(base.get_weights())
    before = [w.copy() for w in seg7.get_weights()]
    fit(seg7, array_getter(x), y, config, segments=[7], verbose=0)  # fine-tuning one segment
    # only segment 7's weights moved (its moving statistics included)
    changed = {v.path.split("/")[0] for v, b in zip(seg7.weights, before) if not np.array_equal(np.asarray(v), b)}
    assert changed and changed <= set(derive_segments(seg7)[6].layers)
    shared = SharedPrefixPredictor({"base": base, "seg7": seg7}).predict(x)  # evaluation, prefix shared
    alone = {k: np.asarray(m.predict_on_batch(x)) for k, m in (("base", base), ("seg7", seg7))}
    for k in alone:
        assert np.array_equal(shared[k].argmax(1), alone[k].argmax(1))
        assert float(np.abs(shared[k] - alone[k]).max()) <= 1e-6
    # bfloat16 moves probabilities by far less than 0.05: no decision with a margin over 0.1 flips
    mixed = np.asarray(with_precision(base, "mixed_bfloat16").predict_on_batch(x))
    assert float(np.abs(mixed - alone["base"]).max()) < 0.05
    top2 = np.sort(alone["base"], 1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.1
    assert not np.any(clear & (mixed.argmax(1) != alone["base"].argmax(1)))


def test_the_finetune_command_prints_each_epoch_with_validation_accuracy(tiny, tmp_path, capsys):
    """Progress that fits real data: one line per epoch with loss, training accuracy and the evaluation split's
    accuracy under the conditions asked for."""
    import shutil

    from codecbench.cli import main

    zoo = tmp_path / "zoo"
    shutil.copytree(tiny["zoo"].root, zoo, ignore=shutil.ignore_patterns("finetuned_*"))
    assert main(["finetune", "--full", "--epochs", "2", "--batch-size", "8", "--crop", "24", "--dataset", tiny["spec"],
                 "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"]), "--model-dir",
                 str(zoo), "--validate", "wav,mp3@32", "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("full fine-tuning: epoch")]
    assert [line.split(" (")[0] for line in lines] == ["full fine-tuning: epoch 1/2", "full fine-tuning: epoch 2/2"]
    assert all("validation accuracy (" in line and ") wav " in line and ", mp3@32 " in line for line in lines)
    # each figure says which batch-norm statistics it used: the saved epoch's are the saved model's
    assert "(running batch-norm statistics)" in lines[0] and "(batch-norm statistics re-estimated, as saved)" in \
        lines[-1]
    from codecbench.zoo import Zoo
    log = Zoo(zoo).metadata("finetuned_full@e2")["epoch_log"]
    assert set(log[-1]["validation_accuracy"]) == {"wav", "mp3@32"}


@pytest.mark.backend_matrix
def test_segments_trained_together_on_one_pass_match_each_trained_alone(tiny, tmp_path, monkeypatch):
    """Experiment B's shared pass: two segments (two learning rates: conv and dense) trained in threads on
    batches read once give the weights, batch-norm statistics included, and epoch losses of each trained alone."""
    from codecbench.training.loop import AugmentedBatches

    reads = []
    batch_of = AugmentedBatches.batch_of
    monkeypatch.setattr(AugmentedBatches, "batch_of", lambda self, epoch, index: (reads.append((epoch, index)),
                                                                                  batch_of(self, epoch, index))[1])
    config = dataclasses.replace(tiny["config"], mixup_alpha=0.4)  # crops, masks and mixup: all drawn per batch
    base = tiny["zoo"].parent("base", "fine-tuning")
    if keras.backend.backend() == "torch":  # dropout from torch's one global generator: refused, not approximated
        with pytest.raises(UsageError, match="needs the TensorFlow or JAX backend"):
            finetune(Zoo(tmp_path / "torch"), base, tiny["dataset"], tiny["matrix"], tiny["cache"], segments=[9, 10],
                     epochs=1, config=config, jobs=1, verbose=0, shared_pass=True)
        return
    zoos, counted, lines = {}, {}, []
    for together in (False, True):
        reads.clear()
        zoos[together] = Zoo(tmp_path / f"together-{together}")
        finetune(zoos[together], base, tiny["dataset"], tiny["matrix"], tiny["cache"], segments=[9, 10],
                 epochs=2, config=config, jobs=1, verbose=0, shared_pass=together, progress=lines.append)
        counted[together] = len(reads)
    assert counted[False] == 2 * counted[True] > 0  # each batch read once, not once per segment
    assert any("train together on one pass of the data" in line for line in lines)
    for k in (9, 10):
        name = f"finetuned_seg{k}"
        alone, alone_meta = zoos[False].load(name)
        shared, shared_meta = zoos[True].load(name)
        for a, b in zip(alone.weights, shared.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}: {a.path}")
        assert [r["loss"] for r in alone_meta["epoch_log"]] == [r["loss"] for r in shared_meta["epoch_log"]]
        # the original and mp3@64 of every training clip, in batches, for two epochs
        per_training = 2 * -(-2 * len(tiny["dataset"].clips("train")) // config.batch_size)
        assert shared_meta["shared_pass"] == {"segments": [9, 10], "batches_read": counted[True],
                                              "batches_per_training": per_training}
        assert per_training <= counted[True] < 2 * per_training
        assert "shared_pass" not in alone_meta
