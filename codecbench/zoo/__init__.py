"""The model zoo: named models in a folder, ``<name>.keras`` each with a ``<name>.json`` sidecar.

Names follow the paper's experiments: ``base``; ``finetuned_full@eN`` (Experiment A after N
epochs; ``finetuned_full`` is the paper's choice, 10 epochs); ``finetuned_seg1`` ...
``finetuned_seg10`` (Experiment B). Users may add their own names with ``import-model``. The
rules for these names live here and nowhere else (:func:`model_kind`).

Reading: ``--model-dir``, else ``[tool.codecbench] model_dir``, else the small demo zoo packaged
with codecbench. Writing never goes into the packaged zoo: without ``--model-dir`` new models go
to the user model folder (:func:`user_model_dir`), and an existing model is replaced only when
asked to (``--force``).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import platformdirs

from codecbench.core.fsutil import atomic_write, file_digest, remove_stale_temporaries
from codecbench.errors import CodecbenchError, ModelError
from codecbench.models import huggingface, kinds
from codecbench.models.huggingface import folder_sha256
from codecbench.models.io import load_model, read_metadata, save_model, sidecar_path
from codecbench.signal.frontends import parse_frontend
from codecbench.zoo import trust

ALIASES = {"finetuned_full": "finetuned_full@e10"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")
_FULL_RE = re.compile(r"finetuned_full@e(\d+)")
_SEGMENT_RE = re.compile(r"finetuned_seg(\d+)")


class ZooError(ModelError):
    """An unknown or unusable model name, or a model folder that cannot be written; the message says which."""


class ModelFileChanged(ZooError):
    """A model file that is not the one its sidecar describes: replaced under an existing name."""


def full_name(epochs: int) -> str:
    return f"finetuned_full@e{epochs}"


def segment_name(segment: int) -> str:
    return f"finetuned_seg{segment}"


def model_kind(name: str) -> tuple[str, int]:
    """``("base", 0)``, ``("full", epochs)``, ``("segment", k)``, ``("consistency", 0)`` or ``("other", 0)``."""
    if name == "base":
        return "base", 0
    if m := _FULL_RE.fullmatch(name):
        return "full", int(m[1])
    if m := _SEGMENT_RE.fullmatch(name):
        return "segment", int(m[1])
    if name.startswith("finetuned_consistency"):
        return "consistency", 0
    return "other", 0


def sort_key(name: str):
    """Canonical order: base, full fine-tuning by epoch, segments by number, consistency, then the rest."""
    kind, number = model_kind(name)
    return ({"base": 0, "full": 1, "segment": 2, "consistency": 3, "other": 4}[kind], number, name)


def packaged_model_dir() -> Path:
    return Path(str(resources.files("codecbench") / "zoo_data" / "demo"))


def user_model_dir() -> Path:
    """Where models go when no ``--model-dir`` is given: ``$CODECBENCH_MODELS``, else the user data folder."""
    if os.environ.get("CODECBENCH_MODELS"):
        return Path(os.environ["CODECBENCH_MODELS"]).expanduser()
    return Path(platformdirs.user_data_dir("codecbench")) / "models"


def resolve_model_dir(model_dir: str | Path | None = None) -> Path:
    return Path(model_dir).expanduser() if model_dir else packaged_model_dir()


def is_packaged(folder: Path) -> bool:
    try:
        return folder.resolve() == packaged_model_dir().resolve()
    except OSError:
        return False


#: Longest model name: it becomes file names (<name>.keras, <name>.json) on every file system.
MAX_NAME = 100


def check_name(name: str) -> str:
    if len(name) > MAX_NAME:
        raise ZooError(f"model name {name[:20]}... has {len(name)} characters; at most {MAX_NAME}")
    if not _NAME_RE.match(name):
        raise ZooError(f"model name {name!r}: use letters, digits, '_', '-', '.', '@', '+' (e.g. finetuned_seg7)")
    return name


@dataclasses.dataclass(frozen=True, eq=False)
class ModelEntry:
    """A model of the zoo, resolved once per run: its name, file, kind and sidecar facts.

    Everything downstream (cases, the evaluator, reports) takes this object instead of asking the
    zoo about a name again.
    """

    name: str
    path: Path
    kind: str
    metadata: dict

    @property
    def sha256(self) -> str:
        return self.metadata.get("sha256") or file_digest(self.path)

    @property
    def is_derived(self) -> bool:
        """Made from another model of the zoo (fine-tuned, or given a post-filter), not a reference model."""
        return bool(self.metadata.get("parent"))

    @property
    def frontend(self):
        """The model's front-end (:class:`codecbench.signal.frontends.FrontEnd`), from its sidecar."""
        return parse_frontend(self.metadata.get("frontend"))


class Zoo:
    """The models of one folder. ``trust_code`` lets its models run code (Python entry points, Keras Lambda
    layers) without an import by this user (see :mod:`codecbench.zoo.trust`)."""

    def __init__(self, root: str | Path | None = None, *, trust_code: bool = False):
        self.root = resolve_model_dir(root)
        self.trust_code = trust_code
        # the folder is listed and each model resolved once; this zoo's own writes forget what they change
        self._names: list[str] | None = None
        self._entries: dict[str, ModelEntry] = {}

    def forget(self) -> None:
        """List the folder again on the next question (after another process changed it)."""
        self._names, self._entries = None, {}

    def __repr__(self) -> str:
        return f"Zoo({str(self.root)!r})"

    @property
    def writable(self) -> bool:
        return not is_packaged(self.root)

    def names(self) -> list[str]:
        """Every model: ``<name>.keras``, ``<name>.onnx`` (with its sidecar), or a sidecar of kind ``python``."""
        if self._names is None:
            self._names = self._list()
        return list(self._names)

    def _list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = {p.stem for pattern in ("*.keras", "*.onnx") for p in self.root.glob(pattern)
                 if not p.name.startswith(".")}
        for side in self.root.glob("*.json"):
            if not side.name.startswith(".") and side.stem not in found and _sidecar_kind(side) in SIDECAR_KINDS:
                found.add(side.stem)
        return sorted(found, key=sort_key)

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

    def entry(self, name: str) -> ModelEntry:
        """The model called ``name`` (or an alias of it), resolved once: file, kind and sidecar facts.

        A name maps to exactly one kind: a leftover file of another kind is an error, never silently preferred.
        """
        if name in self._entries:
            return self._entries[name]

        resolved = self.resolve(name)
        if resolved not in self._entries:
            path = self._file(resolved)
            kind = {".keras": "keras", ".onnx": "onnx"}.get(path.suffix) or _sidecar_kind(path) or "python"
            self._entries[resolved] = ModelEntry(resolved, path, kind, read_metadata(path))
        self._entries[name] = self._entries[resolved]
        return self._entries[name]

    def _entry(self, model: ModelEntry | str) -> ModelEntry:
        """``model`` itself when it is an entry of this zoo's (resolved before), else the entry of that name."""
        return model if isinstance(model, ModelEntry) else self.entry(model)

    def path(self, model: ModelEntry | str) -> Path:
        """The model's file: ``.keras``, ``.onnx``, or the sidecar of a Python model."""
        return self._entry(model).path

    def _file(self, resolved: str) -> Path:
        found = [self.root / f"{resolved}{suffix}" for suffix in (".keras", ".onnx")
                 if (self.root / f"{resolved}{suffix}").is_file()]
        side = self.root / f"{resolved}.json"
        declared = _sidecar_kind(side) if side.is_file() else None
        if len(found) > 1 or (found and declared in SIDECAR_KINDS):
            files = [str(p) for p in found] + ([f"{side} (kind {declared})"] if declared in SIDECAR_KINDS else [])
            raise ZooError(f"model {resolved!r} has files of several kinds: {', '.join(files)}; keep one (replace it "
                           "with import-model --force, which removes the others)")
        return found[0] if found else side

    def kind(self, model: ModelEntry | str) -> str:
        return self._entry(model).kind

    def metadata(self, model: ModelEntry | str) -> dict:
        """The model's sidecar facts (a copy: the resolved entry stays as read)."""
        return copy.deepcopy(self._entry(model).metadata)

    def parent(self, model: str, use: str) -> Parent:
        """``model`` as the parent of a remedy: a Keras model of this zoo, its file checked before any work, else a
        named error saying what ``use`` needs (fine-tuning, a post-filter's classifier)."""
        entry = self.entry(model)
        if entry.kind != "keras":
            raise ModelError(f"model {entry.name!r} is a {entry.kind} model; {use} needs a Keras model")
        self.check_file(entry)
        return Parent(entry, self)

    def load(self, model: ModelEntry | str):
        """The Keras model and its metadata (fine-tuning and segments work on Keras models only)."""

        entry = self._entry(model)
        if entry.kind != "keras":
            raise ModelError(f"model {entry.name!r} is a {entry.kind} model; fine-tuning and segments are Keras-only")
        self.check_file(entry)
        return load_model(entry.path, trust=self.trust_code)

    def check_trust(self, model: ModelEntry | str) -> None:
        """Refuse a model whose loading would run code the user has not allowed (a Python entry point)."""

        entry = self._entry(model)
        if entry.kind != "python" or self.trust_code:
            return
        meta = entry.metadata
        if not trust.is_trusted(meta):
            raise ModelError(f"{entry.path}: model {entry.name!r} would run Python code (entry point "
                             f"{meta.get('entry_point')!r} with arguments {meta.get('kwargs') or {}}); codecbench "
                             "runs code from a model folder only when you allow it: pass --trust-code (or set "
                             "trust_code = true in [tool.codecbench]) if you trust this folder, or import the model "
                             "yourself with `codecbench import-model`")

    def check_file(self, model: ModelEntry | str) -> None:
        """Refuse a model file that is not the one its sidecar describes (replaced under an existing name)."""
        entry = self._entry(model)
        path = entry.path
        recorded = entry.metadata.get("sha256")
        if entry.kind in CHECKPOINT_KINDS:
            folder = self.checkpoint_folder(entry)
            if not folder.is_dir():
                raise ZooError(f"{path}: model {entry.name!r} keeps its checkpoint in {folder}, which is missing")
            if recorded and folder_sha256(folder) != recorded:
                raise ModelFileChanged(f"{folder}: model {entry.name!r} is not the checkpoint its sidecar describes "
                                       f"(sidecar sha256 {recorded[:12]}, folder {folder_sha256(folder)[:12]}); "
                                       "re-import it with `codecbench import-model --force`")
            return
        if path.suffix in (".keras", ".onnx") and recorded and file_digest(path) != recorded:
            raise ModelFileChanged(f"{path}: model {entry.name!r} is not the file its sidecar describes "
                                   f"(sidecar sha256 {recorded[:12]}, file {file_digest(path)[:12]}); it was replaced "
                                   "under its name: re-import it with `codecbench import-model --force`")

    def scoring(self, model: ModelEntry | str):
        """The model as codecbench evaluates it (any kind): a :class:`codecbench.models.kinds.ScoringModel`."""

        entry = self._entry(model)
        if entry.kind == "keras":
            keras_model, meta = self.load(entry)
            return kinds.from_keras(entry.name, keras_model, meta, entry.sha256)
        meta = copy.deepcopy(entry.metadata)
        if entry.kind == "onnx":
            self.check_file(entry)
            return kinds.load_onnx(entry.name, entry.path, meta, entry.sha256)
        if entry.kind in CHECKPOINT_KINDS:
            self.check_file(entry)
            folder = self.checkpoint_folder(entry)
            # code of the checkpoint's own runs only where this run, or the user's import, trusts it
            huggingface.check_code(entry.name, folder, trust_code=self.trust_code or (
                bool(meta.get("trust_remote_code")) and trust.is_trusted(meta)))
            return huggingface.load(entry.name, folder, meta, entry.sha256)
        self.check_trust(entry)
        return kinds.load_python(entry.name, meta, entry.sha256)

    def checkpoint_folder(self, model: ModelEntry | str) -> Path:
        """The folder a Hugging Face model (kind ``hf`` or ``clap``) keeps its checkpoint in, beside its sidecar."""
        entry = self._entry(model)
        return self.root / str(entry.metadata.get("folder") or f"{entry.name}.hf")

    def check_writable(self, names: list[str], overwrite: bool = False) -> None:
        """Refuse, before any work, names a model cannot have, and writing into the packaged zoo or over existing
        models."""
        for name in names:
            check_name(name)  # `--name ../evil` was refused only at the save, after the training
        self.forget()  # the folder as it is now, not as this zoo first listed it
        if not self.writable:
            raise ZooError(f"{self.root} is the packaged demo zoo, which codecbench never writes to; pass "
                           f"--model-dir DIR (without it, new models go to {user_model_dir()})")
        existing = [n for n in names if n in self.names()]
        if existing and not overwrite:
            raise ZooError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''} in {self.root}; "
                           "pass --force to replace, or choose another --name/--model-dir")

    def save(self, name: str, model, metadata: dict, *, overwrite: bool = False) -> Path:
        check_name(name)
        self.check_writable([name], overwrite)
        # get_weights: NumPy copies on every backend (a PyTorch variable that requires grad has no __array__)
        bad = [w.name for w, value in zip(model.weights, model.get_weights()) if not np.all(np.isfinite(value))]
        if bad:  # the last guard: a model that scores NaN would be benchmarked silently at chance
            raise ZooError(f"model {name!r} has weights that are not finite ({', '.join(bad[:3])}); it is not saved")
        self.forget()
        remove_stale_temporaries(self.root) if self.root.is_dir() else None
        path = save_model(model, self.root / f"{name}.keras", {**metadata, "name": name})
        self._remove_other_kinds(name, keep=path)
        return path

    def _remove_other_kinds(self, name: str, keep: Path | None) -> None:
        """A replaced model's files of another kind go, so the name maps to one set of files."""
        for suffix in (".keras", ".onnx"):
            other = self.root / f"{name}{suffix}"
            if other != keep:
                other.unlink(missing_ok=True)

    def sha256(self, model: ModelEntry | str) -> str:
        return self._entry(model).sha256

    def save_external(self, name: str, metadata: dict, *, source: Path | None = None,
                      overwrite: bool = False) -> Path:
        """Put an ONNX file (``source``) or a Python model (sidecar only) into the zoo, atomically."""


        check_name(name)
        self.check_writable([name], overwrite)
        self.forget()
        meta = {**metadata, "name": name}
        if source is not None:
            target = self.root / f"{name}{Path(source).suffix}"
            def copy(tmp: Path) -> None:
                shutil.copyfile(source, tmp)

            atomic_write(target, copy)
            meta["sha256"] = file_digest(target)
        else:
            target = sidecar_path(self.root / f"{name}.json")
        # the other kind's files go before the sidecar is written: interrupted in between, the old sidecar no
        # longer matches the file left (check_file says so) and nothing runs the old network under the new facts
        self._remove_other_kinds(name, keep=target if source is not None else None)
        atomic_write(sidecar_path(self.root / f"{name}.json"), json.dumps(meta, indent=2, sort_keys=True))
        return target

    def save_checkpoint(self, name: str, metadata: dict, source: Path, *, overwrite: bool = False) -> Path:
        """Copy a Hugging Face checkpoint folder into the zoo as ``<name>.hf/`` with its sidecar (the folder's
        digest recorded), replacing an older one only when asked."""
        check_name(name)
        self.check_writable([name], overwrite)
        self.forget()
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / f"{name}.hf"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.hf-", dir=self.root))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True, symlinks=False,
                            ignore=shutil.ignore_patterns(".*"))
            meta = {**metadata, "name": name, "folder": target.name, "sha256": folder_sha256(staging)}
            self._remove_other_kinds(name, keep=None)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        atomic_write(sidecar_path(self.root / f"{name}.json"), json.dumps(meta, indent=2, sort_keys=True))
        return target

    def rows(self) -> list[dict]:
        """One summary row per model, for ``codecbench zoo list``."""
        out = []
        reverse = {v: k for k, v in self.aliases().items()}
        for name in self.names():
            meta = self.entry(name).metadata
            try:
                frontend = parse_frontend(meta.get("frontend")).describe()
            except CodecbenchError:
                frontend = "invalid"
            out.append({"name": name + (f" (= {reverse[name]})" if name in reverse else ""), "kind": self.kind(name),
                        "front-end": frontend, "strategy": meta.get("strategy", "?"),
                        "parent": meta.get("parent") or "-",
                        "epochs": meta.get("epochs", "-"), "params": meta.get("params", "?"),
                        "dataset": meta.get("dataset", {}).get("name", "-"),
                        "skipped conditions": ",".join(meta.get("finetune_conditions_skipped", [])) or "-"})
        return out


#: Kinds whose model is described by its sidecar alone (a Python entry point) or keeps a checkpoint folder beside it.
CHECKPOINT_KINDS = ("hf", "clap")
SIDECAR_KINDS = ("python", *CHECKPOINT_KINDS)


@dataclasses.dataclass(frozen=True, eq=False)
class Parent:
    """The Keras model a remedy starts from (:meth:`Zoo.parent`): its entry, and the zoo that reads it (its trust
    setting and file checks). The remedies take this object, resolved once, never a name."""

    entry: ModelEntry
    zoo: Zoo

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def sha256(self) -> str:
        return self.zoo.sha256(self.entry)

    @property
    def metadata(self) -> dict:
        return self.zoo.metadata(self.entry)

    def load(self):
        """The Keras model and its sidecar facts, loaded afresh (every run of a remedy starts from the parent)."""
        return self.zoo.load(self.entry)


def _sidecar_kind(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def compare(zoo: Zoo, other: Zoo) -> list[dict]:
    """Per model in both zoos: largest absolute weight difference (0.0 = bit-identical weights)."""

    rows: list[dict] = []
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
