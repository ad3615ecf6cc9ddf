"""The ASC models: the FCNN definition and presets, its segments, and model files."""
from .fcnn import ConvSpec, FCNNConfig, build_fcnn, preset_config
from .io import file_sha256, load_model, read_metadata, save_model, sidecar_path
from .legacy import CheckpointError, infer_config, load_legacy_hdf5
from .segments import Segment, derive_segments, freeze_except, parse_segments

__all__ = ["ConvSpec", "FCNNConfig", "build_fcnn", "preset_config", "load_model", "save_model", "read_metadata",
           "sidecar_path", "file_sha256", "CheckpointError", "infer_config", "load_legacy_hdf5", "Segment",
           "derive_segments", "freeze_except", "parse_segments"]
