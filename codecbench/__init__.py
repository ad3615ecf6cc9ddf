"""codecbench: a pytest-style robustness benchmark of acoustic scene classification under audio coding.

The public API is what ``__all__`` lists (docs/api.md): :func:`evaluate`, the codecs, codec augmentation, the
datasets, the model zoo, the paired statistics and the error families. Everything else is internal and may change.
Names are imported on first use, so ``import codecbench`` stays light (no Keras, no codec library).
"""
import importlib
from typing import TYPE_CHECKING

from codecbench.errors import (  # the error base and its families, for callers to catch
    CacheError,
    CodecbenchError,
    CodecError,
    DataError,
    EnvironmentProblem,
    ModelError,
    UsageError,
)

__version__ = "0.2.0"

if TYPE_CHECKING:  # what type checkers and editors see of the names below, which run time imports on first use
    from codecbench.augment import CodecAugment, CodecAugmentedDataset
    from codecbench.codecs import Condition, availability, parse_condition, roundtrip
    from codecbench.datasets import load_dataset
    from codecbench.results.stats import mcnemar_exact, paired_comparison, wilson_interval
    from codecbench.zoo import Zoo

#: Public names imported on first use: name -> (module, attribute).
_LAZY = {
    "Condition": ("codecs", "Condition"),
    "parse_condition": ("codecs", "parse_condition"),
    "availability": ("codecs", "availability"),
    "roundtrip": ("codecs", "roundtrip"),
    "CodecAugment": ("augment", "CodecAugment"),
    "CodecAugmentedDataset": ("augment", "CodecAugmentedDataset"),
    "load_dataset": ("datasets", "load_dataset"),
    "Zoo": ("zoo", "Zoo"),
    "wilson_interval": ("results.stats", "wilson_interval"),
    "mcnemar_exact": ("results.stats", "mcnemar_exact"),
    "paired_comparison": ("results.stats", "paired_comparison"),
}

__all__ = ["CacheError", "CodecError", "CodecbenchError", "DataError", "EnvironmentProblem", "ModelError",
           "UsageError", "evaluate",
           # imported on first use (_LAZY; tests/test_architecture.py holds the three lists equal)
           "Condition", "parse_condition", "availability", "roundtrip", "CodecAugment", "CodecAugmentedDataset",
           "load_dataset", "Zoo", "wilson_interval", "mcnemar_exact", "paired_comparison"]


def evaluate(models, **kwargs):
    """Accuracy of models under codec conditions as a DataFrame; see :func:`codecbench.api.evaluate`."""
    from codecbench.api import evaluate as _evaluate
    return _evaluate(models, **kwargs)


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module 'codecbench' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
