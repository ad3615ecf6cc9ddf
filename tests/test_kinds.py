"""Any model, any front-end: ONNX and Python-callable models next to the Keras ones, and the Python API."""
import json

import numpy as np
import pytest

import codecbench
from codecbench.cli import main
from codecbench.codecs import parse_condition as C
from codecbench.datasets import SCENES
from codecbench.models.kinds import ModelError, from_object
from codecbench.signal.frontends import BASELINE, FrontEndError, parse_frontend
from codecbench.zoo import Zoo

from . import optional
from .plugin_args import run_plugin

onnx = optional.import_or_missing("onnx", "onnx", "the onnx package (pip install onnx) is needed to build the "
                                                  "test model")
optional.import_or_missing("onnx", "onnxruntime", "onnxruntime (pip install 'codecbench[onnx]') is not installed")
pytest_plugins = ["pytester"]

NUMPY_MODEL = '''
import numpy as np

SCENES = {scenes!r}


class BandEnergyModel:
    """A numpy scene classifier on 16 kHz waveforms: log energy in 8 bands, a fixed linear layer, logits."""

    sample_rate = 16000
    class_names = list(SCENES)
    outputs = "logits"

    def __init__(self, seed=0, broken=None):
        self.weights = np.random.default_rng(seed).standard_normal((8, len(SCENES)))
        self.broken = broken

    def predict(self, batch):
        spec = np.abs(np.fft.rfft(batch, axis=1)) ** 2
        bands = np.array_split(spec, 8, axis=1)
        energy = np.log(np.stack([b.sum(axis=1) for b in bands], axis=1) + 1e-9)
        logits = (energy - energy.mean(axis=1, keepdims=True)) @ self.weights
        if self.broken == "shape":
            return logits[:, :3]
        if self.broken == "nan":
            logits[0, 0] = np.nan
        return logits


def make(**kwargs):
    return BandEnergyModel(**kwargs)


def explode():
    raise RuntimeError("weights not found")
'''


def tiny_onnx(path, frames=None, rank4=True, batch="n", external=None):
    """(N, 128, T, 3) -> mean over time and channels -> linear -> 10 logits, built with the onnx helper API
    (``batch``: a fixed batch size instead of "n"; ``external``: keep the weights in that file beside it)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weights = numpy_helper.from_array(rng.standard_normal((128, 10)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "b")
    shape = [batch, 128, frames or "t", 3] if rank4 else [batch, 128]
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0) if rank4 else
             helper.make_node("Identity", ["x"], ["m"]),
             helper.make_node("MatMul", ["m", "w"], ["mw"]), helper.make_node("Add", ["mw", "b"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])],
                              initializer=[weights, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    if external:
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=external,
                        size_threshold=0)
    else:
        onnx.save(model, path)
    return path


@pytest.fixture
def zoo_with_kinds(tiny, tmp_path, monkeypatch):
    """The tiny Keras zoo plus an ONNX model (baseline front-end) and a numpy model on 16 kHz waveforms."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    for name in ("base", "finetuned_seg9"):
        for suffix in (".keras", ".json"):
            (folder / f"{name}{suffix}").write_bytes((tiny["zoo"].root / f"{name}{suffix}").read_bytes())
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "numpy_scene_model.py").write_text(NUMPY_MODEL.format(scenes=SCENES))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'pkg'}:{__import__('os').environ.get('PYTHONPATH', '')}")
    onnx_file = tiny_onnx(tmp_path / "tiny.onnx")
    assert main(["import-model", str(onnx_file), "--name", "tiny_onnx", "--classes", ",".join(SCENES),
                 "--outputs", "logits", "--model-dir", str(folder)]) == 0
    assert main(["import-model", "numpy_scene_model:make", "--name", "bands16k", "--model-dir", str(folder),
                 "--kwargs", '{"seed": 3}']) == 0
    return folder


def test_zoo_lists_kinds_and_front_ends(zoo_with_kinds, capsys):
    zoo = Zoo(zoo_with_kinds)
    assert zoo.names() == ["base", "finetuned_seg9", "bands16k", "tiny_onnx"]
    assert [zoo.kind(n) for n in zoo.names()] == ["keras", "keras", "python", "onnx"]
    assert main(["zoo", "list", "--model-dir", str(zoo_with_kinds)]) == 0
    out = capsys.readouterr().out
    assert "waveform 16 kHz" in out and "| onnx " in out and "hu2020 log-mel + deltas" in out
    with pytest.raises(ModelError, match="bands16k' is a python model; fine-tuning and segments are Keras-only"):
        zoo.load("bands16k")


def test_onnx_and_python_models_run_in_the_benchmark_next_to_keras(zoo_with_kinds, tiny, pytester, tmp_path):
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    result = run_plugin(
        pytester, "--model-dir", str(zoo_with_kinds), "--dataset", tiny["spec"],
        "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"]), "--results",
        str(tmp_path / "out"), "--jobs", "1", "--model", "base,tiny_onnx,bands16k", "--condition", "wav,mp3@32")
    result.assert_outcomes(passed=6)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    cells = {(r["model"], r["condition"]): r for r in doc["results"]}
    assert set(cells) == {(m, c) for m in ("base", "tiny_onnx", "bands16k") for c in ("wav", "mp3@32")}

    # the Python API gives the same numbers, clip by clip
    frame = codecbench.evaluate(["tiny_onnx", "bands16k", "base"], dataset=tiny["spec"],
                                matrix=str(tiny["matrix_path"]),
                                conditions=["wav", "mp3@32"], model_dir=str(zoo_with_kinds),
                                cache_dir=str(tiny["cache"].root), jobs=1)
    assert len(frame) == 6 and set(frame.columns) >= {"model", "condition", "accuracy", "ci_low", "ci_high", "n"}
    for (model, condition), record in frame.attrs["records"].items():
        assert record["predictions"] == cells[model, condition]["predictions"]
        assert record["accuracy"] == cells[model, condition]["accuracy"]


def test_a_plain_python_object_is_benchmarked_through_the_api(tiny, zoo_with_kinds):
    import numpy_scene_model

    frame = codecbench.evaluate([numpy_scene_model.make(seed=3)], dataset=tiny["spec"],
                                matrix=str(tiny["matrix_path"]), conditions=["wav"], cache_dir=str(tiny["cache"].root),
                                jobs=1)
    assert frame["model"].tolist() == ["BandEnergyModel"] and frame["n"].tolist() == [20]
    assert 0.0 <= frame["accuracy"][0] <= 1.0


@pytest.mark.parametrize("make, message", [
    ("numpy_scene_model:explode", "factory 'numpy_scene_model:explode' raised RuntimeError: weights not found"),
    ("numpy_scene_model:nosuch", "cannot import 'numpy_scene_model:nosuch'"),
])
def test_a_failing_factory_is_a_clear_error_and_writes_nothing(zoo_with_kinds, make, message, capsys):
    assert main(["import-model", make, "--name", "bad", "--model-dir", str(zoo_with_kinds)]) == 2
    assert message in capsys.readouterr().err and "bad" not in Zoo(zoo_with_kinds).names()


@pytest.mark.parametrize("broken, message", [("shape", r"predict returned shape \(1, 3\), expected \(1, 10\)"),
                                             ("nan", "predict returned 1 NaN/Inf values")])
def test_a_predict_returning_the_wrong_shape_or_nans_is_refused(zoo_with_kinds, broken, message, capsys):
    args = ["import-model", "numpy_scene_model:make", "--name", "broken", "--model-dir", str(zoo_with_kinds),
            "--kwargs", json.dumps({"broken": broken})]
    assert main(args) == 2
    assert __import__("re").search(message, capsys.readouterr().err)
    assert "broken" not in Zoo(zoo_with_kinds).names()


def test_an_onnx_model_whose_input_does_not_match_its_front_end_is_refused(tmp_path, capsys):
    fixed = tiny_onnx(tmp_path / "fixed.onnx", frames=10)  # takes exactly 10 frames; a clip gives more
    assert main(["import-model", str(fixed), "--name", "fixed", "--classes", ",".join(SCENES),
                 "--model-dir", str(tmp_path / "zoo")]) == 2
    err = capsys.readouterr().err
    assert "model 'fixed': input 'x' has shape ['n', 128, 10, 3]" in err and "(1, 128, 36, 3)" in err
    flat = tiny_onnx(tmp_path / "flat.onnx", rank4=False)
    assert main(["import-model", str(flat), "--name", "flat", "--classes", ",".join(SCENES), "--frontend",
                 "hu2020", "--model-dir", str(tmp_path / "zoo")]) == 2
    assert "input 'x' has shape ['n', 128]" in capsys.readouterr().err
    assert not (tmp_path / "zoo").exists() or not list((tmp_path / "zoo").iterdir())


def test_classes_are_matched_by_name_or_an_explicit_map(tiny):
    from .evaluators import split_evaluator

    class Shuffled:
        sample_rate = 16000
        class_names = list(reversed(SCENES))

        def predict(self, batch):
            out = np.zeros((len(batch), 10))
            out[:, 0] = 1.0  # always the model's first class: the dataset's last ("tram")
            return out

    ev = split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1,
                   log=lambda m: None)
    result = ev.evaluate(from_object(Shuffled(), name="shuffled"), C("wav"))
    assert set(result.predictions) == {SCENES.index("tram")}

    class Renamed(Shuffled):
        class_names = [f"c{i}" for i in range(10)]
    with pytest.raises(ModelError, match=r"predicts classes \['c0', .*the dataset has \['airport'"):
        ev.evaluate(from_object(Renamed(), name="renamed"), C("wav"))
    mapped = from_object(Renamed(), name="mapped", meta={"class_map": {f"c{i}": s for i, s in enumerate(SCENES)}})
    assert set(ev.evaluate(mapped, C("wav")).predictions) == {0}


def test_front_ends_parse_and_share_the_baseline_cache_keys():
    assert parse_frontend(None) is BASELINE and parse_frontend("hu2020") is BASELINE
    assert parse_frontend("waveform:16000").to_dict() == {"kind": "waveform", "sample_rate": 16000}
    fe = parse_frontend("logmel:sample_rate=32000,n_mels=64,deltas=false")
    assert fe.n_mels == 64 and not fe.deltas and fe != BASELINE
    from codecbench.signal import features
    assert BASELINE.cache_key() == features.RECIPE  # the packaged models' cached features stay valid
    x = np.random.default_rng(0).standard_normal(44100).astype(np.float32) * 0.1
    assert np.array_equal(BASELINE(x, 44100), features.extract(x))
    assert fe(x, 44100).shape == (64, 1 + 32000 // 1024, 1)
    with pytest.raises(FrontEndError, match="front-end kind 'spectrogram'"):
        parse_frontend({"kind": "spectrogram"})
    with pytest.raises(FrontEndError, match="expected waveform:<sample rate>"):
        parse_frontend("waveform:fast")


def test_an_onnx_model_with_external_data_is_refused_at_import(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    model = tiny_onnx(tmp_path / "src" / "net.onnx", external="net.weights")
    assert (tmp_path / "src" / "net.weights").is_file()
    zoo = tmp_path / "zoo"
    assert main(["import-model", str(model), "--name", "net", "--classes", ",".join(SCENES), "--outputs", "logits",
                 "--model-dir", str(zoo)]) == 2
    err = capsys.readouterr().err
    assert "external data files" in err and "net.onnx" in err
    assert not zoo.exists() or not any(zoo.iterdir())


def test_an_onnx_model_with_a_fixed_batch_of_one_runs_clip_by_clip(tmp_path):
    fixed = tiny_onnx(tmp_path / "one.onnx", batch=1)
    dynamic = tiny_onnx(tmp_path / "any.onnx")
    from codecbench.models.kinds import load_onnx

    meta = {"class_names": list(SCENES), "outputs": "logits"}
    x = np.random.default_rng(0).random((5, 128, 20, 3), dtype=np.float32)
    np.testing.assert_allclose(load_onnx("one", fixed, meta).predict(x), load_onnx("any", dynamic, meta).predict(x),
                               rtol=1e-5)
    with pytest.raises(ModelError, match="fixed batch of 4"):
        load_onnx("four", tiny_onnx(tmp_path / "four.onnx", batch=4), meta)
