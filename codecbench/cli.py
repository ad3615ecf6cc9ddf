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

from .errors import CodecbenchError, UsageError
from .schedule import FINETUNE_DEFAULTS, TrainConfig
from .cache import NAMESPACES
from .spec import OPTIONS, RunSpec


def _common(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add options of the run specification; their values are validated by :meth:`RunSpec.build`."""
    for name in names:
        option = OPTIONS[name]
        flags = [option.flag] + (["-j"] if name == "jobs" else [])
        parser.add_argument(*flags, dest=name, default=None, help=option.help)


def _spec(args) -> RunSpec:
    return RunSpec.build({name: getattr(args, name, None) for name in OPTIONS})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("conditions", help="print the condition matrix and what is available here")
    _common(p, "matrix")

    p = sub.add_parser("encode", help="fill the cache with coded audio (and features) for a dataset split")
    _common(p, "cache_dir", "matrix", "dataset", "split", "jobs", "backend", "scheduler")
    p.add_argument("--allow-partial", action="store_true", help="use the clips present if some are missing")
    p.add_argument("--conditions", dest="condition",
                   help="comma-separated conditions (default: every condition of the matrix)")
    p.add_argument("--features", action="store_true", help="also extract and cache the log-mel features")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
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
    p.add_argument("--trust-code", action="store_true", help="allow Lambda layers (executable code) in the file")

    p = sub.add_parser("import-model", help="put a checkpoint (.keras or legacy .hdf5) into the model directory")
    p.add_argument("path")
    p.add_argument("--name", required=True)
    _common(p, "model_dir")
    p.add_argument("--trust-code", action="store_true", help="allow Lambda layers (executable code) in the file")
    p.add_argument("--force", action="store_true", help="replace a model of that name")

    p = sub.add_parser("train", help="train the FCNN from scratch (base training)")
    _common(p, "cache_dir", "dataset", "jobs", "backend", "scheduler", "model_dir")
    p.add_argument("--name", default="base")
    p.add_argument("--preset", default="small", choices=["small", "paper"])
    p.add_argument("--conditions", dest="condition", default="wav",
                   help="training conditions (coded ones: the paper's retraining)")
    p.add_argument("--resume", action="store_true", help="continue from the last epoch's checkpoint")
    p.add_argument("--force", action="store_true", help="replace a model of that name")
    _train_options(p, TrainConfig())

    p = sub.add_parser("finetune", help="fine-tune a zoo model on original + coded audio (Experiments A and B)")
    _common(p, "cache_dir", "dataset", "matrix", "jobs", "backend", "scheduler", "model_dir")
    p.add_argument("--from", dest="parent", default="base", help="parent model name (default: base)")
    p.add_argument("--force", action="store_true", help="replace existing models of the same names")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="Experiment A: every parameter")
    mode.add_argument("--segment", help="Experiment B: segment(s) to fine-tune alone, e.g. 7 or 1-10")
    p.add_argument("--save-epochs", help="with --full: epochs to save, e.g. 1,10,20,40 (default: the last)")
    _train_options(p, TrainConfig(**FINETUNE_DEFAULTS))

    p = sub.add_parser("zoo", help="list the model zoo, build what is missing, or compare it with another")
    p.add_argument("action", choices=["list", "build", "compare"])
    p.add_argument("--other", help="with compare: the other model directory (e.g. a rebuild)")
    p.add_argument("--preset", default="demo", choices=["demo", "paper"],
                   help="zoo build preset: demo (synthetic, small FCNN) or paper")
    _common(p, "model_dir", "cache_dir", "dataset", "matrix", "jobs", "backend", "scheduler")

    p = sub.add_parser("report", help="render the paper's tables and Figure 2 from a results folder")
    _common(p, "results", "baseline", "alpha")
    p.add_argument("--out", default=None, help="output folder (default: the results folder)")
    p.add_argument("--format", default="md,csv,png,svg", help="comma-separated: md, csv, png, svg")
    p.add_argument("--models", dest="model", default=None,
                   help="comma-separated model names (default: all in the results)")

    p = sub.add_parser("thresholds", help="write a thresholds TOML from a results run (accuracy - margin)")
    _common(p, "results")
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--out", default=None, help="file to write (default: print)")

    p = sub.add_parser("bench", help="performance figures of this machine")
    p.add_argument("what", choices=["codecs", "model", "finetune"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--clips", type=_positive_int, default=24, help="clips for the fill benchmark (codecs)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _train_options(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    group = parser.add_argument_group("training schedule")
    group.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    group.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    group.add_argument("--lr", type=_positive_float, default=defaults.learning_rate, help="initial learning rate")
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


def _train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
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
        rows.append([cond.name, codecs.codec_library(cond), "; ".join(roles[cond]), "yes" if ok else f"no: {reason}"])
    print(f"matrix: {matrix.name} ({matrix.source})")
    print(tabulate(rows, headers=["condition", "codec library", "role", "available here"], tablefmt="github"))
    for hint in hints:
        print(f"\nhint: {hint}")
    return 0


def cmd_encode(args, spec: RunSpec) -> int:
    from . import codecs
    from .encode import fill

    conds = list(spec.condition) if spec.condition else spec.matrix_obj.all_conditions()
    usable = []
    for cond in conds:
        ok, why = codecs.availability(cond)
        if ok:
            usable.append(cond)
        else:
            print(f"warning: skipping {cond.name}: {why}", file=sys.stderr)
    if not usable:
        raise UsageError("no condition to code: every selected condition is unavailable here (see above)")
    dataset = spec.load_dataset(allow_partial=args.allow_partial)
    clips = dataset.clips(spec.split)
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

    if args.what == "codecs":
        result = bench.bench_codecs(clips=args.clips)
        print(json.dumps(result, indent=2) if args.json else bench.format_codec_bench(result))
        return 0
    if args.what == "model":
        result = bench.bench_model()
        print(json.dumps(result, indent=2) if args.json else bench.format_model_bench(result))
        return 0
    result = bench.bench_finetune()
    print(json.dumps(result, indent=2) if args.json else bench.format_finetune_bench(result))
    return 0


def _write_zoo(spec: RunSpec):
    """Where new models go: --model-dir, else the user model folder (never the packaged zoo)."""
    from .zoo import Zoo, user_model_dir

    return Zoo(spec.model_dir or user_model_dir())


def _source_zoo(spec: RunSpec, name: str):
    """Where a parent model is read: --model-dir, else the user model folder if it has it, else the packaged zoo."""
    from .zoo import ALIASES, Zoo

    if spec.model_dir:
        return Zoo(spec.model_dir)
    user = _write_zoo(spec)
    return user if (name in user.names() or ALIASES.get(name) in user.names()) else Zoo()


def _saved(names: list[str], zoo) -> None:
    from .zoo import user_model_dir

    print(f"saved {', '.join(names) if names else 'nothing (complete)'} in {zoo.root}")
    if names and zoo.root == user_model_dir():
        print(f"(no --model-dir was given, so they went to the user model folder; use them with "
              f"--model-dir {zoo.root})")


def cmd_segments(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    from .models import derive_segments, load_model

    if Path(args.model_name).suffix in (".keras", ".hdf5", ".h5"):
        model, _ = load_model(args.model_name, trust=args.trust_code)
    else:
        model, _ = _source_zoo(spec, args.model_name).load(args.model_name)
    rows = [[s.index, s.kind, f"{s.params:,}", ", ".join(s.layers)] for s in derive_segments(model)]
    print(tabulate(rows, headers=["segment", "kind", "params", "layers"], tablefmt="github"))
    print(f"total parameters: {model.count_params():,}")
    return 0


def cmd_import_model(args, spec: RunSpec) -> int:
    from .models import file_sha256, load_model
    from .provenance import now
    from .zoo import check_name

    zoo = _write_zoo(spec)
    zoo.check_writable([check_name(args.name)], args.force)
    model, meta = load_model(args.path, trust=args.trust_code)
    meta = {**meta, "strategy": meta.get("strategy", "imported"), "imported_from": str(args.path),
            "source_sha256": file_sha256(args.path), "created": now()}
    path = zoo.save(args.name, model, meta, overwrite=args.force)
    print(f"imported {args.path} as {args.name!r} -> {path} ({model.count_params():,} parameters)")
    return 0


def cmd_train(args, spec: RunSpec) -> int:
    from .finetune import train_base

    zoo = _write_zoo(spec)
    name = train_base(zoo, spec.load_dataset(), spec.cache, name=args.name, preset=args.preset,
                      config=_train_config(args), conditions=[c.name for c in spec.condition], jobs=spec.jobs,
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
    saved = finetune(zoo, args.parent, spec.load_dataset(), spec.matrix_obj, spec.cache, segments=segments,
                     epochs=args.epochs, save_epochs=save_epochs, config=_train_config(args), jobs=spec.jobs,
                     backend=spec.backend, scheduler=spec.scheduler, source=source, overwrite=args.force)
    _saved(saved, zoo)
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
    built = build_zoo(zoo, spec.load_dataset(), spec.matrix_obj, spec.cache, args.preset, jobs=spec.jobs,
                      backend=spec.backend, scheduler=spec.scheduler)
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
                               spec.alpha)
    print(markdown)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def cmd_thresholds(args, spec: RunSpec) -> int:
    from .fsutil import atomic_write
    from .results import load_results
    from .thresholds import thresholds_from_results

    if not 0 <= args.margin < 1:
        raise UsageError(f"--margin: expected a number in [0, 1), got {args.margin}")
    text = thresholds_from_results(load_results(spec.results), args.margin)
    if args.out:
        atomic_write(args.out, text, fsync=False)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


COMMANDS = {"report": cmd_report, "thresholds": cmd_thresholds, "conditions": cmd_conditions, "encode": cmd_encode,
            "cache": cmd_cache, "bench": cmd_bench, "segments": cmd_segments, "import-model": cmd_import_model,
            "train": cmd_train, "finetune": cmd_finetune, "zoo": cmd_zoo}


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
