"""The ``codecbench`` command: a thin layer of argument parsing over the library."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tabulate import tabulate

from . import codecs
from .cache import Cache
from .config import load_config
from .training import FINETUNE_DEFAULTS, TrainConfig


def _common(parser: argparse.ArgumentParser, *names: str) -> None:
    if "cache" in names:
        parser.add_argument("--cache-dir", help="cache folder (default: $CODECBENCH_CACHE or ~/.cache/codecbench)")
    if "matrix" in names:
        parser.add_argument("--matrix", help="condition matrix TOML (default: the paper's Table 1)")
    if "dataset" in names:
        parser.add_argument("--dataset", default=None, help="'synthetic' (default), a TAU root or a folder per class")
        parser.add_argument("--split", default="evaluate", help="split to use (default: evaluate)")
        parser.add_argument("--allow-partial", action="store_true", help="use the clips present if some are missing")
    if "jobs" in names:
        parser.add_argument("--jobs", "-j", type=int, default=None, help="parallel workers (default: all cores)")
        parser.add_argument("--backend", default="loky", choices=["loky", "threading", "sequential"])
        parser.add_argument("--scheduler", default=None,
                            help="dask.distributed scheduler address, or 'local' for a LocalCluster")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("conditions", help="print the condition matrix and what is available here")
    _common(p, "matrix")

    p = sub.add_parser("encode", help="fill the cache with coded audio (and features) for a dataset split")
    _common(p, "cache", "matrix", "dataset", "jobs")
    p.add_argument("--conditions", help="comma-separated conditions (default: every condition of the matrix)")
    p.add_argument("--features", action="store_true", help="also extract and cache the log-mel features")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("cache", help="inspect or clear the cache")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--namespace", help="only this part of the cache (audio, features, datasets)")
    _common(p, "cache")

    p = sub.add_parser("segments", help="print a model's segments with their parameter counts")
    p.add_argument("model", help="a model name in the zoo, or a .keras/.hdf5 file")
    p.add_argument("--model-dir")
    p.add_argument("--trust-code", action="store_true", help="allow Lambda layers (executable code) in the file")

    p = sub.add_parser("import-model", help="put a checkpoint (.keras or legacy .hdf5) into the model directory")
    p.add_argument("path")
    p.add_argument("--name", required=True)
    p.add_argument("--model-dir")
    p.add_argument("--trust-code", action="store_true", help="allow Lambda layers (executable code) in the file")

    p = sub.add_parser("train", help="train the FCNN from scratch (base training)")
    _common(p, "cache", "dataset", "jobs")
    p.add_argument("--name", default="base")
    p.add_argument("--model-dir")
    p.add_argument("--preset", default="small", choices=["small", "paper"])
    p.add_argument("--conditions", default="wav", help="training conditions (coded ones: the paper's retraining)")
    p.add_argument("--resume", action="store_true", help="continue from the last epoch's checkpoint")
    _train_options(p, TrainConfig())

    p = sub.add_parser("finetune", help="fine-tune a zoo model on original + coded audio (Experiments A and B)")
    _common(p, "cache", "dataset", "matrix", "jobs")
    p.add_argument("--from", dest="parent", default="base", help="parent model name (default: base)")
    p.add_argument("--model-dir")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="Experiment A: every parameter")
    mode.add_argument("--segment", help="Experiment B: segment(s) to fine-tune alone, e.g. 7 or 1-10")
    p.add_argument("--save-epochs", help="with --full: epochs to save, e.g. 1,10,20,40 (default: the last)")
    _train_options(p, TrainConfig(**FINETUNE_DEFAULTS))

    p = sub.add_parser("zoo", help="list the model zoo, build what is missing, or compare it with another")
    p.add_argument("action", choices=["list", "build", "compare"])
    p.add_argument("--other", help="with compare: the other model directory (e.g. a rebuild)")
    p.add_argument("--preset", default="demo", help="zoo build preset: demo (synthetic, small FCNN) or paper")
    p.add_argument("--model-dir")
    _common(p, "cache", "dataset", "matrix", "jobs")

    p = sub.add_parser("report", help="render the paper's tables and Figure 2 from a results folder")
    p.add_argument("--results", default=None, help="results folder or results.json (default: reports/)")
    p.add_argument("--out", default=None, help="output folder (default: the results folder)")
    p.add_argument("--format", default="md,csv,png,svg", help="comma-separated: md, csv, png, svg")
    p.add_argument("--models", default=None, help="comma-separated model names (default: all in the results)")
    p.add_argument("--baseline", default=None, help="results.json of an earlier run: adds a delta column")
    p.add_argument("--alpha", type=float, default=0.05)

    p = sub.add_parser("thresholds", help="write a thresholds TOML from a results run (accuracy - margin)")
    p.add_argument("--results", default=None, help="results folder or results.json (default: reports/)")
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--out", default=None, help="file to write (default: print)")

    p = sub.add_parser("bench", help="performance figures of this machine")
    p.add_argument("what", choices=["codecs", "model", "finetune"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--clips", type=int, default=24, help="clips for the fill benchmark (codecs)")
    return parser


def _train_options(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    group = parser.add_argument_group("training schedule")
    group.add_argument("--epochs", type=int, default=defaults.epochs)
    group.add_argument("--batch-size", type=int, default=defaults.batch_size)
    group.add_argument("--lr", type=float, default=defaults.learning_rate, help="initial learning rate")
    group.add_argument("--first-restart", type=float, default=defaults.first_restart_epochs,
                       help="epochs until the first warm restart")
    group.add_argument("--period-mult", type=float, default=defaults.period_multiplier)
    group.add_argument("--rate-mult", type=float, default=defaults.rate_multiplier)
    group.add_argument("--mixup", type=float, default=defaults.mixup_alpha, help="mixup alpha (0: off)")
    group.add_argument("--crop", type=int, default=defaults.crop_frames, help="random crop in frames (0: off)")
    group.add_argument("--time-mask", type=int, default=defaults.time_mask_frames)
    group.add_argument("--freq-mask", type=int, default=defaults.freq_mask_bins)
    group.add_argument("--seed", type=int, default=defaults.seed)


def _train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       first_restart_epochs=args.first_restart, period_multiplier=args.period_mult,
                       rate_multiplier=args.rate_mult, mixup_alpha=args.mixup, crop_frames=args.crop or None,
                       time_mask_frames=args.time_mask, freq_mask_bins=args.freq_mask, seed=args.seed)


def _resolve(args, config: dict, name: str, default=None):
    value = getattr(args, name, None)
    return value if value is not None else config.get(name, default)


def cmd_conditions(args, config) -> int:
    from .matrix import load_matrix

    matrix = load_matrix(_resolve(args, config, "matrix"))
    rows = []
    roles: dict = {}
    for cat, conds in matrix.categories.items():
        for c in conds:
            roles.setdefault(c, []).append(f"{cat} ({matrix.descriptions[cat]})" if matrix.descriptions[cat] else cat)
    for c in matrix.finetune:
        roles.setdefault(c, []).append("fine-tuning")
    hints: dict[str, None] = {}
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


def _dataset(args, config):
    from .datasets import load_dataset

    return load_dataset(_resolve(args, config, "dataset", "synthetic"), cache_dir=_resolve(args, config, "cache_dir"),
                        allow_partial=getattr(args, "allow_partial", False))


def cmd_encode(args, config) -> int:
    from .encode import fill
    from .matrix import load_matrix

    if args.conditions:
        conds = [codecs.parse_condition(c) for c in args.conditions.split(",") if c.strip()]
    else:
        conds = load_matrix(_resolve(args, config, "matrix")).all_conditions()
    usable = []
    for cond in conds:
        ok, why = codecs.availability(cond)
        if ok:
            usable.append(cond)
        else:
            print(f"warning: skipping {cond.name}: {why}", file=sys.stderr)
    dataset = _dataset(args, config)
    clips = dataset.clips(args.split)
    cache = Cache(_resolve(args, config, "cache_dir"))
    print(f"{dataset.name}: {len(clips)} clips of split {args.split!r}, {len(usable)} conditions -> {cache.root}",
          file=sys.stderr)
    summary = fill(clips, usable, cache, with_features=args.features, jobs=_resolve(args, config, "jobs"),
                   backend=args.backend, scheduler=_resolve(args, config, "scheduler"), on_error=args.on_error,
                   progress=False if args.quiet else None)
    print(summary.report())
    return 1 if summary.failures and args.on_error == "raise" else 0


def cmd_cache(args, config) -> int:
    cache = Cache(_resolve(args, config, "cache_dir"))
    if args.action == "clear":
        print(f"removed {cache.clear(args.namespace)} entries from {cache.root}")
        return 0
    info = cache.info()
    rows = [[ns, v["entries"], f"{v['bytes'] / 2**20:.1f}"] for ns, v in info.items()
            if not args.namespace or ns == args.namespace]
    print(f"cache: {cache.root}")
    print(tabulate(rows, headers=["namespace", "entries", "MiB"], tablefmt="github") if rows else "(empty)")
    return 0


def cmd_bench(args, config) -> int:
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


def _zoo(args, config):
    from .zoo import Zoo, resolve_model_dir

    return Zoo(resolve_model_dir(getattr(args, "model_dir", None), config))


def cmd_segments(args, config) -> int:
    from pathlib import Path

    from .models import derive_segments, load_model

    if Path(args.model).suffix in (".keras", ".hdf5", ".h5"):
        model, _ = load_model(args.model, trust=args.trust_code)
    else:
        model, _ = _zoo(args, config).load(args.model)
    rows = [[s.index, s.kind, f"{s.params:,}", ", ".join(s.layers)] for s in derive_segments(model)]
    print(tabulate(rows, headers=["segment", "kind", "params", "layers"], tablefmt="github"))
    print(f"total parameters: {model.count_params():,}")
    return 0


def cmd_import_model(args, config) -> int:
    from .models import file_sha256, load_model
    from .provenance import now

    model, meta = load_model(args.path, trust=args.trust_code)
    zoo = _zoo(args, config)
    meta = {**meta, "strategy": meta.get("strategy", "imported"), "imported_from": str(args.path),
            "source_sha256": file_sha256(args.path), "created": now()}
    path = zoo.save(args.name, model, meta)
    print(f"imported {args.path} as {args.name!r} -> {path} ({model.count_params():,} parameters)")
    return 0


def cmd_train(args, config) -> int:
    from .finetune import train_base

    dataset = _dataset(args, config)
    conds = [c.strip() for c in args.conditions.split(",") if c.strip()]
    name = train_base(_zoo(args, config), dataset, Cache(_resolve(args, config, "cache_dir")), name=args.name,
                      preset=args.preset, config=_train_config(args), conditions=conds,
                      jobs=_resolve(args, config, "jobs"), resume=args.resume)
    print(f"saved {name!r} in {_zoo(args, config).root}")
    return 0


def cmd_finetune(args, config) -> int:
    from .finetune import finetune
    from .matrix import load_matrix
    from .models import derive_segments, parse_segments

    zoo = _zoo(args, config)
    segments = None
    if args.segment:
        model, _ = zoo.load(args.parent)
        segments = parse_segments(args.segment, len(derive_segments(model)))
    save_epochs = [int(e) for e in args.save_epochs.split(",")] if args.save_epochs else None
    saved = finetune(zoo, args.parent, _dataset(args, config), load_matrix(_resolve(args, config, "matrix")),
                     Cache(_resolve(args, config, "cache_dir")), segments=segments, epochs=args.epochs,
                     save_epochs=save_epochs, config=_train_config(args), jobs=_resolve(args, config, "jobs"))
    print(f"saved {', '.join(saved)} in {zoo.root}")
    return 0


def cmd_zoo(args, config) -> int:
    zoo = _zoo(args, config)
    if args.action == "compare":
        from .zoo import Zoo, compare
        if not args.other:
            raise ValueError("zoo compare needs --other DIR")
        rows = compare(zoo, Zoo(args.other))
        print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3g"))
        same = sum(r["max_abs_diff"] == 0 for r in rows)
        print(f"{same} of {len(rows)} models have bit-identical weights")
        return 0
    if args.action == "list":
        rows = zoo.rows()
        print(f"model dir: {zoo.root}")
        print(tabulate(rows, headers="keys", tablefmt="github") if rows else "(no models)")
        return 0
    from .finetune import PRESETS, build_zoo
    from .matrix import load_matrix

    dataset_spec = _resolve(args, config, "dataset") or PRESETS.get(args.preset, {}).get("dataset")
    if not dataset_spec:
        raise ValueError(f"zoo preset {args.preset!r} needs --dataset (the TAU 2020 Mobile root)")
    from .datasets import load_dataset
    dataset = load_dataset(dataset_spec, cache_dir=_resolve(args, config, "cache_dir"))
    built = build_zoo(zoo, dataset, load_matrix(_resolve(args, config, "matrix")),
                      Cache(_resolve(args, config, "cache_dir")), args.preset, jobs=_resolve(args, config, "jobs"))
    print(f"built {', '.join(built) if built else 'nothing (complete)'} in {zoo.root}")
    return 0


def cmd_report(args, config) -> int:
    from .report import FORMATS, render

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"--format: unknown {', '.join(unknown)}; expected some of {', '.join(FORMATS)}")
    results = args.results or config.get("results") or "reports"
    out = args.out or (results if not str(results).endswith(".json") else str(Path(results).parent))
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    markdown, written = render(results, out, formats, models, args.baseline or config.get("baseline"), args.alpha)
    print(markdown)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def cmd_thresholds(args, config) -> int:
    from .results import load_results
    from .thresholds import thresholds_from_results

    text = thresholds_from_results(load_results(args.results or config.get("results") or "reports"), args.margin)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


COMMANDS = {"report": cmd_report, "thresholds": cmd_thresholds, "conditions": cmd_conditions, "encode": cmd_encode, "cache": cmd_cache, "bench": cmd_bench,
            "segments": cmd_segments, "import-model": cmd_import_model, "train": cmd_train,
            "finetune": cmd_finetune, "zoo": cmd_zoo}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        config = load_config()
        return COMMANDS[args.command](args, config)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"codecbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything finished so far is kept in the cache", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
