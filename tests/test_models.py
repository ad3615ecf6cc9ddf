import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from codecbench.models import (
    CheckpointError,
    build_fcnn,
    derive_segments,
    freeze_except,
    load_model,
    parse_segments,
    preset_config,
    save_model,
)
from codecbench.models.legacy import load_legacy_hdf5

CHECKPOINT = Path(__file__).resolve().parent / "data" / "models" / "smallfcnn-model-0.9618.hdf5"
KNOWN_ANSWER = np.array([[0.0050404258, 0.0005491715, 0.9944103360], [0.0102683045, 0.0003281037, 0.9894036055]])


def known_input():
    b, f, t, c = np.meshgrid(np.arange(2), np.arange(128), np.arange(461), np.arange(6), indexing="ij")
    return (0.5 + 0.5 * np.sin(0.013 * (f + 1) * (c + 1) + 0.007 * t * (b + 1))).astype(np.float32)


@pytest.mark.backend_matrix
def test_paper_preset_has_the_baselines_parameter_count():
    model = build_fcnn(preset_config("paper", (128, 423, 3), 10))
    assert model.count_params() == 11_786_711
    segments = derive_segments(model)
    assert len(segments) == 10
    assert [s.kind for s in segments] == ["conv"] * 9 + ["dense"]
    assert segments[0].layers == ("seg01_input_bn", "seg01_conv", "seg01_bn")
    assert segments[9].layers == ("seg10_att_dense1", "seg10_att_dense2")
    assert sum(s.params for s in segments) == 11_786_711


def test_model_accepts_any_clip_length():
    model = build_fcnn(preset_config("small", (128, 71, 3), 10))
    for frames in (40, 71, 150):
        assert model(np.zeros((1, 128, frames, 3), np.float32)).shape == (1, 10)


def test_segments_rule_holds_for_another_keras_model():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.BatchNormalization()(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3)(keras.layers.Dense(8)(x))
    segments = derive_segments(keras.Model(inputs, x))
    assert [len(s.layers) for s in segments] == [3, 1, 2] and segments[-1].kind == "dense"


def test_parse_segments():
    assert parse_segments("1-3,7", 10) == [1, 2, 3, 7]
    with pytest.raises(ValueError, match="1 to 10"):
        parse_segments("11", 10)
    with pytest.raises(ValueError, match="expected numbers"):
        parse_segments("seven", 10)


def test_freeze_except_marks_only_the_chosen_segment_trainable():
    model = build_fcnn(preset_config("small", (128, 71, 3), 10))
    freeze_except(model, [7])
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert trainable == {"seg07_conv", "seg07_bn"}


@pytest.mark.backend_matrix
def test_real_legacy_checkpoint_loads_by_weights_and_matches_keras():
    model, config = load_legacy_hdf5(CHECKPOINT)
    assert config.input_shape == (128, 461, 6) and config.n_classes == 3 and model.count_params() == 234_166
    ours = keras.ops.convert_to_numpy(model(known_input(), training=False))
    np.testing.assert_allclose(ours, KNOWN_ANSWER, atol=1e-5)
    reference = keras.models.load_model(CHECKPOINT, compile=False).predict(known_input(), verbose=0)
    assert np.abs(ours - reference).max() < 1e-4


@pytest.mark.backend_matrix
def test_lambda_layers_are_refused_without_trust(tmp_path):
    path = tmp_path / "with_lambda.hdf5"
    path.write_bytes(CHECKPOINT.read_bytes())
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"].insert(1, {"class_name": "Lambda", "config": {"name": "evil", "function": "..."},
                                              "inbound_nodes": []})
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(CheckpointError, match="Lambda layer.*evil.*executable code"):
        load_model(path)


def test_a_file_that_does_not_fit_is_refused(tmp_path):
    path = tmp_path / "dense.hdf5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_model(path)


@pytest.mark.backend_matrix
def test_keras_format_round_trip_with_metadata(tmp_path):
    model = build_fcnn(preset_config("small", (128, 71, 3), 10))
    x = np.random.default_rng(0).random((2, 128, 71, 3)).astype(np.float32)
    save_model(model, tmp_path / "m.keras", {"class_names": list("abcdefghij"), "preset": "small"})
    loaded, meta = load_model(tmp_path / "m.keras")
    assert meta["class_names"][0] == "a" and meta["params"] == model.count_params() and len(meta["sha256"]) == 64
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    assert not list(tmp_path.glob(".*tmp*"))


def test_the_default_schedule_ends_at_a_cycles_end_and_others_say_where_they_end():
    """train's default ended inside a warm-restart cycle (30 epochs: 69 % of the peak rate); the default is now a
    cycle's end, and an epoch count inside a cycle is named with the cycle ends around it."""
    from codecbench.training.schedule import TrainConfig

    default = TrainConfig()
    assert default.epochs in default.cycle_ends(100) and default.cycle_note() is None
    assert default.cycle_ends(100) == [3, 9, 21, 45, 93]
    note = TrainConfig(epochs=30).cycle_note()
    assert note is not None and "at 69 % of that cycle's peak rate" in note and "epoch 21, 45" in note


@pytest.mark.parametrize("preset", ["paper", "small"])
def test_the_parameter_count_without_building_is_the_models(preset):
    from codecbench.models.fcnn import build_fcnn, parameter_count, preset_config

    config = preset_config(preset, (128, 423, 3), 10)
    assert parameter_count(config) == build_fcnn(config).count_params()


def test_a_segments_training_step_is_priced_by_its_arithmetic():
    """Counted by hand on two segments: a 3x3 convolution over 8 x 10 positions and a dense layer of 4 x 3."""
    from codecbench.core.backend import keras
    from codecbench.models import forward_flops, training_step_shares

    inputs = keras.Input((8, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    conv, dense = 2 * 3 * 3 * 1 * 4 * 8 * 10, 2 * 4 * 3
    assert forward_flops(model, 10) == {1: conv, 2: dense}
    forward = conv + dense
    full = 3 * forward - conv  # the first segment's input gradient is never needed
    # segment 1: the forward pass, the dense layer's input gradient and the convolution's weight gradient
    shares = training_step_shares(model, 10)
    assert shares == pytest.approx({1: (forward + dense + conv) / full, 2: (forward + dense) / full})
    # the paper FCNN: later segments stop the backward pass earlier, so they cost less
    paper = training_step_shares(build_fcnn(preset_config("paper")), 400)
    assert len(paper) == 10 and all(0.3 < s < 0.7 for s in paper.values())
    assert [paper[k] for k in range(1, 11)] == sorted(paper.values(), reverse=True)


def test_bench_model_times_each_segment_alone_beside_its_arithmetic():
    """``bench model --segments``' measurement on a model of three segments (the paper's takes minutes on a CPU): a
    rate and both shares for every segment, all weights trainable again afterwards."""
    import keras as k

    from codecbench.bench.model_speed import _segment_steps

    inputs = k.Input((8, None, 1))  # three segments: a convolution with its batch norm, a convolution, a dense layer
    x = k.layers.BatchNormalization()(k.layers.Conv2D(2, 3, padding="same")(inputs))
    x = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(2, 3, padding="same")(x))
    model = k.Model(inputs, k.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=k.optimizers.SGD(0.01), loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 8, 16, 1), dtype=np.float32)
    y = k.utils.to_categorical(np.arange(4) % 10, 10)
    model.train_on_batch(x, y)
    rows = _segment_steps(model, x, y, full_seconds=1.0, repeats=1)
    assert sorted(rows) == [1, 2, 3]
    assert all(r["examples_per_s"] > 0 and r["share_measured"] == pytest.approx(4 / r["examples_per_s"])
               and 0 < r["share_arithmetic"] < 1 for r in rows.values())
    assert all(layer.trainable for layer in model.layers if layer.weights)
