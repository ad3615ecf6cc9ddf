"""The model zoo: named models in a folder, ``<name>.keras`` each with a ``<name>.json`` sidecar.

Names follow the paper's experiments: ``base``; ``finetuned_full@eN`` (Experiment A after N
epochs; ``finetuned_full`` is the paper's choice, 10 epochs); ``finetuned_seg1`` ...
``finetuned_seg10`` (Experiment B). Users may add their own names with ``import-model``.
The folder is ``--model-dir``, else ``[tool.codecbench] model_dir``, else the small demo zoo
packaged with codecbench for the synthetic default dataset.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .models import file_sha256, load_model, read_metadata, save_model

ALIASES = {"finetuned_full": "finetuned_full@e10"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


class ZooError(ValueError):
    """An unknown or unusable model name; the message lists what exists."""


def packaged_model_dir() -> Path:
    return Path(str(resources.files("codecbench") / "zoo_data" / "demo"))


def resolve_model_dir(model_dir: str | Path | None = None, config: dict | None = None) -> Path:
    if model_dir:
        return Path(model_dir).expanduser()
    if config and config.get("model_dir"):
        return Path(config["model_dir"]).expanduser()
    return packaged_model_dir()


def sort_key(name: str):
    """Canonical order: base, full fine-tuning by epoch, segments by number, then the rest."""
    if name == "base":
        return (0, 0, name)
    if m := re.fullmatch(r"finetuned_full@e(\d+)", name):
        return (1, int(m[1]), name)
    if m := re.fullmatch(r"finetuned_seg(\d+)", name):
        return (2, int(m[1]), name)
    return (3, 0, name)


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ZooError(f"model name {name!r}: use letters, digits, '_', '-', '.', '@' (e.g. finetuned_seg7)")
    return name


class Zoo:
    def __init__(self, root: str | Path | None = None):
        self.root = resolve_model_dir(root)

    def __repr__(self) -> str:
        return f"Zoo({str(self.root)!r})"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted((p.stem for p in self.root.glob("*.keras") if not p.name.startswith(".")), key=sort_key)

    def aliases(self) -> dict[str, str]:
        return {alias: target for alias, target in ALIASES.items() if target in self.names()}

    def resolve(self, name: str) -> str:
        names = self.names()
        if name in names:
            return name
        if name in ALIASES and ALIASES[name] in names:
            return ALIASES[name]
        available = ", ".join(names + list(self.aliases())) or "none"
        raise ZooError(f"unknown model {name!r} in {self.root}; available: {available}")

    def path(self, name: str) -> Path:
        return self.root / f"{self.resolve(name)}.keras"

    def metadata(self, name: str) -> dict:
        return read_metadata(self.path(name))

    def load(self, name: str):
        return load_model(self.path(name))

    def save(self, name: str, model, metadata: dict) -> Path:
        check_name(name)
        return save_model(model, self.root / f"{name}.keras", {**metadata, "name": name})

    def sha256(self, name: str) -> str:
        meta = self.metadata(name)
        return meta.get("sha256") or file_sha256(self.path(name))

    def rows(self) -> list[dict]:
        """One summary row per model, for ``codecbench zoo list``."""
        out = []
        reverse = {v: k for k, v in self.aliases().items()}
        for name in self.names():
            meta = read_metadata(self.root / f"{name}.keras")
            out.append({"name": name + (f" (= {reverse[name]})" if name in reverse else ""),
                        "strategy": meta.get("strategy", "?"), "parent": meta.get("parent") or "-",
                        "epochs": meta.get("epochs", "-"), "params": meta.get("params", "?"),
                        "dataset": meta.get("dataset", {}).get("name", "-"),
                        "skipped conditions": ",".join(meta.get("finetune_conditions_skipped", [])) or "-"})
        return out


def compare(zoo: Zoo, other: Zoo) -> list[dict]:
    """Per model in both zoos: largest absolute weight difference (0.0 = bit-identical weights)."""
    import numpy as np

    rows = []
    for name in zoo.names():
        if name not in other.names():
            rows.append({"model": name, "max_abs_diff": None, "note": f"missing in {other.root}"})
            continue
        a, b = zoo.load(name)[0].get_weights(), other.load(name)[0].get_weights()
        if [w.shape for w in a] != [w.shape for w in b]:
            rows.append({"model": name, "max_abs_diff": None, "note": "different architectures"})
            continue
        diff = max((float(np.max(np.abs(x - y))) for x, y in zip(a, b) if x.size), default=0.0)
        rows.append({"model": name, "max_abs_diff": diff, "note": "bit-identical" if diff == 0 else ""})
    return rows
