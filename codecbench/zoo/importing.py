"""Importing a model of one's own into a zoo: a Keras file, an ONNX file, or a Python entry point.

The model is loaded and checked (input, classes, outputs) before anything is written; a Keras model is saved
as a ``.keras`` file with its sidecar, an ONNX file is copied beside its sidecar, a Python entry point is recorded
in a sidecar and remembered as trusted (the user named it, so its code may run in later runs).
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from codecbench.core.provenance import now
from codecbench.errors import ModelError, UsageError
from codecbench.models import file_sha256, huggingface, kinds, load_model
from codecbench.signal.frontends import parse_frontend
from codecbench.zoo import Zoo, check_name, trust

#: File suffixes and the kind of model they hold.
KIND_OF_SUFFIX = {".keras": "keras", ".hdf5": "keras", ".h5": "keras", ".onnx": "onnx"}


@dataclasses.dataclass(frozen=True)
class Imported:
    """What :func:`import_model` wrote: the model's name, kind, file and a line for people."""

    name: str
    kind: str
    path: Path
    summary: str


#: Source prefixes naming a Hugging Face checkpoint (a folder or a hub id) and the kind it is imported as.
CHECKPOINT_PREFIXES = {"hf:": "hf", "clap:": "clap"}


def source_kind(source: str) -> str:
    """The kind of model ``source`` names: ``hf:``/``clap:`` a checkpoint, by file suffix, or ``python`` for
    ``module:function`` that is no file."""
    for prefix, checkpoint_kind in CHECKPOINT_PREFIXES.items():
        if source.startswith(prefix):
            return checkpoint_kind
    kind = KIND_OF_SUFFIX.get(Path(source).suffix)
    if kind is None and ":" in source and not Path(source).exists():
        kind = "python"
    if kind is None:
        raise UsageError(f"{source}: cannot tell the model kind; pass --kind keras|onnx|python")
    return kind


def import_model(zoo: Zoo, source: str, *, name: str, kind: str | None = None, frontend=None,
                 class_names: list[str] | None = None, class_map: dict | None = None, outputs: str | None = None,
                 kwargs: dict | None = None, trust_code: bool = False, overwrite: bool = False) -> Imported:
    """Import the model at ``source`` into ``zoo`` as ``name``.

    Parameters
    ----------
    zoo : Zoo
        A writable zoo.
    source : str
        A ``.keras``/``.hdf5``/``.onnx`` file, a Python entry point ``package.module:factory``, or a Hugging Face
        checkpoint ``hf:<folder or hub id>`` (an audio classifier) or ``clap:<folder or hub id>`` (zero-shot).
    name : str
        The model's name in the zoo.
    kind : {"keras", "onnx", "python", "hf", "clap"}, optional
        The model's kind when its name does not say (see :func:`source_kind`).
    frontend : FrontEnd, optional
        The front-end its inputs come from; default: the model's own or the baseline log-mel.
    class_names, class_map, outputs, kwargs
        Its class names, a map of its classes to the dataset's (for ``hf``: many-to-one, probabilities summed),
        ``"logits"`` or ``"probabilities"``, and the entry point's keyword arguments (for ``clap``: the prompt
        of each class).
    trust_code : bool
        Let a Keras file with code (a ``Lambda`` layer) load.
    overwrite : bool
        Replace a model of the same name.
    """

    zoo.check_writable([check_name(name)], overwrite)
    kind = kind or source_kind(source)
    meta: dict = {"kind": kind, "strategy": "imported", "imported_from": str(source), "created": now()}
    if frontend is not None:
        meta["frontend"] = frontend.to_dict()
    if class_names:
        meta["class_names"] = list(class_names)
    if class_map:
        meta["class_map"] = dict(class_map)
    if outputs:
        meta["outputs"] = outputs
    path = Path(source)
    if kind in CHECKPOINT_PREFIXES.values():
        return _import_checkpoint(zoo, source, name=name, kind=kind, meta=meta, class_names=class_names,
                                  label_map=class_map, prompts=kwargs, trust_code=trust_code, overwrite=overwrite)
    if kind == "keras":
        model, loaded = load_model(path, trust=trust_code)
        meta = {**loaded, **meta, "source_sha256": file_sha256(path)}
        kinds.validate(kinds.from_keras(name, model, meta))
        written = zoo.save(name, model, meta, overwrite=overwrite)
        return Imported(name, kind, written, f"imported {source} as {name!r} -> {written} "
                                             f"({model.count_params():,} parameters)")
    if kind == "onnx":
        if not path.is_file():
            raise UsageError(f"{path}: ONNX file not found")
        meta["source_sha256"] = file_sha256(path)
        kinds.validate(kinds.load_onnx(name, path, meta))  # before anything is written
        _check_onnx_self_contained(name, path, meta)
        written = zoo.save_external(name, meta, source=path, overwrite=overwrite)
    else:
        meta["entry_point"] = source
        if kwargs:
            meta["kwargs"] = kwargs
        model = kinds.load_python(name, meta)
        meta.setdefault("class_names", model.class_names)
        meta.setdefault("frontend", model.frontend.to_dict())
        kinds.validate(model)
        written = zoo.save_external(name, meta, overwrite=overwrite)
        trust.remember(meta)  # imported by the user: its code may run in later runs

    return Imported(name, kind, written, f"imported {source} as {name!r} ({kind}, front-end "
                                         f"{parse_frontend(meta.get('frontend')).describe()}) -> {written}")


def _check_onnx_self_contained(name: str, source: Path, meta: dict) -> None:
    """Refuse an ONNX model that keeps tensors in external data files: only the .onnx file is copied into the
    zoo, so it must load on its own (it is tried from an empty folder)."""

    with tempfile.TemporaryDirectory(prefix="codecbench-onnx-") as alone:
        copy = Path(alone) / source.name
        shutil.copyfile(source, copy)
        try:
            kinds.load_onnx(name, copy, meta)
        except ModelError:
            raise UsageError(f"{source}: the ONNX model keeps its weights in external data files beside it, which "
                             "import-model does not copy; save it as one file (onnx.save_model(model, path, "
                             "save_as_external_data=False)) and import that") from None


def checkpoint_folder(source: str) -> tuple[Path, str]:
    """The local folder of a ``hf:``/``clap:`` source and its revision: a folder as given, or a hub id's snapshot
    from the Hugging Face cache (downloaded there first where the machine has the network)."""
    ref = source.split(":", 1)[1]
    folder = Path(ref).expanduser()
    if folder.is_dir():
        return folder, "local folder"
    if folder.exists() or ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise UsageError(f"{source}: {ref} is no checkpoint folder (and not a hub id of the form owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelError("Hugging Face models need PyTorch and transformers: pip install 'codecbench[hf]'") from None
    try:
        snapshot = Path(snapshot_download(ref))
    except Exception as exc:
        raise ModelError(f"{source}: cannot fetch {ref} from the Hugging Face hub or its cache ({type(exc).__name__}); "
                         f"on a machine with the network: hf download {ref} --local-dir DIR, then import-model "
                         "hf:DIR") from None
    return snapshot, f"{ref}@{snapshot.name}"


def _import_checkpoint(zoo: Zoo, source: str, *, name: str, kind: str, meta: dict, class_names, label_map, prompts,
                       trust_code: bool, overwrite: bool) -> Imported:
    """Import a Hugging Face checkpoint: checked (code, labels, label map), loaded and run once, then copied."""

    folder, revision = checkpoint_folder(source)
    described = huggingface.describe(name, kind, folder, trust_code=trust_code, class_names=class_names,
                                     label_map=label_map, prompts=prompts)
    meta = {**meta, **described, "checkpoint": revision, "source_sha256": huggingface.folder_sha256(folder)}
    meta.pop("class_map", None)  # the label map is the hf kind's own (summed many-to-one), not a rename
    model = huggingface.load(name, folder, meta)
    kinds.validate(model)  # before anything is written
    meta["params"] = model.meta["params"]
    written = zoo.save_checkpoint(name, meta, folder, overwrite=overwrite)
    if meta["trust_remote_code"]:
        trust.remember(zoo.entry(name).metadata)  # imported by the user with --trust-code: its code may run later
    return Imported(name, kind, written, f"imported {source} as {name!r} ({kind}, {meta['architecture']}, "
                                         f"{meta['params']:,} parameters, waveform at {meta['sample_rate']} Hz, "
                                         f"{len(meta['class_names'])} classes) -> {written}")
