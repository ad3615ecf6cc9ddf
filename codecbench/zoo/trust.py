"""Which code from a model folder the user has allowed to run.

A model folder is data, and anyone can hand one over. Two things in it would run code when a model is
loaded: the entry point of a Python-kind model's sidecar (imported and called with its ``kwargs``), and Keras
Lambda layers. codecbench runs neither unless the user said so:

- ``--trust-code`` (or ``trust_code = true`` in ``[tool.codecbench]``) for a whole run, or
- an import by this user on the command line (``codecbench import-model``), which records the entry point and
  its arguments (for a Hugging Face checkpoint imported with ``--trust-code``: the folder's digest) in the
  user's trust list (``$CODECBENCH_TRUST_FILE``, else ``trusted-code.json`` in the user
  configuration folder). A sidecar naming exactly that entry point with exactly those arguments then loads.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import platformdirs

from codecbench.core.fsutil import atomic_write, file_lock


def trust_file() -> Path:
    if os.environ.get("CODECBENCH_TRUST_FILE"):
        return Path(os.environ["CODECBENCH_TRUST_FILE"]).expanduser()
    return Path(platformdirs.user_config_dir("codecbench")) / "trusted-code.json"


def code_identity(meta: dict) -> str:
    """What a Python model runs: its entry point and arguments, as one digest."""
    code = _code(meta)
    return hashlib.sha256(json.dumps(code, sort_keys=True, default=str).encode()).hexdigest()


def _code(meta: dict) -> dict:
    """What a model would run: a Hugging Face checkpoint's code is that of its folder (its digest); a Python
    model's is its entry point and arguments."""
    if meta.get("kind") in ("hf", "clap"):
        return {"checkpoint": meta.get("sha256")}
    return {"entry_point": meta.get("entry_point"), "kwargs": meta.get("kwargs") or {}}


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # no list yet, or an unreadable one: nothing is trusted by it
    return doc if isinstance(doc, dict) else {}


def is_trusted(meta: dict) -> bool:
    """Whether this user imported a model that runs exactly this code."""
    return code_identity(meta) in _read(trust_file())


def remember(meta: dict) -> None:
    """Record that the user imported (and so trusts) the code of ``meta``."""
    path = trust_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        doc = _read(path)
        doc[code_identity(meta)] = _code(meta)
        atomic_write(path, json.dumps(doc, indent=1, sort_keys=True, default=str))
