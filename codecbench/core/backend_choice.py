"""Which Keras backend this process asks for (``KERAS_BACKEND``), and whether it is installed, found without
importing Keras: a missing or misspelt backend is a named error with the install line, before any work."""
from __future__ import annotations

import importlib.util
import os

from codecbench.errors import EnvironmentProblem

#: Keras 3's backends that codecbench runs on, each with the module it needs and the line that installs it.
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install tensorflow-cpu (codecbench's default install has it; with CUDA: see "
                                 "README 'Accelerators')"),
    "jax": ("jax", "pip install 'codecbench[jax]' (with CUDA: 'codecbench[jax-cuda]')"),
    "torch": ("torch", "pip install torch --index-url https://download.pytorch.org/whl/cpu (a CUDA build: "
                       "'codecbench[torch-cuda]')"),
}


class BackendMissing(EnvironmentProblem):
    """The Keras backend asked for is not one codecbench runs on, or not installed here."""


def chosen() -> str:
    """The backend ``KERAS_BACKEND`` names (Keras's default, TensorFlow, when it is not set)."""
    return os.environ.get("KERAS_BACKEND", "").strip() or "tensorflow"


def installed() -> list[str]:
    return [name for name, (module, _) in BACKENDS.items() if importlib.util.find_spec(module) is not None]


def check() -> str:
    """The chosen backend, or :class:`BackendMissing` naming it, what is installed and how to install it."""
    name = chosen()
    have = ", ".join(installed()) or "none"
    if name not in BACKENDS:
        raise BackendMissing(f"KERAS_BACKEND={name!r} is not a Keras backend codecbench runs on; choose one of "
                             f"{', '.join(BACKENDS)} (installed here: {have})")
    module, install = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        raise BackendMissing(f"KERAS_BACKEND={name} asks for {module}, which is not installed here (installed "
                             f"backends: {have}): {install}")
    return name
