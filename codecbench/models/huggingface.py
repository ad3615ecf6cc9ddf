"""Hugging Face audio classifiers and zero-shot CLAP as model kinds (``hf``, ``clap``), under their own PyTorch stack.

- ``hf``: any ``AutoModelForAudioClassification`` checkpoint (AST, wav2vec 2.0 / HuBERT classifiers, ...), with the
  checkpoint's own feature extractor turning the decoded waveform into its input, and class names from its
  ``id2label``. A label map (model label -> dataset class, many-to-one) sums the probabilities of the labels that
  map to one class; labels it leaves out are dropped, and the rest renormalised. Multi-label checkpoints (AudioSet's
  AST: ``problem_type = "multi_label_classification"``) score each label by its sigmoid before the sum.
- ``clap``: a CLAP checkpoint and one text prompt per class; a clip scores each class by the cosine similarity of
  its audio embedding and the prompt's text embedding (scaled by the model's logit scale, then softmax).

The model is fed the waveform at its feature extractor's rate (the model's front-end is ``waveform:<rate>``); the
feature extractor runs on the host, the network on the accelerator when one is present
(``CODECBENCH_MODEL_DEVICE``: ``auto``, ``cpu``, ``cuda``). A checkpoint folder is data: a config that asks for
code of its own (``auto_map``) is refused unless the user trusts it (``--trust-code``), and ``trust_remote_code``
is passed as that choice, never on by default.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.core.fsutil import file_digest
from codecbench.errors import ModelError
from codecbench.models.kinds import ScoringModel
from codecbench.signal.frontends import parse_frontend

KINDS = ("hf", "clap")
INSTALL_HINT = "pip install 'codecbench[hf]' (PyTorch and Hugging Face transformers)"
DEVICE_ENV = "CODECBENCH_MODEL_DEVICE"
#: Prompts for the ten TAU Urban Acoustic Scenes; other classes get ``the sound of <class>``.
SCENE_PROMPTS = {
    "airport": "the sound of a busy airport", "bus": "the sound of a ride on a city bus",
    "metro": "the sound of a ride on a metro train", "metro_station": "the sound of a metro station",
    "park": "the sound of a city park", "public_square": "the sound of a public square in a city",
    "shopping_mall": "the sound of a shopping mall", "street_pedestrian": "the sound of a pedestrian street",
    "street_traffic": "the sound of a street with traffic", "tram": "the sound of a ride on a tram",
}


def default_prompt(class_name: str) -> str:
    return SCENE_PROMPTS.get(class_name, f"the sound of {class_name.replace('_', ' ')}")


def _torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise ModelError(f"Hugging Face models need PyTorch and transformers: {INSTALL_HINT}") from None
    return torch


def device() -> str:
    choice = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if choice == "auto":
        return "cuda" if _torch().cuda.is_available() else "cpu"
    if choice != "cpu" and not choice.startswith("cuda"):
        raise ModelError(f"{DEVICE_ENV}={choice!r}: expected auto, cpu, cuda or cuda:<index>")
    return choice


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no config.json; a Hugging Face checkpoint folder holds config.json and its "
                         "weights (what save_pretrained writes)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable JSON config ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return config


def check_code(name: str, folder: Path, *, trust_code: bool) -> None:
    """Refuse a checkpoint that would run code from its folder (``auto_map`` in a config) unless trusted."""
    asking = [p.name for p in sorted(folder.glob("*.json")) if _asks_for_code(p)]
    if asking and not trust_code:
        raise ModelError(f"model {name!r}: {folder} asks to run code of its own ({', '.join(asking)} has auto_map); "
                         "codecbench never runs code from a checkpoint folder unless you allow it: pass --trust-code "
                         "if you trust it")


def _asks_for_code(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and bool(doc.get("auto_map"))


def folder_sha256(folder: Path) -> str:
    """One digest of a checkpoint folder: every file's name and content, in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def describe(name: str, kind: str, folder: Path, *, trust_code: bool, class_names: list[str] | None,
             label_map: dict | None, prompts: dict | None) -> dict:
    """The sidecar facts of a checkpoint folder (read and checked, nothing loaded yet): sample rate, labels,
    architecture; refuses a label map naming labels the checkpoint does not have."""
    check_code(name, folder, trust_code=trust_code)
    config = read_config(folder)
    meta: dict = {"kind": kind, "architecture": ",".join(config.get("architectures") or [config.get("model_type",
                                                                                                     "?")]),
                  "trust_remote_code": bool(trust_code and _asks_for_code(folder / "config.json"))}
    extractor = _read_json(folder / "preprocessor_config.json")
    rate = extractor.get("sampling_rate") or (config.get("audio_config") or {}).get("sampling_rate") or \
        config.get("sampling_rate")
    if not rate:
        raise ModelError(f"model {name!r}: {folder} says no sampling rate (preprocessor_config.json)")
    meta["sample_rate"] = int(rate)
    meta["frontend"] = {"kind": "waveform", "sample_rate": int(rate)}
    if kind == "hf":
        labels = [str(v) for _, v in sorted((int(k), v) for k, v in (config.get("id2label") or {}).items())]
        if not labels:
            raise ModelError(f"model {name!r}: {folder / 'config.json'} has no id2label; an audio classifier names "
                             "its classes there")
        meta["labels"] = len(labels)
        if label_map:
            unknown = sorted(set(label_map) - set(labels))
            if unknown:
                raise ModelError(f"model {name!r}: the label map names labels the checkpoint does not have: "
                                 f"{', '.join(map(repr, unknown[:5]))} (its labels: {', '.join(labels[:8])}, ...)")
            targets = list(dict.fromkeys(label_map.values()))
            classes = list(class_names or targets)
            unmapped = [c for c in classes if c not in targets]
            if unmapped:
                raise ModelError(f"model {name!r}: no label of the checkpoint maps to {', '.join(unmapped)}; every "
                                 "class needs a source in the label map")
            meta["label_map"], meta["class_names"] = dict(label_map), classes
        else:
            if class_names and list(class_names) != labels:
                raise ModelError(f"model {name!r}: --classes {class_names} differ from the checkpoint's id2label "
                                 f"{labels[:10]}; map them with --label-map")
            meta["class_names"] = labels
    else:
        if not class_names and not prompts:
            raise ModelError(f"model {name!r}: zero-shot CLAP needs the classes to score (--classes) or a prompt "
                             "per class (--prompts)")
        classes = list(class_names or prompts or [])
        meta["class_names"] = classes
        meta["prompts"] = {c: (prompts or {}).get(c) or default_prompt(c) for c in classes}
    return meta


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def load(name: str, folder: Path, meta: dict, sha256: str = ""):
    """The checkpoint as a :class:`~codecbench.models.kinds.ScoringModel` (kind ``hf`` or ``clap``)."""

    torch = _torch()
    import transformers

    transformers.utils.logging.disable_progress_bar()
    trust = bool(meta.get("trust_remote_code"))
    where = device()
    rate = int(meta["sample_rate"])
    try:
        extractor = transformers.AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True,
                                                                      trust_remote_code=trust)
        if meta["kind"] == "hf":
            network = transformers.AutoModelForAudioClassification.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=trust)
        else:
            network = transformers.ClapModel.from_pretrained(str(folder), local_files_only=True)
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise ModelError(f"model {name!r}: transformers cannot load {folder} ({type(exc).__name__}: {exc})") from None
    network = network.to(where).eval()
    meta = {**meta, "params": int(sum(p.numel() for p in network.parameters()))}

    def features(batch: np.ndarray) -> dict:
        # some extractors crop a clip longer than their window at random (CLAP's "rand_trunc", through NumPy's
        # global generator): seeded per batch and restored, so a clip scores the same in every run
        state = np.random.get_state()
        np.random.seed(0)
        try:
            inputs = extractor([np.asarray(x, dtype=np.float32) for x in batch], sampling_rate=rate,
                               return_tensors="pt")
        finally:
            np.random.set_state(state)
        return {k: v.to(where) for k, v in inputs.items()}

    if meta["kind"] == "hf":
        labels = [network.config.id2label[i] for i in range(len(network.config.id2label))]
        multi_label = network.config.problem_type == "multi_label_classification"
        label_map = meta.get("label_map") or {}
        classes = list(meta["class_names"])
        # model label -> dataset class, as a (labels x classes) matrix: probabilities summed many-to-one
        to_classes = np.zeros((len(labels), len(classes)))
        for i, label in enumerate(labels):
            target = label_map.get(label) if label_map else label
            if target in classes:
                to_classes[i, classes.index(target)] = 1.0

        def score(batch: np.ndarray) -> Any:
            with torch.inference_mode():
                logits = network(**features(batch)).logits.float().cpu().numpy().astype(np.float64)
            if multi_label:
                probs = 1 / (1 + np.exp(-logits))
            else:
                probs = np.exp(logits - logits.max(axis=1, keepdims=True))
                probs /= probs.sum(axis=1, keepdims=True)
            summed = probs @ to_classes
            total = summed.sum(axis=1, keepdims=True)
            return np.where(total > 0, summed / np.where(total > 0, total, 1), 1 / len(classes))

        return ScoringModel(name, "hf", parse_frontend(meta["frontend"]), classes, score, "probabilities", sha256,
                            meta)

    classes = list(meta["class_names"])
    prompts = [meta["prompts"][c] for c in classes]
    with torch.inference_mode():
        text = tokenizer(prompts, padding=True, return_tensors="pt")
        text_embeddings = _embedding(network.get_text_features(**{k: v.to(where) for k, v in text.items()}))
        text_embeddings = torch.nn.functional.normalize(text_embeddings, dim=-1)
        scale = float(network.logit_scale_a.exp()) if hasattr(network, "logit_scale_a") else 1.0

    def zero_shot(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            audio = _embedding(network.get_audio_features(**features(batch)))
            audio = torch.nn.functional.normalize(audio, dim=-1)
            return (scale * audio @ text_embeddings.T).float().cpu().numpy()

    return ScoringModel(name, "clap", parse_frontend(meta["frontend"]), classes, zero_shot, "logits", sha256, meta)


def _embedding(output):
    """A features call's tensor (transformers 4 returns it; 5 may wrap it in an output with ``pooler_output``)."""
    return output if not hasattr(output, "pooler_output") else output.pooler_output
