"""Prefix-shared evaluation: sharing found from weights, predictions identical to running each model alone."""
from __future__ import annotations

import numpy as np
import pytest

from codecbench.codecs import parse_condition as C
from codecbench.core.backend import keras
from codecbench.models import build_fcnn, derive_segments, preset_config
from codecbench.models.prefix import SharedPrefixPredictor, _topological_nodes, cuts

SHAPE = (128, 20, 3)


def _fcnn(seed: int = 0, name: str = "fcnn"):
    keras.utils.set_random_seed(seed)
    return build_fcnn(preset_config("small", SHAPE, 10), name=name)


def _copy_with_segment_changed(model, segment: int, name: str):
    """A 'segment-k fine-tuned' copy: the same network, segment k's weights perturbed (layer names unchanged)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    layers = derive_segments(copy)[segment - 1].layers
    rng = np.random.default_rng(segment)
    for layer_name in layers:
        layer = copy.get_layer(layer_name)
        layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in layer.get_weights()])
    return copy


def _alone(model, x, batch):
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch])) for i in range(0, len(x), batch)])


@pytest.fixture(scope="module")
def zoo_like():
    base = _fcnn()
    return {"base": base, **{f"seg{k}": _copy_with_segment_changed(base, k, f"seg{k}") for k in (1, 4, 7, 10)},
            "other": _fcnn(seed=1)}


@pytest.mark.backend_matrix
def test_predictions_are_identical_to_each_model_alone(zoo_like):
    x = np.random.default_rng(0).random((24, *SHAPE), dtype=np.float32)
    predictor = SharedPrefixPredictor(zoo_like)
    shared = predictor.predict(x, batch_size=8)
    for key, model in zoo_like.items():
        alone = _alone(model, x, 8)
        assert np.array_equal(shared[key].argmax(1), alone.argmax(1)), key
        np.testing.assert_allclose(shared[key], alone, rtol=0, atol=1e-6, err_msg=key)


def test_sharing_is_found_from_weights_and_saves_work(zoo_like):
    predictor = SharedPrefixPredictor(zoo_like)
    # segment-k copies share everything before segment k with base; 'other' (other weights) shares nothing
    flops = predictor.flops(SHAPE)
    assert flops["ratio"] > 1.2
    base_cuts = cuts(zoo_like["base"])
    seg7_cuts = cuts(zoo_like["seg7"])
    common = sum(a.digest == b.digest for a, b in zip(base_cuts, seg7_cuts))
    first_seg7_layer = derive_segments(zoo_like["seg7"])[6].layers[0]
    # the shared prefix ends exactly where segment 7's first weighted layer starts
    names = [n.operation.name for n in _topological_nodes(zoo_like["seg7"])]
    assert base_cuts[common - 1].position <= names.index(first_seg7_layer)
    assert base_cuts[common].position > names.index(first_seg7_layer)
    other = cuts(zoo_like["other"])
    # independently initialised: only the freshly initialised input batch norm (unit scale, zero shift, zero
    # mean, unit variance in both) is the same; from the first convolution on nothing is shared
    first_conv = names.index("seg01_conv")
    assert all(a.digest != b.digest for a, b in zip(base_cuts, other) if a.position > first_conv)
    assert predictor.calls_per_batch > len(zoo_like)  # shared prefixes, then each model's own suffix


def test_names_do_not_matter_but_weights_do(zoo_like):
    base = zoo_like["base"]
    renamed = keras.models.clone_model(base, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "name": "user_" + layer.name}))
    renamed.set_weights(base.get_weights())
    assert [c.digest for c in cuts(renamed)] == [c.digest for c in cuts(base)]
    nudged = _copy_with_segment_changed(base, 1, "nudged")
    assert cuts(nudged)[0].digest != cuts(base)[0].digest


def test_a_branching_user_model_is_cut_only_where_one_tensor_carries_everything():
    inputs = keras.Input((16,))
    a = keras.layers.Dense(8, name="a")(inputs)
    left = keras.layers.Dense(8, name="left")(a)
    right = keras.layers.Dense(8, name="right")(a)
    merged = keras.layers.Add(name="add")([left, right])
    out = keras.layers.Dense(3, activation="softmax", name="out")(merged)
    model = keras.Model(inputs, out)
    positions = [c.tensor._keras_history[0].name for c in cuts(model)]
    assert positions == ["a", "add", "out"]  # never 'left' or 'right': both are needed downstream
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    twin.get_layer("out").set_weights([w * 2 for w in twin.get_layer("out").get_weights()])
    x = np.random.default_rng(1).random((10, 16), dtype=np.float32)
    shared = SharedPrefixPredictor({"m": model, "t": twin}).predict(x)
    np.testing.assert_allclose(shared["m"], np.asarray(model.predict_on_batch(x)), atol=1e-6)
    np.testing.assert_allclose(shared["t"], np.asarray(twin.predict_on_batch(x)), atol=1e-6)


def test_a_subclassed_model_runs_whole():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.dense(x)

    net = Net()
    x = np.ones((4, 5), dtype=np.float32)
    net(x)
    assert cuts(net) is None
    predictor = SharedPrefixPredictor({"net": net})
    assert "net" in predictor.whole
    np.testing.assert_allclose(predictor.predict(x)["net"], np.asarray(net.predict_on_batch(x)), atol=1e-7)


@pytest.mark.backend_matrix
def test_evaluate_many_matches_evaluate_on_a_zoo(tiny):
    from .evaluators import split_evaluator

    names = [tiny["zoo"].entry(m) for m in ("base", "finetuned_full@e1", "finetuned_seg9", "finetuned_seg10")]
    args = (tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"])
    shared = split_evaluator(*args, jobs=1, log=lambda m: None)
    alone = split_evaluator(*args, jobs=1, log=lambda m: None, share_prefix=False)
    together = shared.evaluate_many(names, C("mp3@32"))
    for name, result in zip(names, together):
        reference = alone.evaluate(name, C("mp3@32"))
        assert result.predictions == reference.predictions and result.correct == reference.correct, name
    assert shared.counts["evaluations"] == len(names)
    assert len(shared._predictors) == 1


@pytest.mark.backend_matrix
def test_mixed_precision_evaluation_runs_and_is_recorded_as_such(tiny):
    from .evaluators import split_evaluator

    args = (tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"])
    mixed = split_evaluator(*args, jobs=1, log=lambda m: None, precision="mixed_bfloat16")
    scoring = mixed.model(tiny["zoo"].entry("base"))
    policies = {layer.dtype_policy.name for layer in scoring.keras_model.layers[1:-1]}
    assert policies == {"mixed_bfloat16"}
    assert scoring.keras_model.layers[-1].dtype_policy.name == "float32"  # the softmax stays float32
    result = mixed.evaluate(tiny["zoo"].entry("base"), C("wav"))
    reference = split_evaluator(*args, jobs=1, log=lambda m: None).evaluate(tiny["zoo"].entry("base"), C("wav"))
    assert result.n == reference.n
    # bfloat16 keeps 8 bits of mantissa: probabilities move by far less than 0.05, so a decision whose float32
    # margin (top-1 minus top-2) exceeds 0.1 cannot flip; only near-ties may
    reference_model = split_evaluator(*args, jobs=1, log=lambda m: None).model(tiny["zoo"].entry("base")).keras_model
    shape = [d if d is not None else 100 for d in reference_model.input_shape[1:]]   # any length of time
    x = np.random.default_rng(0).normal(size=(64, *shape)).astype("float32")
    p32 = np.asarray(reference_model.predict_on_batch(x))
    p16 = np.asarray(scoring.keras_model.predict_on_batch(x))
    assert np.max(np.abs(p16 - p32)) < 0.05
    top2 = np.sort(p32, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.1
    assert clear.sum() >= 8 and np.array_equal(p16[clear].argmax(1), p32[clear].argmax(1))
