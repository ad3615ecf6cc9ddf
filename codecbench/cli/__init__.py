"""The ``codecbench`` command: a thin layer of argument parsing over the library.

Settings shared with the pytest plugin come from :mod:`codecbench.run.spec` (one table of options,
validated once into a :class:`~codecbench.run.spec.RunSpec`). :func:`main` is the composition root: it builds one
:class:`~codecbench.run.resolve.Workspace` and hands it to the command, which parses its own options and prints;
Keras is imported only by the commands that need a model.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from codecbench.cli.data_commands import (
    cmd_bench,
    cmd_cache,
    cmd_conditions,
    cmd_dataset,
    cmd_devices,
    cmd_encode,
    cmd_export,
)
from codecbench.cli.diagnose_command import cmd_diagnose
from codecbench.cli.model_commands import (
    cmd_consistency,
    cmd_finetune,
    cmd_import_model,
    cmd_postfilter,
    cmd_segments,
    cmd_train,
    cmd_zoo,
)
from codecbench.cli.parser import build_parser
from codecbench.cli.reproduce_command import cmd_reproduce
from codecbench.cli.result_commands import (
    cmd_compare,
    cmd_history,
    cmd_leaderboard,
    cmd_report,
    cmd_submit,
    cmd_thresholds,
)
from codecbench.core.cache import default_cache_dir
from codecbench.core.fsutil import check_writable
from codecbench.errors import CodecbenchError, message
from codecbench.run.resolve import Workspace
from codecbench.run.spec import OPTIONS, RunSpec
from codecbench.zoo import user_model_dir

__all__ = ["COMMANDS", "build_parser", "main"]


def _spec(args) -> RunSpec:
    flags = {"run_id": "--run"} if args.command == "report" else None
    return RunSpec.build({name: getattr(args, name, None) for name in OPTIONS}, flags=flags)


COMMANDS = {"report": cmd_report, "history": cmd_history, "compare": cmd_compare, "thresholds": cmd_thresholds,
            "conditions": cmd_conditions, "encode": cmd_encode,
            "cache": cmd_cache, "bench": cmd_bench, "segments": cmd_segments, "import-model": cmd_import_model,
            "train": cmd_train, "finetune": cmd_finetune, "zoo": cmd_zoo, "postfilter": cmd_postfilter,
            "leaderboard": cmd_leaderboard, "submit": cmd_submit, "dataset": cmd_dataset, "reproduce": cmd_reproduce,
            "export": cmd_export, "devices": cmd_devices, "diagnose": cmd_diagnose,
            "consistency": cmd_consistency}


def _results_folder(spec: RunSpec) -> Path:
    return spec.results if spec.results.suffix != ".json" else spec.results.parent


def written_folders(args, where: Workspace) -> list[tuple[str, Path]]:
    """The folders a command will write, as ``(option, folder)``: checked before any work (:func:`main`)."""
    command, get, spec = args.command, (lambda name: getattr(args, name, None)), where.spec
    cache = ("--cache-dir", spec.cache_dir or default_cache_dir())
    models = ("--model-dir", spec.model_dir or user_model_dir())
    out = get("out")
    if command == "encode" and not get("dry_run"):
        return [cache]
    if command == "export":
        return [("--to", Path(args.to)), cache]
    if command == "dataset" and get("action") == "download":
        return [("--to", Path(args.to))]
    if command == "report":
        return [("--out", Path(out) if out else _results_folder(spec))] + \
            ([("--comment", Path(args.comment).parent)] if get("comment") else [])
    if command == "leaderboard":
        if get("add"):
            return [("--board", Path(args.board)), ("--out", Path(out) if out else Path(args.board) / "site")]
        return [("--out", Path(out) if out else _results_folder(spec) / "leaderboard")]
    if command == "submit":
        return [("--out", (Path(out) if out else Path(f"{args.model}.submission.json")).parent)]
    if command == "history" and get("action") == "rebuild":
        return [("--results", _results_folder(spec))]
    if command == "diagnose":
        return [("--results", spec.results), cache]
    if command == "import-model":
        return [models]
    if command in ("train", "finetune", "consistency") or (command == "postfilter" and get("action") == "train"):
        return [] if get("dry_run") else [models, cache]
    if command == "reproduce" and not get("dry_run"):
        return [("--out", Path(out or f"reproduce-{args.paper}")), cache]
    return []


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        # the composition root: one workspace per command, built here from the validated options and handed to it
        where = Workspace(_spec(args), log=lambda line: print(line, file=sys.stderr))
        # one writability check for every command that writes, before any work (a read-only target ended in an
        # OSError traceback, for reproduce after loading the data)
        for option, folder in written_folders(args, where):
            check_writable(folder, option)
        return COMMANDS[args.command](args, where)
    except CodecbenchError as exc:
        if args.verbose:
            raise
        print(f"codecbench {args.command}: error: {message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything finished so far is kept in the cache", file=sys.stderr)
        return 130
