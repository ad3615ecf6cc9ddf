"""codecbench: a pytest-style robustness benchmark of acoustic scene classification under audio coding."""
import os

# TensorFlow's C++ start-up chatter drowns the tool's own output; a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .errors import CodecbenchError  # noqa: E402  (the one error base class, for callers to catch)

__version__ = "0.2.0"
__all__ = ["CodecbenchError", "evaluate"]


def evaluate(models, **kwargs):
    """Accuracy of models under codec conditions as a DataFrame; see :func:`codecbench.api.evaluate`."""
    from .api import evaluate as _evaluate
    return _evaluate(models, **kwargs)
