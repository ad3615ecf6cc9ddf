"""Commands over models: ``segments``, ``import-model``, ``train``, ``finetune``, ``postfilter``, ``zoo``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tabulate import tabulate

from codecbench.cli.parser import _train_config, validation_conditions
from codecbench.codecs import ORIGINAL
from codecbench.core.config import read_toml
from codecbench.errors import UsageError
from codecbench.run.plan import training_plan
from codecbench.run.resolve import Workspace
from codecbench.signal.frontends import parse_frontend
from codecbench.training.schedule import TrainingRun
from codecbench.zoo import Zoo, compare, user_model_dir
from codecbench.zoo.importing import import_model


def _saved(names: list[str], zoo) -> None:
    print(f"saved {', '.join(names) if names else 'nothing (complete)'} in {zoo.root}")
    if names and zoo.root == user_model_dir():
        print(f"(no --model-dir was given, so they went to the user model folder; use them with "
              f"--model-dir {zoo.root})")


def cmd_segments(args, where: Workspace) -> int:
    from codecbench.models import derive_segments, load_model

    if Path(args.model_name).suffix in (".keras", ".hdf5", ".h5"):
        model, _ = load_model(args.model_name, trust=bool(args.trust_code))
    else:
        model, _ = where.parent(args.model_name, "listing segments").load()
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


def cmd_import_model(args, where: Workspace) -> int:
    kwargs = None
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--kwargs: not a JSON object ({exc})") from None
    if getattr(args, "prompts", None):
        kwargs = _class_map(args.prompts, option="--prompts", what="class = prompt")
    imported = import_model(where.models_written, args.path, name=args.name, kind=args.kind,
                            frontend=parse_frontend(args.frontend) if args.frontend else None,
                            class_names=_classes(args.classes), class_map=_class_map(args.class_map),
                            outputs=args.outputs, kwargs=kwargs, trust_code=bool(args.trust_code),
                            overwrite=args.force)
    print(imported.summary)
    return 0


def _epoch_validator(args, dataset, where: Workspace):
    """The per-epoch validation of ``--validate`` on the dataset's evaluation split, or None (said why)."""
    conds = validation_conditions(args.validate)
    if conds and "evaluate" in dataset.splits and dataset.splits["evaluate"]:
        from codecbench.remedies.finetune import epoch_validation
        return epoch_validation(dataset, [c for c in conds if where.availability(c)[0]], where.cache,
                                jobs=where.spec.jobs)
    if conds:
        print(f"note: {dataset.name} has no evaluation split here: no validation per epoch", file=sys.stderr)
    return None


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_train(args, where: Workspace) -> int:
    from codecbench.models import preset_config
    from codecbench.remedies.finetune import train_base

    spec, zoo = where.spec, where.models_written
    dataset = where.load_data(listing_only=args.dry_run)
    config = _train_config(args, spec)
    conditions = list(spec.condition or (ORIGINAL,))
    note = config.cycle_note()
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        model = preset_config(args.preset, (128, 423, 3), len(dataset.class_names))
        validating = [c for c in validation_conditions(args.validate) if where.availability(c)[0]]
        evaluate = len(dataset.splits.get("evaluate") or ())
        print(training_plan(f"train {args.name} ({args.preset}) on {dataset.name}", dataset, conditions, where.cache,
                            config=model, train_config=config, runs=[TrainingRun("training", config.epochs)],
                            jobs=spec.jobs, scheduler=spec.scheduler,
                            validations_per_epoch=evaluate * len(validating)).report())
        return 0
    where.check_disk(dataset, conditions, force=args.force)
    name = train_base(zoo, dataset, where.cache, name=args.name, preset=args.preset,
                      config=config, conditions=conditions, jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler, resume=args.resume, overwrite=args.force,
                      validate=_epoch_validator(args, dataset, where), schedule_change=args.allow_schedule_change,
                      progress=_progress)
    _saved([name], zoo)
    return 0


def _remedy(args, where: Workspace, use: str, names, train, *, plan=None) -> list[str]:
    """The one runner of the remedy commands (``finetune``, ``postfilter``, ``consistency``), in the order each check
    comes before the work it guards: the parent (``use`` names what it is for) and the names the remedy saves,
    then the data announced, then ``plan(parent, dataset)`` for ``--dry-run``, or the disk checked and
    ``train(parent, dataset, work)`` run with the run's pool settings; returns what was saved."""
    spec, zoo = where.spec, where.models_written
    parent = where.parent(args.parent, use)
    wanted = names(parent)
    if wanted:
        zoo.check_writable(wanted, args.force)
    dataset = where.load_data(listing_only=bool(plan and args.dry_run))
    if plan is not None and args.dry_run:
        print(plan(parent, dataset).report())
        return []
    where.check_disk(dataset, where.training_conditions, force=args.force)
    saved = train(parent, dataset, dict(jobs=spec.jobs, backend=spec.backend, scheduler=spec.scheduler,
                                        overwrite=args.force))
    return saved if isinstance(saved, list) else [saved]


def cmd_finetune(args, where: Workspace) -> int:
    from codecbench.models import FCNNConfig, derive_segments, parse_segments
    from codecbench.remedies.finetune import finetune

    spec = where.spec
    save_epochs = None
    if args.save_epochs:
        try:
            save_epochs = [int(e) for e in args.save_epochs.split(",") if e.strip()]
        except ValueError:
            raise UsageError(f"--save-epochs: expected comma-separated epochs such as 1,10,20,40, got "
                             f"{args.save_epochs!r}") from None
    segments = None

    def names(parent) -> list[str]:
        nonlocal segments
        if args.segment:
            model, _ = parent.load()
            try:
                segments = parse_segments(args.segment, len(derive_segments(model)))
            except ValueError as exc:
                raise UsageError(f"--segment: {exc}") from None
        return []  # finetune() checks its own names: which epochs it saves is its decision

    def plan(parent, dataset):
        runs = [TrainingRun("full fine-tuning", args.epochs)] if segments is None else \
            [TrainingRun(f"segment {k} fine-tuning", args.epochs, segments=(k,)) for k in segments]
        return training_plan(f"finetune {parent.name} on {dataset.name}", dataset, where.training_conditions,
                             where.cache, config=FCNNConfig.from_dict(parent.metadata["config"]),
                             train_config=_train_config(args, spec), runs=runs, jobs=spec.jobs,
                             scheduler=spec.scheduler)

    def train(parent, dataset, work):
        return finetune(where.models_written, parent, dataset, where.matrix, where.cache, segments=segments,
                        epochs=args.epochs, save_epochs=save_epochs, config=_train_config(args, spec),
                        learning_rate=args.lr, validate=_epoch_validator(args, dataset, where), progress=_progress,
                        **work)

    saved = _remedy(args, where, "fine-tuning", names, train, plan=plan)
    if not args.dry_run:
        _saved(saved, where.models_written)
    return 0


def cmd_postfilter(args, where: Workspace) -> int:
    from codecbench.remedies.postfilter import PostFilterConfig, train_postfilter

    if args.layers < 2:
        raise UsageError("--layers: at least 2 (hidden convolutions, then the correction)")
    config = PostFilterConfig(filters=args.filters, layers=args.layers, epochs=args.epochs, learning_rate=args.lr,
                              crop_frames=args.crop or None, seed=args.seed)

    def train(parent, dataset, work):
        return train_postfilter(where.models_written, parent, dataset, where.matrix, where.cache, config=config,
                                name=args.name, **work)

    saved = _remedy(args, where, "a post-filter's classifier",
                    lambda parent: [args.name or f"{parent.name}+postfilter"], train)
    meta = where.models_written.metadata(saved[0])["postfilter"]
    print(f"post-filter: {meta['params']:,} parameters in front of {meta['classifier_params']:,}; adds "
          f"{meta['added_ms_per_clip']:.2f} ms per clip here")
    _saved(saved, where.models_written)
    return 0


def cmd_consistency(args, where: Workspace) -> int:
    from codecbench.remedies.consistency import finetune_consistency

    def train(parent, dataset, work):
        return finetune_consistency(where.models_written, parent, dataset, where.matrix, where.cache, name=args.name,
                                    epochs=args.epochs, weight=args.weight, temperature=args.temperature,
                                    learning_rate=args.lr, progress=lambda line: print(line, file=sys.stderr),
                                    **work)

    # the parent's kind and the name before the data (`--name ../evil` trained 71 s before it was refused)
    saved = _remedy(args, where, "consistency fine-tuning", lambda parent: [args.name], train)
    meta = where.models_written.metadata(saved[0])["consistency"]
    print(f"{saved[0]}: coded training clips predicted unlike their uncoded version: "
          f"{meta['disagreement_before']:.3f} before, {meta['disagreement_after']:.3f} after")
    _saved(saved, where.models_written)
    return 0


def cmd_zoo(args, where: Workspace) -> int:
    spec = where.spec
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
    zoo = where.models_written
    preset = PRESETS[args.preset]
    dataset = where.load_data(listing_only=args.dry_run)
    conditions = where.training_conditions
    if args.dry_run:
        from codecbench.models import preset_config
        from codecbench.remedies.finetune import remaining_runs

        names = zoo.names()
        runs = [] if "base" in names else [TrainingRun("base training (original audio)", preset["base"].epochs, 1)]
        runs += remaining_runs(names, save_epochs=preset["save_epochs"], full_epochs=preset["full_epochs"],
                               segments=preset["segments"], segment_epochs=preset["segment_epochs"])
        model = preset_config(preset["model_preset"], (128, 423, 3), len(dataset.class_names))
        plan = training_plan(f"zoo build --preset {args.preset} on {dataset.name} into {zoo.root}", dataset,
                             conditions, where.cache, config=model, train_config=preset["finetune"], runs=runs,
                             jobs=spec.jobs, scheduler=spec.scheduler)
        print(plan.report())
        return 0
    where.check_disk(dataset, conditions, force=args.force)
    built = build_zoo(zoo, dataset, where.matrix, where.cache, args.preset, jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler, precision=spec.precision, devices=spec.devices,
                      progress=_progress)
    _saved(built, zoo)
    return 0
