"""Numbers that are not numbers: NaN and infinity are refused by every option's validator, training stops with a
named error when its loss is not finite, and a model with non-finite weights is never saved."""
import numpy as np
import pytest

from codecbench.cli import main
from codecbench.errors import ModelError
from codecbench.run.spec import to_non_negative_float, to_positive_float, to_positive_int


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", float("nan"), float("inf")])
def test_every_numeric_validator_refuses_nan_and_infinity(value):
    for convert in (to_positive_float, to_non_negative_float, to_positive_int):
        with pytest.raises(Exception, match="--x: expected"):
            convert(value, "--x")


@pytest.mark.parametrize("argv", [
    ["postfilter", "train", "--from", "base", "--lr", "nan"],
    ["consistency", "--from", "base", "--lr", "nan"],
    ["cache", "gc", "--older-than", "nan"],
    ["dataset", "download", "esc50", "--to", "x", "--timeout", "inf"],
])
def test_commands_refuse_nan_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "expected a positive number" in err and ("'nan'" in err or "'inf'" in err)


def test_training_stops_with_a_named_error_when_the_loss_is_not_finite():
    from codecbench.core.backend import keras
    from codecbench.training.loop import FiniteLossGuard, NonFiniteLoss

    guard = FiniteLossGuard("post-filter training")
    guard.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.9})  # finite: nothing happens
    with pytest.raises(NonFiniteLoss, match="post-filter training stopped at epoch 3: loss is nan"):
        guard.on_epoch_end(2, {"loss": float("nan")})
    assert issubclass(NonFiniteLoss, ModelError)
    # in a real fit: inputs that are not finite make the loss NaN, and fit stops there
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.full((8, 4), np.inf, dtype=np.float32)
    with pytest.raises(NonFiniteLoss, match="epoch 1"):
        model.fit(x, np.zeros(8), epochs=3, verbose=0, callbacks=[FiniteLossGuard()])


def test_a_model_with_non_finite_weights_is_not_saved(tmp_path):
    from codecbench.core.backend import keras
    from codecbench.zoo import Zoo, ZooError

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    kernel, bias = model.layers[0].get_weights()
    kernel[0, 0] = np.nan
    model.layers[0].set_weights([kernel, bias])
    zoo = Zoo(tmp_path / "zoo")
    with pytest.raises(ZooError, match="weights that are not finite"):
        zoo.save("broken", model, {"class_names": ["a", "b"]})
    assert not (tmp_path / "zoo").exists() or not list((tmp_path / "zoo").glob("broken*"))
