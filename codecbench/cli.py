"""The ``codecbench`` command: a thin layer of argument parsing over the library."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from tabulate import tabulate

from . import codecs
from .cache import Cache
from .config import load_config


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

    p = sub.add_parser("bench", help="performance figures of this machine")
    p.add_argument("what", choices=["codecs", "model"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--clips", type=int, default=12, help="clips for the fill benchmark (codecs)")
    return parser


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
    result = bench.bench_model()
    print(json.dumps(result, indent=2) if args.json else bench.format_model_bench(result))
    return 0


COMMANDS = {"conditions": cmd_conditions, "encode": cmd_encode, "cache": cmd_cache, "bench": cmd_bench}


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
