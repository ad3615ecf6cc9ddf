"""Commands over models: ``segments``, ``import-model``, ``train``, ``finetune``, ``postfilter``, ``zoo``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tabulate import tabulate

from codecbench import codecs
from codecbench.cli.data_commands import _check_disk, _finetune_conditions, load_data
from codecbench.cli.parser import _train_config, validation_conditions
from codecbench.core.config import read_toml
from codecbench.errors import UsageError
from codecbench.run.resolve import Workspace
from codecbench.run.spec import RunSpec
from codecbench.zoo import ALIASES, Zoo, compare, user_model_dir
from codecbench.zoo.importing import import_model


def _write_zoo(spec: RunSpec):
    """Where new models go: --model-dir, else the user model folder (never the packaged zoo)."""

    return Zoo(spec.model_dir or user_model_dir(), trust_code=spec.trust_code)


def _source_zoo(spec: RunSpec, name: str):
    """Where a parent model is read: --model-dir, else the user model folder if it has it, else the packaged zoo."""

    if spec.model_dir:
        zoo = Zoo(spec.model_dir, trust_code=spec.trust_code)
    else:
        user = _write_zoo(spec)
        zoo = user if (name in user.names() or ALIASES.get(name) in user.names()) else Zoo(trust_code=spec.trust_code)
    zoo.resolve(name)  # an unknown parent is named before any data is loaded or generated
    return zoo


def _saved(names: list[str], zoo) -> None:

    print(f"saved {', '.join(names) if names else 'nothing (complete)'} in {zoo.root}")
    if names and zoo.root == user_model_dir():
        print(f"(no --model-dir was given, so they went to the user model folder; use them with "
              f"--model-dir {zoo.root})")


def cmd_segments(args, spec: RunSpec) -> int:

    from codecbench.models import derive_segments, load_model

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


def _class_map(text: str | None, *, option: str = "--class-map", what: str = "model class = dataset class") -> dict:
    if not text:
        return {}

    path = Path(text)
    if not path.is_file():
        raise UsageError(f"{option} {text}: file not found")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{option} {text}: not a readable JSON object ({exc})") from None
    else:
        data = read_toml(path, UsageError, option[2:].replace("-", " "))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(f"{option} {text}: expected a table of {what}")
    return data


def cmd_import_model(args, spec: RunSpec) -> int:
    from codecbench.signal.frontends import parse_frontend

    kwargs = None
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--kwargs: not a JSON object ({exc})") from None
    if getattr(args, "prompts", None):
        kwargs = _class_map(args.prompts, option="--prompts", what="class = prompt")
    imported = import_model(_write_zoo(spec), args.path, name=args.name, kind=args.kind,
                            frontend=parse_frontend(args.frontend) if args.frontend else None,
                            class_names=_classes(args.classes), class_map=_class_map(args.class_map),
                            outputs=args.outputs, kwargs=kwargs, trust_code=bool(args.trust_code),
                            overwrite=args.force)
    print(imported.summary)
    return 0


def _epoch_validator(args, dataset, spec: RunSpec):
    """The per-epoch validation of ``--validate`` on the dataset's evaluation split, or None (said why)."""
    where = Workspace(spec)
    conds = validation_conditions(args.validate)
    if conds and "evaluate" in dataset.splits and dataset.splits["evaluate"]:
        from codecbench.remedies.finetune import epoch_validation
        return epoch_validation(dataset, [c for c in conds if codecs.availability(c)[0]], where.cache,
                                jobs=spec.jobs)
    if conds:
        print(f"note: {dataset.name} has no evaluation split here: no validation per epoch", file=sys.stderr)
    return None


def cmd_train(args, spec: RunSpec) -> int:
    from codecbench.models import preset_config
    from codecbench.remedies.finetune import train_base
    from codecbench.run.plan import training_plan

    where = Workspace(spec)
    zoo = _write_zoo(spec)
    dataset = load_data(spec, listing_only=args.dry_run)
    config = _train_config(args, spec)
    from codecbench.codecs import ORIGINAL

    conditions = list(spec.condition or (ORIGINAL,))
    note = config.cycle_note()
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        model = preset_config(args.preset, (128, 423, 3), len(dataset.class_names))
        validating = [c for c in validation_conditions(args.validate) if codecs.availability(c)[0]]
        evaluate = len(dataset.splits.get("evaluate") or ())
        print(training_plan(f"train {args.name} ({args.preset}) on {dataset.name}", dataset, conditions, where.cache,
                            config=model, train_config=config, runs=[("training", config.epochs)], jobs=spec.jobs,
                            scheduler=spec.scheduler, validations_per_epoch=evaluate * len(validating)).report())
        return 0
    _check_disk(dataset, conditions, spec, args.force)
    name = train_base(zoo, dataset, where.cache, name=args.name, preset=args.preset,
                      config=config, conditions=conditions, jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler, resume=args.resume, overwrite=args.force,
                      validate=_epoch_validator(args, dataset, spec), schedule_change=args.allow_schedule_change,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    _saved([name], zoo)
    return 0


def cmd_finetune(args, spec: RunSpec) -> int:
    from codecbench.models import derive_segments, parse_segments
    from codecbench.remedies.finetune import finetune

    where = Workspace(spec)
    source, zoo = _source_zoo(spec, args.parent), _write_zoo(spec)
    source.keras_parent(args.parent, "fine-tuning")  # before the data: a wrong parent is named at once
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
    dataset = load_data(spec, listing_only=args.dry_run)
    conditions = _finetune_conditions(where.matrix)
    if args.dry_run:
        from codecbench.models import FCNNConfig
        from codecbench.run.plan import training_plan

        config = _train_config(args, spec)
        model = FCNNConfig.from_dict(source.metadata(args.parent)["config"])
        runs = [("full fine-tuning", args.epochs)] if segments is None else \
            [(f"segment {k} fine-tuning", args.epochs) for k in segments]
        print(training_plan(f"finetune {args.parent} on {dataset.name}", dataset, conditions, where.cache,
                            config=model, train_config=config, runs=runs, jobs=spec.jobs,
                            scheduler=spec.scheduler).report())
        return 0
    _check_disk(dataset, conditions, spec, args.force)
    validate = _epoch_validator(args, dataset, spec)
    saved = finetune(zoo, args.parent, dataset, where.matrix, where.cache, segments=segments,
                     epochs=args.epochs, save_epochs=save_epochs, config=_train_config(args, spec), jobs=spec.jobs,
                     backend=spec.backend, scheduler=spec.scheduler, source=source, overwrite=args.force,
                     learning_rate=args.lr, validate=validate,
                     progress=lambda line: print(line, file=sys.stderr, flush=True))
    _saved(saved, zoo)
    return 0


def cmd_postfilter(args, spec: RunSpec) -> int:
    from codecbench.remedies.postfilter import PostFilterConfig, train_postfilter

    where = Workspace(spec)
    if args.layers < 2:
        raise UsageError("--layers: at least 2 (hidden convolutions, then the correction)")
    source, zoo = _source_zoo(spec, args.parent), _write_zoo(spec)
    parent = source.keras_parent(args.parent, "a post-filter's classifier")  # before the data
    zoo.check_writable([args.name or f"{parent}+postfilter"], args.force)
    config = PostFilterConfig(filters=args.filters, layers=args.layers, epochs=args.epochs, learning_rate=args.lr,
                              crop_frames=args.crop or None, seed=args.seed)
    dataset = load_data(spec)
    conditions = _finetune_conditions(where.matrix)
    _check_disk(dataset, conditions, spec, args.force)
    saved = train_postfilter(zoo, args.parent, dataset, where.matrix, where.cache, config=config, name=args.name,
                             source=source, jobs=spec.jobs, backend=spec.backend, scheduler=spec.scheduler,
                             overwrite=args.force)
    meta = zoo.metadata(saved)["postfilter"]
    print(f"post-filter: {meta['params']:,} parameters in front of {meta['classifier_params']:,}; adds "
          f"{meta['added_ms_per_clip']:.2f} ms per clip here")
    _saved([saved], zoo)
    return 0


def cmd_consistency(args, spec: RunSpec) -> int:
    from codecbench.remedies.consistency import finetune_consistency

    where = Workspace(spec)
    source, zoo = _source_zoo(spec, args.parent), _write_zoo(spec)
    # the parent's kind and the name before the data (`--name ../evil` trained 71 s before it was refused)
    source.keras_parent(args.parent, "consistency fine-tuning")
    zoo.check_writable([args.name], args.force)
    dataset = load_data(spec)
    _check_disk(dataset, _finetune_conditions(where.matrix), spec, args.force)
    saved = finetune_consistency(zoo, args.parent, dataset, where.matrix, where.cache, name=args.name,
                                 epochs=args.epochs, weight=args.weight, temperature=args.temperature,
                                 learning_rate=args.lr, source=source, overwrite=args.force, jobs=spec.jobs,
                                 backend=spec.backend, scheduler=spec.scheduler,
                                 progress=lambda line: print(line, file=sys.stderr))
    meta = zoo.metadata(saved)["consistency"]
    print(f"{saved}: coded training clips predicted unlike their uncoded version: {meta['disagreement_before']:.3f} "
          f"before, {meta['disagreement_after']:.3f} after")
    _saved([saved], zoo)
    return 0


def cmd_zoo(args, spec: RunSpec) -> int:


    where = Workspace(spec)
    if args.action == "compare":
        if not args.other:
            raise UsageError("zoo compare needs --other DIR")
        for flag, folder in (("--other", Path(args.other)), ("--model-dir", where.zoo.root)):
            if not folder.is_dir():
                raise UsageError(f"{flag} {folder}: not a model folder")
        rows = compare(where.zoo, Zoo(args.other))
        if not rows:
            raise UsageError(f"{where.zoo.root} and {args.other} have no model names in common; nothing to compare")
        print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3g"))
        same = sum(r["max_abs_diff"] == 0 for r in rows)
        print(f"{same} of {len(rows)} models have bit-identical weights")
        return 0
    if args.action == "list":
        rows = where.zoo.rows()
        print(f"model dir: {where.zoo.root}")
        print(tabulate(rows, headers="keys", tablefmt="github") if rows else "(no models)")
        return 0
    from codecbench.remedies.finetune import PRESETS, build_zoo

    if spec.sources.get("dataset") == "default" and not PRESETS[args.preset]["dataset"]:
        raise UsageError(f"zoo preset {args.preset!r} needs --dataset (the TAU 2020 Mobile root)")
    zoo = _write_zoo(spec)
    preset = PRESETS[args.preset]
    dataset = load_data(spec, listing_only=args.dry_run)
    conditions = _finetune_conditions(where.matrix)
    if args.dry_run:
        from codecbench.models import preset_config
        from codecbench.remedies.finetune import remaining_runs
        from codecbench.run.plan import SEGMENT_TIMING_NOTE, training_plan

        names = zoo.names()
        runs: list[tuple] = [] if "base" in names else [("base training (original audio)", preset["base"].epochs, 1)]
        runs += remaining_runs(names, save_epochs=preset["save_epochs"], full_epochs=preset["full_epochs"],
                               segments=preset["segments"], segment_epochs=preset["segment_epochs"])
        model = preset_config(preset["model_preset"], (128, 423, 3), len(dataset.class_names))
        plan = training_plan(f"zoo build --preset {args.preset} on {dataset.name} into {zoo.root}", dataset,
                             conditions, where.cache, config=model, train_config=preset["finetune"], runs=runs,
                             jobs=spec.jobs, scheduler=spec.scheduler)
        plan.notes.append(SEGMENT_TIMING_NOTE)
        print(plan.report())
        return 0
    _check_disk(dataset, conditions, spec, args.force)
    built = build_zoo(zoo, dataset, where.matrix, where.cache, args.preset, jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler, precision=spec.precision, devices=spec.devices,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    _saved(built, zoo)
    return 0
