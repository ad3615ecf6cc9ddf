"""Saving and loading models: ``.keras`` files with a JSON sidecar, and legacy ``.hdf5`` checkpoints.

The sidecar (``<name>.json`` next to ``<name>.keras``) carries what codecbench needs to use a
model correctly: class names, the feature recipe, the FCNN config and provenance. Saving is
atomic (temporary names, then rename; the model file last), so an interrupted save never leaves
a half-written model under its final name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from codecbench.core.fsutil import atomic_write, file_digest
from codecbench.errors import CheckpointError

#: One hash function for files: the model's hash is the file's SHA-256.
file_sha256 = file_digest


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model(model, path: str | Path, metadata: dict) -> Path:
    """Write ``path`` (.keras) and its sidecar atomically; the sidecar records the model file's hash."""
    path = Path(path)
    if path.suffix != ".keras":
        raise CheckpointError(f"{path}: models are saved in the .keras format")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A model file holds the network, not the training state: the optimizer is detached while
    # saving, which halves the file. (Not a clone: building one draws from the global RNG and
    # would change the dropout masks of a training run that saves checkpoints.)
    optimizer = getattr(model, "optimizer", None)
    digest = {}

    def write_model(tmp: Path) -> None:
        keras_tmp = tmp.with_name(tmp.name + ".keras")  # Keras insists on the suffix
        try:
            if optimizer is not None:
                model.optimizer = None
            model.save(keras_tmp)
        finally:
            if optimizer is not None:
                model.optimizer = optimizer
        keras_tmp.replace(tmp)
        digest["sha256"] = file_digest(tmp)

    # the sidecar is written after the model's bytes exist, the model renamed into place last
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        atomic_write(staged, write_model)
        meta = {**metadata, "sha256": digest["sha256"], "params": int(model.count_params())}
        atomic_write(sidecar_path(path), json.dumps(meta, indent=2, sort_keys=True, default=str))
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def read_metadata(path: str | Path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{side}: malformed metadata ({exc})") from None


def load_model(path: str | Path, trust: bool = False):
    """Load a ``.keras`` model (safe mode unless ``trust``) or a legacy ``.hdf5``; return ``(model, metadata)``."""
    from codecbench.core.backend import keras
    from codecbench.models.legacy import load_legacy_hdf5

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
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
