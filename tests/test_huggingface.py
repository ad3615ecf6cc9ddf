"""Hugging Face audio classifiers and zero-shot CLAP as model kinds (codecbench.models.huggingface): tiny checkpoints
with random weights saved by ``save_pretrained``, imported into a zoo, scored, refused where they should be, and
benchmarked end to end with neural codecs through the plugin."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from codecbench.errors import ModelError
from codecbench.zoo import ModelFileChanged, Zoo
from codecbench.zoo.importing import import_model

from . import checkpoints, optional
from .conftest import TINY_DATASET, _built_once
from .plugin_args import run_plugin

optional.import_or_missing("transformers", "transformers", "Hugging Face transformers is not installed")
torch = optional.import_or_missing("transformers", "torch", "PyTorch is not installed")

pytest_plugins = ["pytester"]

@pytest.fixture(scope="module", autouse=True)
def _frameworks_before_pytester():
    """PyTorch, transformers and Keras imported before any test's pytester snapshots sys.modules: pytester removes
    what a test imported, and a framework imported a second time in one process fails."""
    import transformers

    import codecbench.core.backend  # noqa: F401
    transformers.ASTForAudioClassification, transformers.ClapModel, transformers.EncodecModel  # noqa: B018


SCENES = ["airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall", "street_pedestrian",
          "street_traffic", "tram"]


@pytest.fixture(scope="session")
def checkpoint_folders(tmp_path_factory):
    def build(folder):
        checkpoints.audio_classifier(folder / "ast")
        checkpoints.clap(folder / "clap")
        checkpoints.codec_weights(folder / "codec-weights")
    return _built_once(tmp_path_factory, "hf-checkpoints", build)


def _clips(n: int = 3, rate: int = 44100) -> np.ndarray:
    return (0.1 * np.random.default_rng(1).standard_normal((n, rate))).astype(np.float32)


def test_an_audio_classifier_scores_through_its_label_map(checkpoint_folders, tmp_path):
    zoo = Zoo(tmp_path / "zoo")
    folder = checkpoint_folders / "ast"
    imported = import_model(zoo, f"hf:{folder}", name="ast", class_map=checkpoints.LABEL_MAP)
    assert imported.kind == "hf" and (tmp_path / "zoo" / "ast.hf" / "model.safetensors").is_file()
    entry = zoo.entry("ast")
    assert entry.kind == "hf" and entry.metadata["sample_rate"] == 16000
    assert entry.metadata["checkpoint"] == "local folder" and len(entry.metadata["sha256"]) == 64
    model = zoo.scoring("ast")
    assert model.class_names == list(dict.fromkeys(checkpoints.LABEL_MAP.values()))
    waves = np.stack([model.frontend(clip, 44100) for clip in _clips()])
    probs = model.predict(waves)
    # the reference: the checkpoint run by transformers itself, softmax, Bus + Vehicle summed into "bus"
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    net = AutoModelForAudioClassification.from_pretrained(folder).eval()
    inputs = AutoFeatureExtractor.from_pretrained(folder)(list(waves), sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        reference = torch.softmax(net(**inputs).logits, dim=-1).numpy()
    labels = [net.config.id2label[i] for i in range(len(net.config.id2label))]
    bus = reference[:, labels.index("Bus")] + reference[:, labels.index("Vehicle")]
    np.testing.assert_allclose(probs[:, model.class_names.index("bus")], bus, rtol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert model.dataset_order(SCENES).tolist() == [model.class_names.index(c) for c in SCENES]


def test_a_class_without_a_source_is_refused(checkpoint_folders, tmp_path):
    zoo = Zoo(tmp_path / "zoo")
    folder = checkpoint_folders / "ast"
    partial = {k: v for k, v in checkpoints.LABEL_MAP.items() if v != "tram"}
    with pytest.raises(ModelError, match="no label of the checkpoint maps to tram"):
        import_model(zoo, f"hf:{folder}", name="ast", class_map=partial, class_names=SCENES)
    with pytest.raises(ModelError, match="'Tramway'"):
        import_model(zoo, f"hf:{folder}", name="ast", class_map={**partial, "Tramway": "tram"})
    # imported without the class list, it is refused where it meets the dataset, naming the class it lacks
    import_model(zoo, f"hf:{folder}", name="ast", class_map=partial)
    with pytest.raises(ModelError, match="tram"):
        zoo.scoring("ast").dataset_order(SCENES)
    assert not (tmp_path / "zoo" / "other.json").exists()


def test_a_checkpoint_that_asks_for_its_own_code_is_refused_without_trust(checkpoint_folders, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(checkpoint_folders / "ast", folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForAudioClassification": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    zoo = Zoo(tmp_path / "zoo")
    with pytest.raises(ModelError, match="--trust-code"):
        import_model(zoo, f"hf:{folder}", name="evil")
    assert zoo.names() == []  # nothing written
    # a zoo that holds such a checkpoint (copied in by hand) does not load it either
    import_model(zoo, f"hf:{checkpoint_folders / 'ast'}", name="ast", class_map=checkpoints.LABEL_MAP)
    (tmp_path / "zoo" / "ast.hf" / "config.json").write_text(json.dumps(config))
    meta = json.loads((tmp_path / "zoo" / "ast.json").read_text())
    from codecbench.models.huggingface import folder_sha256
    meta["sha256"] = folder_sha256(tmp_path / "zoo" / "ast.hf")
    (tmp_path / "zoo" / "ast.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="asks to run code"):
        Zoo(tmp_path / "zoo").scoring("ast")


def test_a_changed_checkpoint_is_refused(checkpoint_folders, tmp_path):
    zoo = Zoo(tmp_path / "zoo")
    import_model(zoo, f"hf:{checkpoint_folders / 'ast'}", name="ast", class_map=checkpoints.LABEL_MAP)
    with open(tmp_path / "zoo" / "ast.hf" / "model.safetensors", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelFileChanged, match="re-import"):
        Zoo(tmp_path / "zoo").scoring("ast")


def test_zero_shot_clap_scores_by_prompt(checkpoint_folders, tmp_path):
    zoo = Zoo(tmp_path / "zoo")
    prompts = {"airport": "planes taking off", "tram": "a tram's bell"}
    import_model(zoo, f"clap:{checkpoint_folders / 'clap'}", name="clap", class_names=SCENES, kwargs=prompts)
    meta = zoo.entry("clap").metadata
    assert meta["kind"] == "clap" and meta["sample_rate"] == 48000
    assert meta["prompts"]["airport"] == "planes taking off" and meta["prompts"]["bus"] == \
        "the sound of a ride on a city bus"
    model = zoo.scoring("clap")
    assert model.outputs == "logits" and model.class_names == SCENES
    waves = np.stack([model.frontend(clip, 44100) for clip in _clips(2, 44100 * 2)])  # longer than its window
    first, second = model.predict(waves), zoo.scoring("clap").predict(waves)
    np.testing.assert_array_equal(first, second)  # its random crop is seeded: the same scores in every run
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ModelError, match="--classes"):
        import_model(zoo, f"clap:{checkpoint_folders / 'clap'}", name="clap2")


def test_a_hub_id_without_the_network_names_the_download(tmp_path, monkeypatch):
    from codecbench.zoo.importing import checkpoint_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="hf download MIT/ast-finetuned-audioset-10-10-0.4593"):
        checkpoint_folder("hf:MIT/ast-finetuned-audioset-10-10-0.4593")


def test_neural_codecs_and_an_imported_classifier_run_in_the_suite(checkpoint_folders, pytester, tmp_path,
                                                                    monkeypatch):
    """The issue's command on the tiny set: wav, encodec@6 and dac@8kbps against an imported AST. Coded in this
    process (``--jobs 1``): worker processes that each import PyTorch and transformers took 40 s of the suite's CPU;
    neural codecs in worker processes are tested in test_run (their weights reach workers started before)."""
    zoo = Zoo(tmp_path / "zoo")
    import_model(zoo, f"hf:{checkpoint_folders / 'ast'}", name="ast", class_map=checkpoints.LABEL_MAP)
    monkeypatch.setenv("CODECBENCH_CODEC_WEIGHTS", str(checkpoint_folders / "codec-weights"))
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    result = run_plugin(
        pytester, "--model-dir", str(zoo.root), "--dataset", TINY_DATASET,
        "--cache-dir", str(tmp_path / "cache"), "--results", str(tmp_path / "out"), "--jobs", "1",
        "--condition", "wav,encodec@6,dac@8kbps")
    result.assert_outcomes(passed=3)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["condition"] for r in doc["results"]} == {"wav", "encodec@6", "dac@8"}
    from codecbench.results.rows import record_probabilities
    assert all(record_probabilities(r).shape == (r["n"], 10) for r in doc["results"])
    facts = doc["meta"]["codec_facts"]
    assert facts["encodec@6"]["codec_sample_rate"] == 24000 and "weights sha256:" in facts["dac@8"]["library"]
    assert all(np.isfinite(facts[c][k]) for c in ("encodec@6", "dac@8") for k in ("mel_distance_db", "snr_db",
                                                                                  "si_sdr_db"))
    model_facts = doc["meta"]["model_facts"]["ast"]
    assert model_facts["kind"] == "hf" and model_facts["sample_rate"] == 16000 and model_facts["label_map"]["Bus"] \
        == "bus"
