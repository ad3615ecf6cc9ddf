"""The ASC models: the FCNN definition and presets, its segments, and model files.

Importing this package quiets TensorFlow's C++ start-up logging unless the user set it.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .fcnn import ConvSpec, FCNNConfig, build_fcnn, preset_config  # noqa: E402
from .io import file_sha256, load_model, read_metadata, save_model, sidecar_path  # noqa: E402
from .legacy import CheckpointError, infer_config, load_legacy_hdf5  # noqa: E402
from .segments import Segment, derive_segments, freeze_except, parse_segments  # noqa: E402

__all__ = ["ConvSpec", "FCNNConfig", "build_fcnn", "preset_config", "load_model", "save_model", "read_metadata",
           "sidecar_path", "file_sha256", "CheckpointError", "infer_config", "load_legacy_hdf5", "Segment",
           "derive_segments", "freeze_except", "parse_segments"]
