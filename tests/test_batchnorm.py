"""Batch-normalisation statistics that match the weights: stale statistics (made on purpose) are flagged, naming the
cause, and repaired by the re-estimation without a weight changing; frozen layers keep theirs; training and
fine-tuning record both in the sidecar."""
from __future__ import annotations

import numpy as np
import pytest


def _numpy(variable) -> np.ndarray:
    from codecbench.core.backend import keras

    return keras.ops.convert_to_numpy(variable)


def _learnable(seed: int = 0):
    """A small conv net with batch normalisation that learns separable inputs (offset 3, scale 5: the statistics
    matter) to near 100 % in a few epochs."""
    from codecbench.core.backend import keras

    rng = np.random.default_rng(seed)
    labels = np.arange(160) % 4
    patterns = rng.normal(0, 1, (4, 8, 8, 1)).astype(np.float32)
    x = (3.0 + 5.0 * (patterns[labels] + 0.3 * rng.normal(0, 1, (160, 8, 8, 1)))).astype(np.float32)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, padding="same"),
                              keras.layers.BatchNormalization(name="bn1"), keras.layers.ReLU(),
                              keras.layers.Dropout(0.2), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=15, batch_size=16, verbose=0)
    return model, x, labels


def test_stale_statistics_are_flagged_and_repaired_without_touching_a_weight():
    from codecbench.training import batchnorm

    model, x, labels = _learnable()
    get = lambda idx: x[idx]
    bn = model.get_layer("bn1")
    bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, "float32"))  # as if no step had updated them
    bn.moving_variance.assign(np.ones(bn.moving_variance.shape, "float32"))
    weights = [_numpy(w) for w in (bn.gamma, bn.beta, *model.layers[0].weights)]
    stale = batchnorm.check(model, get, labels)
    assert stale["training_accuracy"] >= 0.9 and "flag" in stale, stale
    assert "batch-normalisation statistics do not match its weights" in stale["flag"]
    assert np.all(_numpy(bn.moving_mean) == 0)  # the check changed nothing
    done = batchnorm.reestimate(model, get, len(labels))
    assert done["examples"] == 160 and done["layers"] == 1
    repaired = batchnorm.check(model, get, labels)
    assert "flag" not in repaired and repaired["inference_accuracy"] >= repaired["training_accuracy"] - 0.05
    after = [_numpy(w) for w in (bn.gamma, bn.beta, *model.layers[0].weights)]
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))
    # the re-estimated mean is the inputs' own: the conv's outputs averaged over every example
    conv_out = _numpy(model.layers[0](x))
    np.testing.assert_allclose(_numpy(bn.moving_mean), conv_out.mean(axis=(0, 1, 2)), rtol=1e-4,
                               atol=1e-4)


def test_frozen_layers_keep_their_statistics():
    from codecbench.training import batchnorm

    model, x, labels = _learnable()
    bn = model.get_layer("bn1")
    bn.trainable = False
    before = _numpy(bn.moving_mean)
    assert batchnorm.reestimate(model, lambda idx: x[idx], len(labels)) == {"examples": 0, "layers": 0}
    assert np.array_equal(_numpy(bn.moving_mean), before)


def test_trained_and_fine_tuned_models_record_the_reestimation_and_the_check(tiny):
    for name in ("base", "finetuned_full@e1", "finetuned_seg9"):
        meta = tiny["zoo"].metadata(name)
        assert meta["batchnorm"]["reestimated"]["examples"] > 0, name
        assert {"inference_accuracy", "training_accuracy"} <= set(meta["batchnorm"]["check"]), name
    # segment fine-tuning re-estimates the trained segment's layers only (frozen ones stay bit-identical)
    assert tiny["zoo"].metadata("finetuned_seg9")["batchnorm"]["reestimated"]["layers"] == 2


@pytest.mark.parametrize("flagged", [True, False])
def test_a_flagged_model_is_named_at_benchmark_time(tiny, tmp_path, flagged):
    import json
    import shutil

    from codecbench.run.session import flagged_models
    from codecbench.zoo import Zoo

    folder = tmp_path / "zoo"
    shutil.copytree(tiny["zoo"].root, folder)
    sidecar = folder / "base.json"
    meta = json.loads(sidecar.read_text())
    if flagged:
        meta["batchnorm"]["check"]["flag"] = "inference-mode accuracy on its own training clips is 0.290"
    sidecar.write_text(json.dumps(meta))
    found = flagged_models([Zoo(folder).entry(n) for n in ("base", "finetuned_seg9")])
    assert (found == {"base": "inference-mode accuracy on its own training clips is 0.290"}) is flagged
    assert flagged or found == {}


def test_resume_refuses_a_changed_schedule_unless_asked_and_then_records_both(tiny, tmp_path):
    import dataclasses

    from codecbench.errors import UsageError
    from codecbench.remedies.finetune import train_base
    from codecbench.zoo import Zoo

    zoo = Zoo(tmp_path / "zoo")
    model, meta = tiny["zoo"].load("base")
    earlier = dataclasses.replace(tiny["config"], epochs=1, learning_rate=0.2)  # epochs may grow on resume
    Zoo(zoo.root / "checkpoints").save("base", model, {**meta, "epochs": 1, "epoch_log": meta["epoch_log"][:1],
                                                       "schedule": dataclasses.asdict(earlier)})
    with pytest.raises(UsageError, match=r"another schedule \(learning_rate 0.2 -> 0.05\).*--allow-schedule-change"):
        train_base(zoo, tiny["dataset"], tiny["cache"], config=dataclasses.replace(tiny["config"], epochs=2),
                   jobs=1, verbose=0, resume=True)
    train_base(zoo, tiny["dataset"], tiny["cache"], config=dataclasses.replace(tiny["config"], epochs=2), jobs=1,
               verbose=0, resume=True, schedule_change=True)
    saved = zoo.metadata("base")
    assert saved["schedule"]["learning_rate"] == 0.05 and len(saved["epoch_log"]) == 2
    assert saved["schedule_history"] == [{"until_epoch": 1, "schedule": dataclasses.asdict(earlier)}]
