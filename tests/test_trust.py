"""Nothing from a model folder runs code unless the user allowed it: for every model kind."""
import json
import shutil

import numpy as np
import pytest

from codecbench.cli import main
from codecbench.errors import CheckpointError
from codecbench.models.kinds import ModelError
from codecbench.run.spec import RunSpec
from codecbench.zoo import Zoo, ZooError

from .plugin_args import run_plugin

pytest_plugins = ["pytester"]

MODULE = '''
import numpy as np

CLASSES = {classes!r}


class Tone:
    sample_rate = 16000
    class_names = list(CLASSES)

    def __init__(self, seed=0):
        self.w = np.random.default_rng(seed).standard_normal((1, len(CLASSES)))

    def predict(self, batch):
        logits = np.abs(batch).mean(axis=1, keepdims=True) * self.w
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def make(seed=0):
    return Tone(seed)
'''


@pytest.fixture
def folder(tiny, tmp_path, monkeypatch):
    """A model folder handed over by someone else: the tiny base model and a module on the path."""
    root = tmp_path / "z"
    root.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy(tiny["zoo"].root / f"base{suffix}", root / f"base{suffix}")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "tone_model.py").write_text(MODULE.format(classes=tiny["dataset"].class_names))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    return root


def _sidecar(root, name, **meta):
    (root / f"{name}.json").write_text(json.dumps({"kind": "python", **meta}))


def test_a_python_sidecar_from_a_model_folder_runs_no_code(folder, tiny, tmp_path, pytester):
    """The reported exploit: an entry point os:system in a sidecar, run by `pytest benchmarks/ --model-dir z`."""
    marker = tmp_path / "ran"
    _sidecar(folder, "evil", entry_point="os:system", kwargs={"command": f"touch {marker}"})
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    args = ["--model-dir", str(folder), "--dataset", tiny["spec"],
            "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"]), "--condition", "wav",
            "--results", str(tmp_path / "out"), "--jobs", "1"]
    result = run_plugin(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "evil.json" in err and "'os:system'" in err and "--trust-code" in err
    assert not marker.exists()
    # allowed for the run, it runs (and then fails as a model, since os.system returns a number)
    result = run_plugin(pytester, *args, "--trust-code", "--model", "evil")
    assert marker.exists()


def test_python_models_run_when_imported_by_the_user_or_trusted(folder, tiny):
    _sidecar(folder, "tone", entry_point="tone_model:make", kwargs={"seed": 1})
    zoo = Zoo(folder)
    with pytest.raises(ModelError, match=r"tone\.json: model 'tone' would run Python code \(entry point "
                                         r"'tone_model:make' with arguments \{'seed': 1\}\)"):
        zoo.scoring("tone")
    assert Zoo(folder, trust_code=True).scoring("tone").predict(np.ones((2, 16000), np.float32)).shape == (2, 10)
    # the session refuses before coding anything, naming the file
    spec = RunSpec.build({"model_dir": str(folder), "dataset": tiny["spec"], "model": ["tone"],
                          "cache_dir": str(tiny["cache"].root)}, use_pyproject=False)
    with pytest.raises(ModelError, match="tone.json"):
        from codecbench.run.session import BenchmarkSession
        BenchmarkSession.from_spec(spec)
    # imported by the user on the command line: usable without --trust-code, with exactly these arguments
    assert main(["import-model", "tone_model:make", "--name", "mine", "--kwargs", '{"seed": 1}',
                 "--model-dir", str(folder)]) == 0
    assert Zoo(folder).scoring("tone").class_names == tiny["dataset"].class_names
    _sidecar(folder, "other_args", entry_point="tone_model:make", kwargs={"seed": 2})
    with pytest.raises(ModelError, match="would run Python code"):
        Zoo(folder).scoring("other_args")


def test_keras_lambda_layers_load_only_when_trusted(folder):
    from codecbench.core.backend import keras

    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    Zoo(folder).save("lam", keras.Model(inputs, outputs), {"class_names": [str(i) for i in range(10)]})
    with pytest.raises(CheckpointError, match="Lambda"):
        Zoo(folder).load("lam")
    model, _ = Zoo(folder, trust_code=True).load("lam")
    assert model.count_params() == 50


def test_an_onnx_file_with_a_python_sidecar_runs_nothing(folder, tmp_path):
    from tests.test_kinds import tiny_onnx

    marker = tmp_path / "ran"
    tiny_onnx(folder / "net.onnx")
    _sidecar(folder, "net", entry_point="os:system", kwargs={"command": f"touch {marker}"})
    with pytest.raises(ZooError, match="several kinds"):
        Zoo(folder).scoring("net")
    with pytest.raises(ZooError, match="several kinds"):
        Zoo(folder, trust_code=True).scoring("net")
    assert not marker.exists()
