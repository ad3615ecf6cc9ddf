"""Commands over codecs and data: ``conditions``, ``encode``, ``cache``, ``bench``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tabulate import tabulate

from codecbench import bench, codecs
from codecbench.cli.parser import _plan_options, validation_conditions  # noqa: F401
from codecbench.codecs import codec_rate
from codecbench.core.wording import counted
from codecbench.errors import UsageError
from codecbench.run.plan import clip_seconds, fill_stage, new_plan, plan_fill
from codecbench.run.resolve import Workspace
from codecbench.store.devices import report
from codecbench.store.export import ExportError, export
from codecbench.store.fill import fill


def cmd_conditions(args, where: Workspace) -> int:
    matrix = where.matrix
    roles: dict = {}
    for cat, conds in matrix.categories.items():
        for c in conds:
            roles.setdefault(c, []).append(f"{cat} ({matrix.descriptions[cat]})" if matrix.descriptions[cat] else cat)
    for c in matrix.finetune:
        roles.setdefault(c, []).append("fine-tuning")
    hints: dict[str, None] = {}
    rows = []
    for cond in matrix.all_conditions():
        ok, why = where.availability(cond)
        reason, _, hint = why.partition(". ")
        if not ok and hint:
            hints.setdefault(hint)
        family = "-" if cond.is_original else cond.spec.family
        row = [cond.name, family, codecs.codec_library(cond), "; ".join(roles[cond]), "yes" if ok else f"no: {reason}"]
        if args.rate:
            row.insert(1, coded_at(cond, args.rate))
        rows.append(row)
    print(f"matrix: {matrix.name} ({matrix.source})")
    headers = ["condition", "family", "codec library", "role", "available here"]
    if args.rate:
        headers.insert(1, f"coded at, for {args.rate / 1000:g}-kHz sources")
    print(tabulate(rows, headers=headers, tablefmt="github"))
    coded = {c.codec for c in matrix.all_conditions() if not c.is_original}
    available = {c.codec for c in matrix.all_conditions() if not c.is_original and where.availability(c)[0]}
    print(f"\n{len(available)} of {len(coded)} codec families available here")
    for hint in hints:
        print(f"\nhint: {hint}")
    return 0


def cmd_encode(args, where: Workspace) -> int:
    spec = where.spec
    # the fine-tuning conditions are coded for the training split only; an evaluation scores the validation ones
    matrix = where.matrix
    conds = list(spec.condition) if spec.condition else (
        matrix.all_conditions() if spec.split == "train" else matrix.validation)
    usable = []
    for cond in conds:
        ok, why = where.availability(cond)
        if ok:
            usable.append(cond)
        else:
            print(f"warning: skipping {cond.name}: {why}", file=sys.stderr)
    if not usable:
        raise UsageError("no condition to code: every selected condition is unavailable here (see above)")

    # only the split being coded: the embedded default generates no other on its first use
    dataset = where.load_data(allow_partial=args.allow_partial, listing_only=args.dry_run, splits=(spec.split,))
    clips = dataset.clips(spec.split)
    plan = plan_fill(new_plan(f"encode {dataset.name} {spec.split}", clips, usable, where.cache), clips, usable,
                     where.cache, with_features=args.features)
    if args.dry_run:
        plan.stages += fill_stage(plan, clip_seconds(clips), spec.jobs, spec.scheduler)
        print(plan.report())
        return 0
    plan.check_disk(args.force)
    print(f"{dataset.name}: {counted(len(clips), 'clip')} of split {spec.split!r}, "
          f"{counted(len(usable), 'condition')} -> "
          f"{where.cache.root}", file=sys.stderr)
    summary = fill(clips, usable, where.cache, with_features=args.features, jobs=spec.jobs, backend=spec.backend,
                   scheduler=spec.scheduler, on_error=args.on_error, progress=False if args.quiet else None)
    print(summary.report())
    return 1 if summary.failures and args.on_error == "raise" else 0


def cmd_export(args, where: Workspace) -> int:
    spec = where.spec
    if Path(args.to).exists() and not Path(args.to).is_dir():  # before the data is loaded (or generated)
        raise ExportError(f"--to {args.to}: is a file, not a folder; give a folder for the exported audio")
    dataset = where.load_data(splits=(spec.split,))
    summary = export(dataset, spec.split, list(spec.condition or ()), Path(args.to), where.cache,
                     file_format=args.file_format, jobs=spec.jobs, backend=spec.backend, scheduler=spec.scheduler,
                     log=lambda message: print(message, file=sys.stderr))
    print(f"{args.to}: {summary.report()}")
    return 0


def cmd_cache(args, where: Workspace) -> int:
    cache = where.cache
    if args.action == "gc":
        counts = cache.gc(args.older_than)
        line = f"removed {counts['old_format']} entries of older formats"
        if counts.get("damaged"):
            line += f", {counts['damaged']} damaged entries (folders or links under an entry's name)"
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


def cmd_dataset(args, where: Workspace) -> int:
    from codecbench.datasets import download, verify

    if args.action == "list":
        rows = [[r.name, f"{r.size / 1e9:.1f} GB" if r.size_known else f"up to {r.size / 1e9:.1f} GB",
                 f"{r.clips.count:,}" if r.clips.count else "?", r.layout, r.licence, r.source, r.title]
                for r in download.records().values()]
        print(tabulate(rows, headers=["name", "size", "clips", "layout", "licence", "source", "title"],
                       tablefmt="github"))
        return 0
    if args.action == "download":
        root = download.download(args.name, args.to, mirror=args.mirror, unpack_archives=args.unpack,
                                 timeout=args.timeout)
        print(f"{args.name}: ready in {root}" if args.unpack else f"{args.name}: archives checked in {args.to}")
        return 0
    problems = verify.verify(args.name, args.folder, deep=args.deep)
    for problem in problems:
        print(problem)
    print(f"{args.folder}: " + ("complete" if not problems else counted(len(problems), "problem")))
    return 0 if not problems else 1


def cmd_bench(args, where: Workspace) -> int:
    run, show = bench.benchmark(args.what)
    sized = {**{what: (lambda n: {"clips": n}) for what in ("codecs", "augment", "feed", "fill", "plan")},
             "memory": lambda n: {"clips": n, "more_clips": 3 * n}}
    options = sized[args.what](args.clips) if args.clips and args.what in sized else {}
    if getattr(args, "condition", None):
        conditions = list(validation_conditions(args.condition, "--condition"))
        if args.what == "feed":
            if len(conditions) != 1:
                raise UsageError("bench feed --condition: one condition (the feed reads one at a time)")
            options["condition"] = conditions[0]
        elif args.what in ("fill", "plan"):
            options["conditions"] = conditions
        else:
            raise UsageError(f"bench {args.what}: --condition is for bench feed, fill and plan")
    if getattr(args, "segments", False):
        if args.what != "model":
            raise UsageError(f"bench {args.what}: --segments is for bench model")
        options["segments"] = True
    result = run(**options)
    print(json.dumps(result, indent=2, default=str) if args.json else show(result))
    return 0


def coded_at(cond, source_rate: int) -> str:
    """``22.05 kHz (its own)``, ``32 kHz (resampled up)``: the rate ``cond`` codes ``source_rate`` audio at."""

    if cond.is_original:
        return "-"
    rate = codec_rate(cond, source_rate)
    how = "its own" if rate == source_rate else "resampled up" if rate > source_rate else "resampled DOWN"
    return f"{rate / 1000:g} kHz ({how})"


def cmd_devices(args, where: Workspace) -> int:
    found = report()
    print(json.dumps(found.as_dict(), indent=2) if args.json else found.text())
    return 0
