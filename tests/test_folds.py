"""UrbanSound8K and ESC-50 folders: detected from their metadata, split by folds, benchmarked like any dataset.

The folders are built here in each dataset's published layout (metadata columns and audio paths as the
publishers ship them) with tiny generated clips of different rates and lengths.
"""
import json

import numpy as np
import pytest
import soundfile as sf

import codecbench
from codecbench.cli import main
from codecbench.datasets import DatasetError, load_dataset, parse_folds, synth_scene

from .plugin_args import run_plugin

pytest_plugins = ["pytester"]

US8K_CLASSES = ["car_horn", "dog_bark", "siren"]


@pytest.fixture(scope="module", autouse=True)
def _keras_before_pytester():
    """Keras (TensorFlow) imported before any test's pytester snapshots sys.modules: pytester removes what a test
    imported, and TensorFlow imported a second time in one process aborts it."""
    import codecbench.core.backend  # noqa: F401
ESC_CLASSES = ["chirping_birds", "rain", "sea_waves"]


def _clip(path, index: int, rate: int, seconds: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = synth_scene(index % 10, np.random.default_rng(index), seconds, rate)
    sf.write(path, x, rate, subtype="PCM_16")


def urbansound8k(root, folds=(1, 2, 10)):
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for fold in folds:
        for class_id, name in enumerate(US8K_CLASSES):
            for take in range(2):
                file = f"{100 + class_id}-{fold}-{take}-0.wav"
                rate = (22050, 44100, 48000)[(fold + take) % 3]  # the set mixes rates and lengths
                _clip(root / "audio" / f"fold{fold}" / file, fold * 10 + class_id * 2 + take, rate, 0.5 + 0.25 * take)
                rows.append(f"{file},{100 + class_id},0.0,1.0,1,{fold},{class_id},{name}")
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")
    return root


def esc50(root):
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, name in enumerate(ESC_CLASSES):
            file = f"{fold}-{1000 + target}-A-{target}.wav"
            _clip(root / "audio" / file, fold * 7 + target, 44100, 1.0)
            rows.append(f"{file},{fold},{target},{name},False,{1000 + target},A")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def test_urbansound8k_splits_by_its_folds_with_its_classes(tmp_path):
    ds = load_dataset(urbansound8k(tmp_path / "UrbanSound8K"))
    assert ds.name == "urbansound8k:UrbanSound8K" and ds.class_names == US8K_CLASSES
    assert {c.path.parent.name for c in ds.clips("train")} == {"fold1", "fold2"}  # default: train 1-9, evaluate 10
    assert {c.path.parent.name for c in ds.clips("evaluate")} == {"fold10"} and len(ds.clips("evaluate")) == 6
    assert sorted(ds.labels("evaluate").tolist()) == [0, 0, 1, 1, 2, 2]
    custom = load_dataset(tmp_path / "UrbanSound8K", folds=parse_folds("train=1,evaluate=2+10"))
    assert len(custom.clips("train")) == 6 and len(custom.clips("evaluate")) == 12
    assert {sf.info(c.path).samplerate for c in ds.clips("train")} == {22050, 44100, 48000}


def test_esc50_splits_by_its_folds(tmp_path):
    root = esc50(tmp_path / "ESC-50")
    ds = load_dataset(root)
    assert ds.class_names == ESC_CLASSES and len(ds.clips("train")) == 12 and len(ds.clips("evaluate")) == 3
    other = load_dataset(root, folds=parse_folds("train=1-3,evaluate=4-5"))
    assert (len(other.clips("train")), len(other.clips("evaluate"))) == (9, 6)
    assert ds.fingerprint("evaluate") != other.fingerprint("evaluate")


def test_fold_errors_name_the_value(tmp_path):
    root = urbansound8k(tmp_path / "u")
    for text, fragment in (("train", "expected split=folds"), ("train=a", "not a fold number"),
                           ("train=5-2", "ascending"), ("", "no split given")):
        with pytest.raises(DatasetError, match=fragment):
            parse_folds(text)
    with pytest.raises(DatasetError, match=r"fold\(s\) \[7\] are not in .*UrbanSound8K.csv \(its folds: \[1, 2, 10"):
        load_dataset(root, folds=parse_folds("train=1,evaluate=7"))
    (root / "audio" / "fold10" / "100-10-0-0.wav").unlink()
    with pytest.raises(DatasetError, match="1 clips of split 'evaluate'.*missing"):
        load_dataset(root)
    assert len(load_dataset(root, splits=("train",)).clips("train")) == 12  # train-only use needs train audio only
    with pytest.raises(DatasetError, match="not a fold-based dataset"):
        load_dataset(load_dataset("synthetic:train=1,evaluate=1,duration=0.5", cache_dir=tmp_path / "c").root,
                     folds={"train": (1,)})
    assert main(["encode", "--dataset", str(root), "--folds", "train=x", "--condition", "wav"]) == 2


MODEL_MODULE = """
import numpy as np


class BandModel:
    sample_rate = 16000
    outputs = "logits"
    class_names = {classes!r}

    def __init__(self):
        self.weights = np.random.default_rng(1).standard_normal((6, len(self.class_names)))

    def predict(self, batch):
        spec = np.abs(np.fft.rfft(batch, axis=1)) ** 2
        energy = np.log(np.stack([b.sum(axis=1) for b in np.array_split(spec, 6, axis=1)], axis=1) + 1e-9)
        return (energy - energy.mean(axis=1, keepdims=True)) @ self.weights


def make():
    return BandModel()
"""


class BandModel:
    """A numpy classifier on 16 kHz waveforms for the dataset's own classes (log energy in 6 bands, linear)."""

    sample_rate = 16000
    outputs = "logits"

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.weights = np.random.default_rng(1).standard_normal((6, len(class_names)))

    def predict(self, batch):
        spec = np.abs(np.fft.rfft(batch, axis=1)) ** 2
        energy = np.log(np.stack([b.sum(axis=1) for b in np.array_split(spec, 6, axis=1)], axis=1) + 1e-9)
        return (energy - energy.mean(axis=1, keepdims=True)) @ self.weights


def test_a_fold_dataset_is_benchmarked_through_the_api_and_the_suite(tmp_path, pytester, monkeypatch):
    root = urbansound8k(tmp_path / "UrbanSound8K")
    frame = codecbench.evaluate([BandModel(US8K_CLASSES)], dataset=str(root), conditions=["wav", "mp3@32"],
                                cache_dir=str(tmp_path / "cache"), jobs=1)
    assert frame["n"].tolist() == [6, 6] and set(frame["condition"]) == {"wav", "mp3@32"}

    # the suite: a Python model of this dataset's classes imported into a zoo, then `pytest ... --dataset DIR`
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "us8k_model.py").write_text(MODEL_MODULE.format(classes=US8K_CLASSES))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkg"))
    assert main(["import-model", "us8k_model:make", "--name", "bands", "--model-dir", str(tmp_path / "zoo")]) == 0
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    result = run_plugin(
        pytester, "--model-dir", str(tmp_path / "zoo"), "--dataset", str(root),
        "--folds", "train=1-2,evaluate=10", "--cache-dir", str(tmp_path / "cache"), "--results",
        str(tmp_path / "out"), "--jobs", "1", "--condition", "wav,mp3@32")
    result.assert_outcomes(passed=2)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["meta"]["dataset"]["name"] == "urbansound8k:UrbanSound8K"
    assert doc["meta"]["dataset"]["folds"] == {"train": [1, 2], "evaluate": [10]}
    # fold 10 holds clips recorded at 44.1 and 48 kHz: each is coded at its own rate, and the run says so
    assert doc["meta"]["dataset"]["sample_rates"] == [44100, 48000]
    assert doc["meta"]["codec_facts"]["mp3@32"]["source_sample_rate"] == [44100, 48000]
    assert doc["meta"]["codec_facts"]["mp3@32"]["codec_sample_rate"] == [44100, 48000]
    by_condition = {r["condition"]: r for r in doc["results"]}
    assert by_condition["wav"]["predictions"] == frame.attrs["records"][("BandModel", "wav")]["predictions"]


def test_a_checkpoint_without_class_names_is_not_given_another_datasets_classes(tmp_path, capsys):
    """Hu et al.'s Keras-2 checkpoint names no classes: on UrbanSound8K it is refused (it was silently given the
    dataset's classes), and the way to a base model there is `codecbench train`, not a TAU checkpoint."""
    from pathlib import Path

    root = urbansound8k(tmp_path / "UrbanSound8K")
    checkpoint = Path(__file__).parent / "data" / "models" / "smallfcnn-model-0.9618.hdf5"
    common = ["--out", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1"]
    assert main(["reproduce", "peters", "--data", str(root), "--checkpoint", str(checkpoint), *common]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint names no classes" in err and "are not the 10 TAU scenes" in err
    assert "codecbench train --dataset" in err and "Traceback" not in err
    assert not (tmp_path / "work" / "zoo" / "base.keras").exists()
    assert main(["reproduce", "peters", "--data", str(root), "--preset", "paper", *common]) == 2
    err = capsys.readouterr().err
    assert "not urbansound8k's classes: train a base model on this data first" in err and "Hu et al." not in err


def test_a_partial_copy_says_which_folds_are_usable(tmp_path):
    """Three folds of UrbanSound8K, one of them half there: the README's --folds is refused listing the folds that
    are complete, partial and absent, with a --folds over the complete ones; `dataset verify` given the dataset
    folder itself checks it (it said "the dataset folder is missing") and says the same."""
    import shutil

    from codecbench.datasets.verify import verify

    root = urbansound8k(tmp_path / "UrbanSound8K", folds=(1, 2, 3, 10))
    shutil.rmtree(root / "audio" / "fold3")
    sorted((root / "audio" / "fold2").glob("*.wav"))[0].unlink()
    with pytest.raises(DatasetError, match=r"folds with all their audio here: 1\+10; partial: 2 \(5 of 6 clips\); "
                                           r"absent: 3; e.g. --folds train=1,evaluate=10"):
        load_dataset(root, folds=parse_folds("train=1-9,evaluate=10"))
    problems = verify("urbansound8k", root)
    assert "the dataset folder itself" in problems[0]
    assert not any("the dataset folder is missing" in p for p in problems)
    assert any("folds with all their audio here: 1+10" in p for p in problems)
