"""Saving and loading models: ``.keras`` files with a JSON sidecar, and legacy ``.hdf5`` checkpoints.

The sidecar (``<name>.json`` next to ``<name>.keras``) carries what codecbench needs to use a
model correctly: class names, the feature recipe, the FCNN config and provenance. Saving is
atomic (temporary names, then rename; the model file last), so an interrupted save never leaves
a half-written model under its final name.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keras

from .fcnn import FCNNConfig
from .legacy import CheckpointError, load_legacy_hdf5


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_model(model: keras.Model, path: str | Path, metadata: dict) -> Path:
    """Write ``path`` (.keras) and its sidecar atomically; the sidecar records the model file's hash."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: models are saved in the .keras format")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_model = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    tmp_meta = path.with_name(f".{path.stem}.{os.getpid()}.tmp.json")
    # A model file holds the network, not the training state: the optimizer is detached while
    # saving, which halves the file. (Not a clone: building one draws from the global RNG and
    # would change the dropout masks of a training run that saves checkpoints.)
    optimizer = getattr(model, "optimizer", None)
    try:
        if optimizer is not None:
            model.optimizer = None
        try:
            model.save(tmp_model)
        finally:
            if optimizer is not None:
                model.optimizer = optimizer
        meta = {**metadata, "sha256": file_sha256(tmp_model), "params": int(model.count_params())}
        tmp_meta.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        os.replace(tmp_meta, sidecar_path(path))
        os.replace(tmp_model, path)
    finally:
        tmp_model.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    return path


def read_metadata(path: str | Path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{side}: malformed metadata ({exc})") from None


def load_model(path: str | Path, trust: bool = False) -> tuple[keras.Model, dict]:
    """Load a ``.keras`` model (safe mode unless ``trust``) or a legacy ``.hdf5``; return ``(model, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    if path.suffix in (".hdf5", ".h5"):
        model, config = load_legacy_hdf5(path, trust=trust)
        return model, {"config": config.to_dict(), "source": str(path), "strategy": "imported"}
    if path.suffix != ".keras":
        raise CheckpointError(f"{path}: unknown model format; expected .keras, .hdf5 or .h5")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=not trust)
    except ValueError as exc:
        if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
            raise CheckpointError(f"{path}: contains executable (Lambda) code; pass trust=True (--trust-code) "
                                  f"only if you trust its origin ({exc})") from None
        raise CheckpointError(f"{path}: cannot load model ({exc})") from None
    return model, read_metadata(path)


def model_config(model: keras.Model, metadata: dict) -> FCNNConfig | None:
    cfg = metadata.get("config")
    return FCNNConfig.from_dict(cfg) if cfg else None
