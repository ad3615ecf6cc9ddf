"""The ``codecbench`` command: a thin layer of argument parsing over the library.

Settings shared with the pytest plugin come from :mod:`codecbench.spec` (one table of options,
validated once into a :class:`~codecbench.spec.RunSpec`); Keras is imported only by the
commands that need a model.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .cache import NAMESPACES
from .errors import CodecbenchError, UsageError
from .schedule import FINETUNE_DEFAULTS, TrainConfig
from .spec import OPTIONS, RunSpec


def _common(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add options of the run specification; their values are validated by :meth:`RunSpec.build`."""
    for name in names:
        option = OPTIONS[name]
        flags = [option.flag] + (["-j"] if name == "jobs" else [])
        parser.add_argument(*flags, dest=name, default=None, help=option.help, **option.argparse_extra)


def _spec(args) -> RunSpec:
    flags = {"run_id": "--run"} if args.command == "report" else None
    return RunSpec.build({name: getattr(args, name, None) for name in OPTIONS}, flags=flags)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("conditions", help="print the condition matrix and what is available here")
    _common(p, "matrix")

    p = sub.add_parser("encode", help="fill the cache with coded audio (and features) for a dataset split")
    _common(p, "cache_dir", "matrix", "dataset", "split", "jobs", "backend", "scheduler")
    p.add_argument("--allow-partial", action="store_true", help="use the clips present if some are missing")
    p.add_argument("--condition", "--conditions", dest="condition",
                   help="comma-separated conditions (default: every condition of the matrix)")
    p.add_argument("--features", action="store_true", help="also extract and cache the log-mel features")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    _plan_options(p, "run even if the plan says the cache would outgrow the free disk")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("cache", help="inspect, garbage-collect or clear the cache")
    p.add_argument("action", choices=["info", "gc", "clear"])
    p.add_argument("--namespace", choices=NAMESPACES, help="only this part of the cache (info, clear)")
    p.add_argument("--older-than", type=_positive_float, default=None, metavar="DAYS",
                   help="gc: also remove entries not read for this many days")
    _common(p, "cache_dir")

    p = sub.add_parser("segments", help="print a model's segments with their parameter counts")
    p.add_argument("model_name", metavar="model", help="a model name in the zoo, or a .keras/.hdf5 file")
    _common(p, "model_dir")
    p.add_argument("--trust-code", action="store_true", default=None,
                   help="allow executable code: Lambda layers in the file, a Python entry point")

    p = sub.add_parser("import-model", help="put a model (.keras, legacy .hdf5, .onnx, or a Python factory) into the "
                                            "model directory")
    p.add_argument("path", help="a .keras/.hdf5/.h5 or .onnx file, or a Python entry point package.module:factory")
    p.add_argument("--name", required=True)
    _common(p, "model_dir")
    p.add_argument("--kind", choices=["keras", "onnx", "python"], help="default: from the file suffix or the ':'")
    p.add_argument("--frontend", help="hu2020 (default for Keras), waveform:RATE, or logmel:key=value,... "
                                      "(sample_rate, n_fft, hop_length, n_mels, fmin, fmax, log_offset, normalise, "
                                      "deltas)")
    p.add_argument("--classes", help="the model's class names in output order: comma-separated, or a file with "
                                     "one per line")
    p.add_argument("--class-map", help="TOML or JSON file mapping the model's class names to the dataset's")
    p.add_argument("--outputs", choices=["probabilities", "logits"], help="what the model returns (ONNX, Python)")
    p.add_argument("--kwargs", help="Python: JSON object of keyword arguments for the factory")
    p.add_argument("--trust-code", action="store_true", default=None,
                   help="allow executable code: Lambda layers in the file, a Python entry point")
    p.add_argument("--force", action="store_true", help="replace a model of that name")

    p = sub.add_parser("train", help="train the FCNN from scratch (base training)")
    _common(p, "cache_dir", "dataset", "jobs", "backend", "scheduler", "model_dir", "precision", "devices")
    p.add_argument("--name", default="base")
    p.add_argument("--preset", default="small", choices=["small", "paper"])
    p.add_argument("--conditions", dest="condition", default="wav",
                   help="training conditions (coded ones: the paper's retraining)")
    p.add_argument("--resume", action="store_true", help="continue from the last epoch's checkpoint")
    _plan_options(p, "replace a model of that name; run even if the cache would outgrow the free disk")
    _train_options(p, TrainConfig())

    p = sub.add_parser("finetune", help="fine-tune a zoo model on original + coded audio (Experiments A and B)")
    _common(p, "cache_dir", "dataset", "matrix", "jobs", "backend", "scheduler", "model_dir", "precision", "devices")
    p.add_argument("--from", dest="parent", default="base", help="parent model name (default: base)")
    _plan_options(p, "replace existing models of the same names; run even if the cache would outgrow the free disk")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="Experiment A: every parameter")
    mode.add_argument("--segment", help="Experiment B: segment(s) to fine-tune alone, e.g. 7 or 1-10")
    p.add_argument("--save-epochs", help="with --full: epochs to save, e.g. 1,10,20,40 (default: the last)")
    _train_options(p, TrainConfig(**FINETUNE_DEFAULTS), segment_lr=True)

    p = sub.add_parser("postfilter", help="train a post-filter that enhances coded features for an unchanged "
                                          "classifier (saved as <parent>+postfilter)")
    p.add_argument("action", choices=["train"])
    _common(p, "cache_dir", "dataset", "matrix", "jobs", "backend", "scheduler", "model_dir")
    p.add_argument("--from", dest="parent", default="base", help="the classifier to put it in front of (default: base)")
    p.add_argument("--name", default=None, help="zoo name (default: <parent>+postfilter)")
    p.add_argument("--epochs", type=_positive_int, default=5)
    p.add_argument("--filters", type=_positive_int, default=32, help="channels of its hidden convolutions")
    p.add_argument("--layers", type=_positive_int, default=4, help="convolutions (the last one is the correction)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument("--crop", type=_non_negative_int, default=64, help="random crop in frames (0: off)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--force", action="store_true", help="replace a model of that name")

    p = sub.add_parser("zoo", help="list the model zoo, build what is missing, or compare it with another")
    p.add_argument("action", choices=["list", "build", "compare"])
    p.add_argument("--other", help="with compare: the other model directory (e.g. a rebuild)")
    p.add_argument("--preset", default="demo", choices=["demo", "paper"],
                   help="zoo build preset: demo (synthetic, small FCNN) or paper")
    _common(p, "model_dir", "cache_dir", "dataset", "matrix", "jobs", "backend", "scheduler", "precision", "devices")
    p.add_argument("--dry-run", action="store_true", help="build: print the plan (pairs, bytes, free disk, hours) "
                                                          "and stop; a TAU folder without its audio is planned too")
    p.add_argument("--force", action="store_true", help="build: run even if the cache would outgrow the free disk")

    p = sub.add_parser("report", help="render the paper's tables and Figure 2 from a results folder")
    _common(p, "results", "baseline", "baseline_max_changed", "alpha")
    p.add_argument("--out", default=None, help="output folder (default: the results folder)")
    p.add_argument("--format", default="md,csv,png,svg", help="comma-separated: md, csv, png, svg")
    p.add_argument("--models", dest="model", default=None,
                   help="comma-separated model names (default: all in the results)")
    p.add_argument("--run", dest="run_id", default=None,
                   help="render exactly this run (default: the latest result of every model and condition)")

    p = sub.add_parser("history", help="check the results history, or rebuild it from the run folders")
    p.add_argument("action", choices=["check", "rebuild"])
    _common(p, "results")

    p = sub.add_parser("compare", help="compare two runs clip by clip: accuracies, identical predictions, McNemar p")
    p.add_argument("reference", help="results.json (or results folder) of the reference run")
    p.add_argument("candidate", help="results.json (or results folder) of the run to compare")
    p.add_argument("--match-by", choices=["key", "name"], default="key",
                   help="pair clips by their path relative to the dataset root (default), or by file name (for "
                        "runs recorded before clips were keyed by path)")

    p = sub.add_parser("thresholds", help="write a thresholds TOML from a results run (accuracy - margin)")
    _common(p, "results")
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--out", default=None, help="file to write (default: print)")

    p = sub.add_parser("bench", help="performance figures of this machine")
    p.add_argument("what", choices=["codecs", "model", "finetune", "scale", "pipeline", "prefix", "precision"],
                   help="which figures (see the README, 'Other commands')")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--clips", type=_positive_int, default=24, help="clips for the fill benchmark (codecs)")
    return parser


def _plan_options(parser: argparse.ArgumentParser, force_help: str) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (pairs cached/missing, bytes, free disk, time on this machine) and stop")
    parser.add_argument("--force", action="store_true", help=force_help)


def _number(kind: type, minimum: float, strict: bool, what: str):
    """An argparse type: ``kind`` (int or float) above ``minimum`` (``strict``) or at least it."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return convert


_positive_int = _number(int, 0, True, "a positive whole number")
_non_negative_int = _number(int, 0, False, "a whole number >= 0")
_positive_float = _number(float, 0.0, True, "a positive number")
_non_negative_float = _number(float, 0.0, False, "a number >= 0")


def _train_options(parser: argparse.ArgumentParser, defaults: TrainConfig, segment_lr: bool = False) -> None:
    from .schedule import SEGMENT_LEARNING_RATES

    group = parser.add_argument_group("training schedule")
    group.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    group.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    group.add_argument("--lr", type=_positive_float, default=None if segment_lr else defaults.learning_rate,
                       help="initial learning rate" + (
                           f" (default: {defaults.learning_rate} for --full; for --segment by segment kind: "
                           + ", ".join(f"{k} {v}" for k, v in SEGMENT_LEARNING_RATES.items()) + ")"
                           if segment_lr else ""))
    group.add_argument("--first-restart", type=_positive_float, default=defaults.first_restart_epochs,
                       help="epochs until the first warm restart")
    group.add_argument("--period-mult", type=_positive_float, default=defaults.period_multiplier)
    group.add_argument("--rate-mult", type=_positive_float, default=defaults.rate_multiplier)
    group.add_argument("--mixup", type=_non_negative_float, default=defaults.mixup_alpha, help="mixup alpha (0: off)")
    group.add_argument("--crop", type=_non_negative_int, default=defaults.crop_frames,
                       help="random crop in frames (0: off)")
    group.add_argument("--time-mask", type=_non_negative_int, default=defaults.time_mask_frames)
    group.add_argument("--freq-mask", type=_non_negative_int, default=defaults.freq_mask_bins)
    group.add_argument("--seed", type=_non_negative_int, default=defaults.seed)


def _train_config(args, spec: RunSpec) -> TrainConfig:
    return TrainConfig(precision=spec.precision, devices=spec.devices, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.lr if args.lr is not None else FINETUNE_DEFAULTS["learning_rate"],
                       first_restart_epochs=args.first_restart, period_multiplier=args.period_mult,
                       rate_multiplier=args.rate_mult, mixup_alpha=args.mixup, crop_frames=args.crop or None,
                       time_mask_frames=args.time_mask, freq_mask_bins=args.freq_mask, seed=args.seed)


def cmd_conditions(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    from . import codecs

    matrix = spec.matrix_obj
    roles: dict = {}
    for cat, conds in matrix.categories.items():
        for c in conds:
            roles.setdefault(c, []).append(f"{cat} ({matrix.descriptions[cat]})" if matrix.descriptions[cat] else cat)
    for c in matrix.finetune:
        roles.setdefault(c, []).append("fine-tuning")
    hints: dict[str, None] = {}
    rows = []
    for cond in matrix.all_conditions():
        ok, why = codecs.availability(cond)
        reason, _, hint = why.partition(". ")
        if not ok and hint:
            hints.setdefault(hint)
        family = "-" if cond.is_original else cond.spec.family
        rows.append([cond.name, family, codecs.codec_library(cond), "; ".join(roles[cond]),
                     "yes" if ok else f"no: {reason}"])
    print(f"matrix: {matrix.name} ({matrix.source})")
    print(tabulate(rows, headers=["condition", "family", "codec library", "role", "available here"],
                   tablefmt="github"))
    coded = {c.codec for c in matrix.all_conditions() if not c.is_original}
    available = {c.codec for c in matrix.all_conditions() if not c.is_original and codecs.availability(c)[0]}
    print(f"\n{len(available)} of {len(coded)} codec families available here")
    for hint in hints:
        print(f"\nhint: {hint}")
    return 0


def cmd_encode(args, spec: RunSpec) -> int:
    from . import codecs
    from .encode import fill

    # the fine-tuning conditions are coded for the training split only; an evaluation scores the validation ones
    matrix = spec.matrix_obj
    conds = list(spec.condition) if spec.condition else (
        matrix.all_conditions() if spec.split == "train" else matrix.validation)
    usable = []
    for cond in conds:
        ok, why = codecs.availability(cond)
        if ok:
            usable.append(cond)
        else:
            print(f"warning: skipping {cond.name}: {why}", file=sys.stderr)
    if not usable:
        raise UsageError("no condition to code: every selected condition is unavailable here (see above)")
    from .plan import fill_stage, new_plan, plan_fill

    dataset = spec.load_dataset(allow_partial=args.allow_partial, listing_only=args.dry_run)
    clips = dataset.clips(spec.split)
    plan = plan_fill(new_plan(f"encode {dataset.name} {spec.split}", clips, usable, spec.cache), clips, usable,
                     spec.cache, with_features=args.features)
    if args.dry_run:
        from .plan import clip_seconds
        plan.stages += fill_stage(plan, clip_seconds(clips), spec.jobs, spec.scheduler)
        print(plan.report())
        return 0
    plan.check_disk(args.force)
    print(f"{dataset.name}: {len(clips)} clips of split {spec.split!r}, {len(usable)} conditions -> "
          f"{spec.cache.root}", file=sys.stderr)
    summary = fill(clips, usable, spec.cache, with_features=args.features, jobs=spec.jobs, backend=spec.backend,
                   scheduler=spec.scheduler, on_error=args.on_error, progress=False if args.quiet else None)
    print(summary.report())
    return 1 if summary.failures and args.on_error == "raise" else 0


def cmd_cache(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    cache = spec.cache
    if args.action == "gc":
        counts = cache.gc(args.older_than)
        line = f"removed {counts['old_format']} entries of older formats"
        if args.older_than is not None:
            line += f" and {counts['unused']} entries not read for {args.older_than:g} days"
        print(f"{line} ({counts['bytes'] / 2**20:.1f} MiB) from {cache.root}")
        return 0
    if args.action == "clear":
        print(f"removed {cache.clear(args.namespace)} entries from {cache.root}")
        return 0
    info = cache.info()
    rows = [[ns, v["entries"], f"{v['bytes'] / 2**20:.1f}", f"{v['bytes_per_entry'] / 2**10:.1f}"]
            for ns, v in info.items() if not args.namespace or ns == args.namespace]
    print(f"cache: {cache.root}")
    print(tabulate(rows, headers=["namespace", "entries", "MiB", "KiB per entry"], tablefmt="github")
          if rows else "(empty)")
    return 0


def cmd_bench(args, spec: RunSpec) -> int:
    from . import bench

    run, show = bench.BENCHMARKS[args.what]
    result = run(clips=args.clips) if args.what == "codecs" else run()
    print(json.dumps(result, indent=2, default=str) if args.json else show(result))
    return 0


def _write_zoo(spec: RunSpec):
    """Where new models go: --model-dir, else the user model folder (never the packaged zoo)."""
    from .zoo import Zoo, user_model_dir

    return Zoo(spec.model_dir or user_model_dir(), trust_code=spec.trust_code)


def _source_zoo(spec: RunSpec, name: str):
    """Where a parent model is read: --model-dir, else the user model folder if it has it, else the packaged zoo."""
    from .zoo import ALIASES, Zoo

    if spec.model_dir:
        return Zoo(spec.model_dir, trust_code=spec.trust_code)
    user = _write_zoo(spec)
    return user if (name in user.names() or ALIASES.get(name) in user.names()) else Zoo(trust_code=spec.trust_code)


def _saved(names: list[str], zoo) -> None:
    from .zoo import user_model_dir

    print(f"saved {', '.join(names) if names else 'nothing (complete)'} in {zoo.root}")
    if names and zoo.root == user_model_dir():
        print(f"(no --model-dir was given, so they went to the user model folder; use them with "
              f"--model-dir {zoo.root})")


def _finetune_conditions(matrix) -> list[str]:
    from . import codecs

    wanted = (["wav"] if matrix.include_original else []) + [c.name for c in matrix.finetune]
    return [c for c in wanted if codecs.availability(c)[0]]


def _check_disk(dataset, conditions, spec: RunSpec, force: bool, split: str = "train") -> None:
    """Stop before a run whose cache growth would not fit the free disk (unless ``force``)."""
    from .plan import new_plan, plan_fill

    clips = dataset.clips(split)
    plan_fill(new_plan(f"{dataset.name} {split}", clips, conditions, spec.cache), clips, conditions, spec.cache,
              with_features=True).check_disk(force)


def cmd_segments(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    from .models import derive_segments, load_model

    if Path(args.model_name).suffix in (".keras", ".hdf5", ".h5"):
        model, _ = load_model(args.model_name, trust=bool(args.trust_code))
    else:
        model, _ = _source_zoo(spec, args.model_name).load(args.model_name)
    rows = [[s.index, s.kind, f"{s.params:,}", ", ".join(s.layers)] for s in derive_segments(model)]
    print(tabulate(rows, headers=["segment", "kind", "params", "layers"], tablefmt="github"))
    print(f"total parameters: {model.count_params():,}")
    return 0


def _classes(text: str | None) -> list[str] | None:
    if not text:
        return None
    path = Path(text)
    items = path.read_text().splitlines() if path.is_file() else text.split(",")
    names = [c.strip() for c in items if c.strip()]
    if len(set(names)) != len(names) or not names:
        raise UsageError(f"--classes {text!r}: expected distinct class names")
    return names


def _class_map(text: str | None) -> dict:
    if not text:
        return {}
    from .config import read_toml

    path = Path(text)
    if not path.is_file():
        raise UsageError(f"--class-map {text}: file not found")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"--class-map {text}: not a readable JSON object ({exc})") from None
    else:
        data = read_toml(path, UsageError, "class map")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(f"--class-map {text}: expected a table of model class = dataset class")
    return data


def _check_onnx_self_contained(name: str, source: Path, meta: dict) -> None:
    """Refuse an ONNX model that keeps tensors in external data files: only the .onnx file is copied into the
    zoo, so it must load on its own (it is tried from an empty folder)."""
    import shutil
    import tempfile

    from .models import kinds

    with tempfile.TemporaryDirectory(prefix="codecbench-onnx-") as alone:
        copy = Path(alone) / source.name
        shutil.copyfile(source, copy)
        try:
            kinds.load_onnx(name, copy, meta)
        except kinds.ModelError:
            raise UsageError(f"{source}: the ONNX model keeps its weights in external data files beside it, which "
                             "import-model does not copy; save it as one file (onnx.save_model(model, path, "
                             "save_as_external_data=False)) and import that") from None


def cmd_import_model(args, spec: RunSpec) -> int:
    from .frontends import parse_frontend
    from .models import file_sha256, kinds, load_model
    from .provenance import now
    from .zoo import check_name

    zoo = _write_zoo(spec)
    zoo.check_writable([check_name(args.name)], args.force)
    source = Path(args.path)
    kind = args.kind or {".keras": "keras", ".hdf5": "keras", ".h5": "keras", ".onnx": "onnx"}.get(
        source.suffix, "python" if ":" in args.path and not source.exists() else None)
    if kind is None:
        raise UsageError(f"{args.path}: cannot tell the model kind; pass --kind keras|onnx|python")
    meta = {"kind": kind, "strategy": "imported", "imported_from": str(args.path), "created": now()}
    if args.frontend:
        meta["frontend"] = parse_frontend(args.frontend).to_dict()
    if args.classes:
        meta["class_names"] = _classes(args.classes)
    if args.class_map:
        meta["class_map"] = _class_map(args.class_map)
    if args.outputs:
        meta["outputs"] = args.outputs
    if kind == "keras":
        model, loaded = load_model(source, trust=bool(args.trust_code))
        meta = {**loaded, **meta, "source_sha256": file_sha256(source)}
        kinds.validate(kinds.from_keras(args.name, model, meta))
        path = zoo.save(args.name, model, meta, overwrite=args.force)
        print(f"imported {args.path} as {args.name!r} -> {path} ({model.count_params():,} parameters)")
        return 0
    if kind == "onnx":
        if not source.is_file():
            raise UsageError(f"{source}: ONNX file not found")
        meta["source_sha256"] = file_sha256(source)
        kinds.validate(kinds.load_onnx(args.name, source, meta))  # before anything is written
        _check_onnx_self_contained(args.name, source, meta)
        path = zoo.save_external(args.name, meta, source=source, overwrite=args.force)
    else:
        meta["entry_point"] = args.path
        if args.kwargs:
            try:
                meta["kwargs"] = json.loads(args.kwargs)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--kwargs: not a JSON object ({exc})") from None
        model = kinds.load_python(args.name, meta)
        meta.setdefault("class_names", model.class_names)
        meta.setdefault("frontend", model.frontend.to_dict())
        kinds.validate(model)
        path = zoo.save_external(args.name, meta, overwrite=args.force)
        from . import trust
        trust.remember(meta)  # imported by the user on the command line: its code may run in later runs
    print(f"imported {args.path} as {args.name!r} ({kind}, front-end {parse_frontend(meta.get('frontend')).describe()})"
          f" -> {path}")
    return 0


def cmd_train(args, spec: RunSpec) -> int:
    from .finetune import train_base
    from .models import preset_config
    from .plan import training_plan

    zoo = _write_zoo(spec)
    dataset = spec.load_dataset(listing_only=args.dry_run)
    config = _train_config(args, spec)
    conditions = [c.name for c in spec.condition]
    if args.dry_run:
        model = preset_config(args.preset, (128, 423, 3), len(dataset.class_names))
        print(training_plan(f"train {args.name} ({args.preset}) on {dataset.name}", dataset, conditions, spec.cache,
                            config=model, train_config=config, runs=[("training", config.epochs)], jobs=spec.jobs,
                            scheduler=spec.scheduler).report())
        return 0
    _check_disk(dataset, conditions, spec, args.force)
    name = train_base(zoo, dataset, spec.cache, name=args.name, preset=args.preset,
                      config=_train_config(args, spec), conditions=[c.name for c in spec.condition], jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler, resume=args.resume, overwrite=args.force)
    _saved([name], zoo)
    return 0


def cmd_finetune(args, spec: RunSpec) -> int:
    from .finetune import finetune
    from .models import derive_segments, parse_segments

    source, zoo = _source_zoo(spec, args.parent), _write_zoo(spec)
    segments = None
    if args.segment:
        model, _ = source.load(args.parent)
        try:
            segments = parse_segments(args.segment, len(derive_segments(model)))
        except ValueError as exc:
            raise UsageError(f"--segment: {exc}") from None
    save_epochs = None
    if args.save_epochs:
        try:
            save_epochs = [int(e) for e in args.save_epochs.split(",") if e.strip()]
        except ValueError:
            raise UsageError(f"--save-epochs: expected comma-separated epochs such as 1,10,20,40, got "
                             f"{args.save_epochs!r}") from None
    dataset = spec.load_dataset(listing_only=args.dry_run)
    conditions = _finetune_conditions(spec.matrix_obj)
    if args.dry_run:
        from .models import FCNNConfig
        from .plan import training_plan

        config = _train_config(args, spec)
        model = FCNNConfig.from_dict(source.metadata(args.parent)["config"])
        runs = [("full fine-tuning", args.epochs)] if segments is None else \
            [(f"segment {k} fine-tuning", args.epochs) for k in segments]
        print(training_plan(f"finetune {args.parent} on {dataset.name}", dataset, conditions, spec.cache,
                            config=model, train_config=config, runs=runs, jobs=spec.jobs,
                            scheduler=spec.scheduler).report())
        return 0
    _check_disk(dataset, conditions, spec, args.force)
    saved = finetune(zoo, args.parent, dataset, spec.matrix_obj, spec.cache, segments=segments,
                     epochs=args.epochs, save_epochs=save_epochs, config=_train_config(args, spec), jobs=spec.jobs,
                     backend=spec.backend, scheduler=spec.scheduler, source=source, overwrite=args.force,
                     learning_rate=args.lr)
    _saved(saved, zoo)
    return 0


def cmd_postfilter(args, spec: RunSpec) -> int:
    from .postfilter import PostFilterConfig, train_postfilter

    if args.layers < 2:
        raise UsageError("--layers: at least 2 (hidden convolutions, then the correction)")
    source, zoo = _source_zoo(spec, args.parent), _write_zoo(spec)
    config = PostFilterConfig(filters=args.filters, layers=args.layers, epochs=args.epochs, learning_rate=args.lr,
                              crop_frames=args.crop or None, seed=args.seed)
    dataset = spec.load_dataset()
    conditions = _finetune_conditions(spec.matrix_obj)
    _check_disk(dataset, conditions, spec, args.force)
    saved = train_postfilter(zoo, args.parent, dataset, spec.matrix_obj, spec.cache, config=config, name=args.name,
                             source=source, jobs=spec.jobs, backend=spec.backend, scheduler=spec.scheduler,
                             overwrite=args.force)
    meta = zoo.metadata(saved)["postfilter"]
    print(f"post-filter: {meta['params']:,} parameters in front of {meta['classifier_params']:,}; adds "
          f"{meta['added_ms_per_clip']:.2f} ms per clip here")
    _saved([saved], zoo)
    return 0


def cmd_zoo(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    from .zoo import Zoo, compare

    if args.action == "compare":
        if not args.other:
            raise UsageError("zoo compare needs --other DIR")
        rows = compare(spec.zoo, Zoo(args.other))
        print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3g"))
        same = sum(r["max_abs_diff"] == 0 for r in rows)
        print(f"{same} of {len(rows)} models have bit-identical weights")
        return 0
    if args.action == "list":
        rows = spec.zoo.rows()
        print(f"model dir: {spec.zoo.root}")
        print(tabulate(rows, headers="keys", tablefmt="github") if rows else "(no models)")
        return 0
    from .finetune import PRESETS, build_zoo

    if spec.sources.get("dataset") == "default" and not PRESETS[args.preset]["dataset"]:
        raise UsageError(f"zoo preset {args.preset!r} needs --dataset (the TAU 2020 Mobile root)")
    zoo = _write_zoo(spec)
    preset = PRESETS[args.preset]
    dataset = spec.load_dataset(listing_only=args.dry_run)
    conditions = _finetune_conditions(spec.matrix_obj)
    if args.dry_run:
        from .models import preset_config
        from .plan import training_plan
        from .zoo import full_name, segment_name

        names = zoo.names()
        runs = [] if "base" in names else [("base training (original audio)", preset["base"].epochs, 1)]
        if any(full_name(e) not in names for e in preset["save_epochs"]):
            runs.append(("full fine-tuning", preset["full_epochs"]))
        segments = [k for k in preset["segments"] if segment_name(k) not in names]
        if segments:
            runs.append((f"{len(segments)} segment fine-tunings", len(segments) * preset["segment_epochs"]))
        model = preset_config(preset["model_preset"], (128, 423, 3), len(dataset.class_names))
        plan = training_plan(f"zoo build --preset {args.preset} on {dataset.name} into {zoo.root}", dataset,
                             conditions, spec.cache, config=model, train_config=preset["finetune"], runs=runs,
                             jobs=spec.jobs, scheduler=spec.scheduler)
        plan.notes.append("segment fine-tuning is timed as full fine-tuning (an upper bound: frozen segments need "
                          "no weight gradients)")
        print(plan.report())
        return 0
    _check_disk(dataset, conditions, spec, args.force)
    built = build_zoo(zoo, dataset, spec.matrix_obj, spec.cache, args.preset, jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler, precision=spec.precision, devices=spec.devices)
    _saved(built, zoo)
    return 0


def cmd_report(args, spec: RunSpec) -> int:
    from .report import FORMATS, render

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise UsageError(f"--format: unknown {', '.join(unknown) or 'empty'}; expected some of {', '.join(FORMATS)}")
    results = spec.results
    out = Path(args.out) if args.out else (results if results.suffix != ".json" else results.parent)
    markdown, written = render(results, out, formats, list(spec.model) if spec.model else None, spec.baseline,
                               spec.alpha, run_id=args.run_id, baseline_max_changed=spec.baseline_max_changed)
    print(markdown)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def cmd_compare(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    from .results import load_results
    from .stats import paired_comparison
    from .zoo import sort_key

    def cells(path):
        out = {}
        for r in load_results(path)["results"]:
            if args.match_by == "name":
                r = {**r, "clips": [Path(c).name for c in r["clips"]]}
            out[(r["model"], r["condition"])] = r
        return out

    ref, cand = cells(args.reference), cells(args.candidate)
    shared = sorted(set(ref) & set(cand), key=lambda k: (sort_key(k[0]), k[1]))
    if not shared:
        raise UsageError(f"{args.reference} and {args.candidate} share no (model, condition)")
    rows, same_cells, same_clips, total = [], 0, 0, 0
    for key in shared:
        a, b = ref[key], cand[key]
        pred_a = dict(zip(a["clips"], a["predictions"]))
        common = [c for c in b["clips"] if c in pred_a]
        identical = sum(pred_a[c] == p for c, p in zip(b["clips"], b["predictions"]) if c in pred_a)
        paired = paired_comparison(a, b)
        rows.append([*key, f"{a['accuracy']:.3f}", f"{b['accuracy']:.3f}", f"{identical}/{len(common)}",
                     f"{paired['p_value']:.3g}"])
        same_cells += a["accuracy"] == b["accuracy"]
        same_clips += identical
        total += len(common)
    print(tabulate(rows, headers=["model", "condition", "reference", "candidate", "identical predictions",
                                  "McNemar p"], tablefmt="github", disable_numparse=True))
    print(f"{len(shared)} (model, condition) cells: {same_cells} with identical accuracy; {same_clips} of {total} "
          "paired clips with identical predictions")
    return 0


def cmd_thresholds(args, spec: RunSpec) -> int:
    from .fsutil import atomic_write
    from .results import load_results
    from .thresholds import thresholds_from_results

    if not 0 <= args.margin < 1:
        raise UsageError(f"--margin: expected a number in [0, 1), got {args.margin}")
    text = thresholds_from_results(load_results(spec.results), args.margin)
    if args.out:
        try:
            atomic_write(args.out, text, fsync=False)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror or exc})") from None
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_history(args, spec: RunSpec) -> int:
    from .results import check_history, rebuild_history

    results = spec.results if spec.results.suffix != ".json" else spec.results.parent
    path = results / "history.sqlite"
    if args.action == "check":
        problems = check_history(path)
        print(f"{path}: " + ("ok" if not problems else "damaged:\n  " + "\n  ".join(problems)))
        return 0 if not problems else 1
    aside, runs, count = rebuild_history(results)
    print(f"{path}: rebuilt from {runs} run folders ({count} results)"
          + (f"; the old file is {aside}" if aside else ""))
    return 0


COMMANDS = {"report": cmd_report, "history": cmd_history, "compare": cmd_compare, "thresholds": cmd_thresholds,
            "conditions": cmd_conditions, "encode": cmd_encode,
            "cache": cmd_cache, "bench": cmd_bench, "segments": cmd_segments, "import-model": cmd_import_model,
            "train": cmd_train, "finetune": cmd_finetune, "zoo": cmd_zoo, "postfilter": cmd_postfilter}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return COMMANDS[args.command](args, _spec(args))
    except CodecbenchError as exc:
        if args.verbose:
            raise
        print(f"codecbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything finished so far is kept in the cache", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
