"""The ASC models: the FCNN definition and presets, its segments, and model files.

Attributes are imported on first use, so reading a zoo's names or a sidecar does not start Keras.
"""
import importlib

from codecbench.errors import CheckpointError

_EXPORTS = {
    "ConvSpec": "fcnn", "FCNNConfig": "fcnn", "build_fcnn": "fcnn", "preset_config": "fcnn",
    "load_model": "io", "save_model": "io", "read_metadata": "io", "sidecar_path": "io", "file_sha256": "io",
    "infer_config": "legacy", "load_legacy_hdf5": "legacy",
    "Segment": "segments", "derive_segments": "segments", "freeze_except": "segments", "parse_segments": "segments",
    "forward_flops": "segments", "training_step_shares": "segments",
}
__all__ = ["CheckpointError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
