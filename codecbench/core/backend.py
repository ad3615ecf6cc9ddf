"""Keras, imported quietly: the one place codecbench imports it.

TensorFlow's C++ start-up writes absl and CPU-feature lines to the process's stderr before any
Python logging setting applies, drowning the tool's own output. While TensorFlow is first
imported, file descriptor 2 points at /dev/null; afterwards everything (its errors included)
reaches stderr as usual. A user's own ``TF_CPP_MIN_LOG_LEVEL`` wins over ours.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys

from codecbench.core import backend_choice


def _import_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    wants_tf = backend_choice.check() == "tensorflow"  # a missing backend: named, with its install line
    if wants_tf and "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            sys.stderr.flush()
            os.dup2(null, 2)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
    import keras as _keras
    return _keras


keras = _import_quietly()


@contextlib.contextmanager
def quiet_retracing():
    """Hide TensorFlow's "triggered tf.function retracing" warnings: running many models (a zoo, or a shared
    prefix's sub-models) traces each one's predict function once, which is expected, not a problem."""
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_log.setLevel(level)
