"""Optional components the tests need, and the switch that makes their absence a failure.

A test that needs something a plain install may lack (libfdk-aac, the system LAME, Chromium, PyTorch, JAX, ...)
skips through this module only, naming the component; ``CODECBENCH_REQUIRE=fdk,lame,browser`` (or ``all``) turns
those skips into failures, so a CI job that installs a component cannot silently stop testing it. A skip for a
test that does not apply here (HE-AAC's absence checked where it is present) is :func:`not_applicable`. Every other
way to skip is refused by ``tests/test_architecture.py``.
"""
from __future__ import annotations

import importlib.util
import os
from typing import NoReturn

import pytest

#: Every component a test may need, with what it is.
COMPONENTS = {
    "fdk": "Fraunhofer libfdk-aac (HE-AAC, AAC-LD, AAC-ELD; Debian: libfdk-aac2)",
    "lame": "the system LAME (Debian: libmp3lame0)",
    "lc3": "the LC3 codec (pip install lc3py)",
    "codecs": "a codec of the table that PyAV's libavcodec should offer",
    "browser": "selenium with Chromium and chromedriver (Debian: chromium chromium-driver)",
    "tensorflow": "TensorFlow",
    "jax": "JAX (pip install jax)",
    "torch": "PyTorch (pip install torch)",
    "dask": "dask.distributed with its `dask` command",
    "onnx": "onnx and onnxruntime (pip install 'codecbench[onnx]')",
    "audiomentations": "audiomentations (pip install audiomentations)",
    "git": "git and the repository's .git folder",
    "sklearn": "scikit-learn, the metrics' reference implementation (pip install scikit-learn)",
    "transformers": "PyTorch and Hugging Face transformers (pip install 'codecbench[neural]')",
    "gpu": "an accelerator the Keras backend can use",
}

REQUIRE_VARIABLE = "CODECBENCH_REQUIRE"


def required() -> set[str]:
    """The components ``CODECBENCH_REQUIRE`` names (``all``: every one but ``gpu``); an unknown name is an error."""
    names = {n.strip() for n in os.environ.get(REQUIRE_VARIABLE, "").split(",") if n.strip()}
    if "all" in names:
        return set(COMPONENTS) - {"gpu"}
    unknown = sorted(names - set(COMPONENTS))
    if unknown:
        raise pytest.UsageError(f"{REQUIRE_VARIABLE}: unknown component(s) {', '.join(unknown)}; "
                                f"known: {', '.join(COMPONENTS)}, all")
    return names


def _check(component: str) -> None:
    if component not in COMPONENTS:
        raise ValueError(f"unknown optional component {component!r}; add it to COMPONENTS")


def missing(component: str, reason: str, *, module_level: bool = False) -> NoReturn:
    """Skip the test because ``component`` is absent, or fail it when ``CODECBENCH_REQUIRE`` names it."""
    _check(component)
    text = f"{component}: {reason}"
    if component in required():
        pytest.fail(f"{REQUIRE_VARIABLE} requires {COMPONENTS[component]}, but {text}", pytrace=False)
    pytest.skip(text, allow_module_level=module_level)


def needs(component: str, present: bool, reason: str) -> pytest.MarkDecorator:
    """A mark for tests that need ``component``: nothing when ``present``, else a skip, or a failure at set-up
    when ``CODECBENCH_REQUIRE`` names it (see ``pytest_runtest_setup`` in ``tests/conftest.py``)."""
    _check(component)
    if present:
        return pytest.mark.codecbench_optional(component)
    if component in required():
        return pytest.mark.codecbench_required_missing(
            f"{REQUIRE_VARIABLE} requires {COMPONENTS[component]}, but {component}: {reason}")
    return pytest.mark.skipif(True, reason=f"{component}: {reason}")


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (its parent package found first)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def import_or_missing(component: str, module: str, reason: str):
    """``module``, imported, or :func:`missing` at module level (for a test file that needs it throughout)."""
    if not has_module(module):
        missing(component, reason, module_level=True)
    return importlib.import_module(module)


def codec(condition: str) -> None:
    """Skip (or fail) unless ``condition`` can be coded here; the component is its codec's library."""
    from codecbench import codecs
    from codecbench.codecs import parse_condition

    ok, why = codecs.availability(condition)
    if ok:
        return
    backend = parse_condition(condition).spec.backends[0]
    missing(backend if backend in COMPONENTS else "codecs", f"{condition} unavailable here: {why}")


def not_applicable(reason: str) -> NoReturn:
    """Skip a test that does not apply to this machine (it checks an absence, and the thing is present)."""
    pytest.skip(f"not applicable here: {reason}")


def applies(when: bool, reason: str) -> pytest.MarkDecorator:
    """A mark that skips a test (a module, with ``pytestmark``) where it does not apply: ``when`` is false."""
    return pytest.mark.skipif(not when, reason=f"not applicable here: {reason}")
