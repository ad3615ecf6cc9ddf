import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecbench import datasets
from codecbench.datasets import DatasetError, load_dataset, load_folder, load_tau, read_split_file

FIXTURES = Path(__file__).resolve().parent / "data" / "tau2020-mobile"


def test_real_split_files_parse_with_crlf_and_missing_final_newline():
    evaluate = read_split_file(FIXTURES / "evaluation_setup" / "fold1_evaluate.csv")
    train = read_split_file(FIXTURES / "evaluation_setup" / "fold1_train.csv")
    assert len(train) == 13965 and len(evaluate) == 2970
    assert list(evaluate.columns) == ["filename", "scene_label"]
    assert not evaluate["scene_label"].str.contains("\r").any()
    counts = evaluate["scene_label"].value_counts()
    assert len(counts) == 10 and set(counts) == {297}
    devices = evaluate["filename"].map(datasets.device_of).value_counts()
    assert set(devices.index) == {"a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"} and set(devices) == {330}
    test = read_split_file(FIXTURES / "evaluation_setup" / "fold1_test_excerpt.csv")
    assert list(test.columns) == ["filename"]


def test_missing_audio_is_one_clear_error_with_counts(tmp_path):
    root = tmp_path / "tau"
    (root / "evaluation_setup").mkdir(parents=True)
    for name in ("fold1_train.csv", "fold1_evaluate.csv"):
        (root / "evaluation_setup" / name).write_bytes((FIXTURES / "evaluation_setup" / name).read_bytes())
    (root / "audio").mkdir()
    present = read_split_file(root / "evaluation_setup" / "fold1_evaluate.csv")["filename"][:3]
    for fname in present:
        sf.write(root / fname, np.zeros(4410, dtype=np.float32), 44100)
    with pytest.raises(DatasetError, match=r"13965 of 13965 audio files of split 'train' are missing"):
        load_tau(root)
    with pytest.raises(DatasetError, match=r"2967 of 2970 .* 'evaluate' .*e\.g\. audio/"):
        load_tau(root, splits=("evaluate",))
    ds = load_tau(root, splits=("evaluate",), allow_partial=True)
    assert len(ds.clips("evaluate")) == 3
    assert ds.clips("evaluate")[0].device == "a"
    assert ds.class_names == sorted(ds.class_names)


def test_synthetic_is_deterministic_in_tau_layout_and_generated_once(tmp_path):
    params = dict(seed=3, clips_per_class={"train": 1, "evaluate": 1}, duration=1.0)
    a = datasets.synthesize(cache_dir=tmp_path / "a", **params)
    b = datasets.synthesize(cache_dir=tmp_path / "b", **params)
    assert (a / "evaluation_setup" / "fold1_evaluate.csv").is_file() and (a / "meta.csv").is_file()
    files = sorted(p.name for p in (a / "audio").iterdir())
    assert len(files) == 20 and files == sorted(p.name for p in (b / "audio").iterdir())
    assert all((a / "audio" / f).read_bytes() == (b / "audio" / f).read_bytes() for f in files)
    mtime = (a / "audio" / files[0]).stat().st_mtime_ns
    assert datasets.synthesize(cache_dir=tmp_path / "a", **params) == a
    assert (a / "audio" / files[0]).stat().st_mtime_ns == mtime
    ds = load_dataset("synthetic", cache_dir=tmp_path / "a", **params)
    assert ds.class_names == list(datasets.SCENES)
    assert len(ds.clips("train")) == 10 and ds.labels("evaluate").tolist() == list(range(10))


def test_synthetic_evidence_spans_the_band_where_real_scenes_carry_it():
    """Every class has energy in each of 50-500 Hz, 0.5-2 kHz and 2-8 kHz (no class lives in one narrow band):
    the median share over four clips is at least -30 dB (one clip of a class may lack a band, as real ones do). Six
    clips gave the same least median (0.0023) in half again the time; the clips are the same on every machine."""
    bands = [(50, 500), (500, 2000), (2000, 8000)]
    for c in range(10):
        shares = []
        for seed in range(4):
            x = datasets.synth_scene(c, np.random.default_rng(seed), 2.0, 44100)
            spec = np.abs(np.fft.rfft(x)) ** 2
            f = np.fft.rfftfreq(len(x), 1 / 44100)
            shares.append([spec[(f >= lo) & (f < hi)].sum() / spec.sum() for lo, hi in bands])
        median = np.median(shares, axis=0)
        assert np.all(median > 0.001), (datasets.SCENES[c], dict(zip(bands, median.round(4))))


def test_folder_per_class_split_is_stratified_and_deterministic(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(10):
            sf.write(tmp_path / label / f"{i}.wav", np.zeros(100, dtype=np.float32), 44100)
    one, two = load_folder(tmp_path), load_folder(tmp_path)
    assert [c.path for c in one.clips("evaluate")] == [c.path for c in two.clips("evaluate")]
    assert sorted(c.label for c in one.clips("evaluate")) == ["a"] * 3 + ["b"] * 3


def test_unknown_dataset_and_split_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="expected audio files, or one sub-folder"):
        load_dataset(tmp_path)


def test_a_plain_folder_of_wav_files_can_be_encoded(wav_folder):
    ds = load_dataset(wav_folder[0].parent)
    assert [c.path for c in ds.clips("evaluate")] == wav_folder
    with pytest.raises(DatasetError, match="unlabelled"):
        ds.labels("evaluate")


# --------------------------------------------------------------------------- the default is the same everywhere

def _sample_of_every_class_and_device(per_class: bool = False) -> list[str]:
    """Clips of the manifest that cover every class, every device and both splits (each clip adds one not yet
    covered; or the first of each class); every clip with CODECBENCH_MANIFEST_ALL=1 (about a minute per 900 clips
    and core). Every (class, device) pair, 90 clips, took 41 s of the suite; a class's clips and a device's response
    are made by separate code paths, so covering each once checks each path."""
    import os

    _, digests = datasets.read_synthetic_manifest()
    if os.environ.get("CODECBENCH_MANIFEST_ALL") == "1":
        return sorted(digests)
    chosen, scenes, devices, splits = [], set(), set(), set()
    for key in sorted(digests):
        scene, device = key.split("/")[1].split("-synth")[0], datasets.device_of(key)
        split = "train" if "-train" in key else "evaluate"
        if scene not in scenes or (not per_class and (device not in devices or split not in splits)):
            chosen.append(key)
            scenes.add(scene)
            devices.add(device)
            splits.add(split)
    return chosen


def _drift_message(differ: dict) -> str:
    from codecbench.core.provenance import library_versions, machine

    return (f"{len(differ)} regenerated clips differ from codecbench/manifests/synthetic-default.sha256: "
            + ", ".join(sorted(differ)[:10]) + f"\nlibraries: {library_versions()}\nmachine: {machine()}")


def test_synthetic_default_matches_the_committed_manifest():
    """A sample of every class and device, regenerated here, has the manifest's bytes (so a baseline recorded on
    another machine compares by content)."""
    recipe, digests = datasets.read_synthetic_manifest()
    assert recipe == {**datasets.SYNTHETIC_DEFAULTS, "version": datasets.SYNTHETIC_VERSION}
    assert len(digests) == 10 * sum(recipe["clips_per_class"].values())
    sample = _sample_of_every_class_and_device()
    assert len({datasets.device_of(k) for k in sample}) == len(datasets.DEVICES)
    differ = datasets.regenerate_and_compare(sample)
    assert not differ, _drift_message(differ)


def test_synthetic_default_is_the_same_on_the_lowest_simd_level():
    """The same clips generated with numpy's SIMD dispatch and glibc's FMA/AVX2 variants switched off, as on an
    older or different CPU: the bytes may not depend on which code paths the CPU selects."""
    import os
    import subprocess
    import sys

    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    env = dict(os.environ)
    enabled = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    if enabled:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(enabled)
    env["GLIBC_TUNABLES"] = "glibc.cpu.hwcaps=-AVX2_Usable,-FMA_Usable,-AVX512F_Usable,-AVX2,-FMA,-AVX512F"
    code = ("import json, sys; from codecbench import datasets; from numpy._core._multiarray_umath import "
            "__cpu_features__ as f; print(json.dumps({'differ': datasets.regenerate_and_compare(sys.argv[1:]), "
            "'v4': bool(f.get('X86_V4')), 'v3': bool(f.get('X86_V3'))}))")
    sample = _sample_of_every_class_and_device(per_class=True)
    out = subprocess.run([sys.executable, "-c", code, *sample], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["v4"] and not result["v3"], "numpy's SIMD dispatch was not switched off"
    assert not result["differ"], _drift_message(result["differ"])


def test_a_split_quicker_to_generate_than_a_pool_is_to_start_is_generated_in_process(tmp_path, monkeypatch):
    """Starting generating workers costs about a second (fresh interpreters importing numpy and SciPy): a split the
    pool would shorten by less is generated here; a longer one (here: any, with no start-up cost) uses the pool."""
    from codecbench.datasets import synthetic

    asked = []
    parallel_map = synthetic.parallel_map
    monkeypatch.setattr(synthetic, "parallel_map", lambda f, items, jobs: asked.append(jobs) or parallel_map(
        f, items, jobs=jobs))
    monkeypatch.setattr(synthetic, "usable_cores", lambda: 2)
    load_dataset("synthetic:train=1,evaluate=1,duration=0.5,seed=3", cache_dir=tmp_path / "a", log=lambda m: None)
    assert asked == [1, 1]
    monkeypatch.setattr(synthetic, "POOL_STARTUP_S", 0.0)
    load_dataset("synthetic:train=1,evaluate=1,duration=0.5,seed=4", cache_dir=tmp_path / "b", log=lambda m: None)
    assert asked[2:] == [2, 2]
