"""Commands over results: ``report``, ``compare``, ``thresholds``, ``history``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tabulate import tabulate

from codecbench.core.fsutil import atomic_write
from codecbench.errors import UsageError
from codecbench.results.thresholds import thresholds_from_results
from codecbench.run.resolve import Workspace
from codecbench.zoo import check_name


def cmd_report(args, where: Workspace) -> int:
    from codecbench.report import FORMATS, render

    spec = where.spec
    formats = ["html"] if args.html else [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise UsageError(f"--format: unknown {', '.join(unknown) or 'empty'}; expected some of {', '.join(FORMATS)}")
    results = spec.results
    out = Path(args.out) if args.out else (results if results.suffix != ".json" else results.parent)
    markdown, written = render(results, out, formats, models=list(spec.model) if spec.model else None,
                               baseline=spec.baseline, alpha=spec.alpha, run_id=args.run_id,
                               baseline_max_changed=spec.baseline_max_changed, paper=args.paper,
                               reference=check_name(args.reference))
    if args.comment:
        from codecbench.report.ranking import comment_markdown

        atomic_write(Path(args.comment), comment_markdown(markdown))
        written.append(Path(args.comment))
    if args.markdown:  # for a pipe: the whole report
        print(markdown)
    else:
        print(report_summary(markdown, written))
    return 0


def report_summary(markdown: str, written: list[Path]) -> str:
    """What ``codecbench report`` prints: the report's title and run, then the files written by kind (the HTML page
    as an address to open)."""
    lines = markdown.splitlines()
    title = lines[0].lstrip("# ") if lines else "codecbench report"
    run = next((line.split(". ")[0] + "." for line in lines[1:] if line.startswith("Run ")), "")
    kinds = {".md": "report", ".csv": "tables (CSV)", ".png": "figures", ".svg": "figures"}
    groups: dict[str, list[str]] = {}
    page = None
    for path in written:
        if path.suffix == ".html":
            page = path
        else:
            groups.setdefault(kinds.get(path.suffix, "files"), []).append(str(path))
    out = [title] + ([run] if run else [])
    out += [f"  {kind:<13} {', '.join(paths)}" for kind, paths in groups.items()]
    if page is not None:
        out.append(f"  {'HTML':<13} {page.resolve().as_uri()}")
    return "\n".join(out)


def cmd_submit(args, where: Workspace) -> int:
    from codecbench.results.files import load_results
    from codecbench.results.submission import make_submission, write_submission

    spec = where.spec
    model = check_name(args.model)
    out = Path(args.out) if args.out else Path(f"{model}.submission.json")
    submission = make_submission(load_results(spec.results), model, training_data=args.training_data,
                                 licence=args.licence, source=str(spec.results))
    write_submission(out, submission)
    conditions = len(submission["results"])
    print(f"{out}: {model} on {conditions} conditions, {len(submission['dataset']['clip_digests'])} clips of "
          f"{submission['dataset']['name']} ({submission['dataset']['split']} split); add it to a board with "
          f"codecbench leaderboard --add {out} --board BOARD")
    return 0


def cmd_leaderboard(args, where: Workspace) -> int:
    spec = where.spec
    if args.add:
        return _add_to_board(args)
    from codecbench.report.html import render_leaderboard
    from codecbench.results.files import leaderboard_documents

    sources = [Path(s) for s in args.sources] or [spec.results]
    documents = leaderboard_documents(sources)
    default = spec.results if spec.results.suffix != ".json" else spec.results.parent
    page = render_leaderboard(documents, Path(args.out) if args.out else default / "leaderboard")
    print(f"{len(documents)} dataset/matrix groups from {', '.join(str(s) for s in sources)}", file=sys.stderr)
    print(f"open the leaderboard: {page.resolve().as_uri()}", file=sys.stderr)
    return 0


def cmd_compare(args, where: Workspace) -> int:
    from codecbench.results.compare import compare_runs
    from codecbench.results.files import load_results

    found = compare_runs(load_results(args.reference), load_results(args.candidate), match_by=args.match_by)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        rows = [[r["model"], r["condition"], f"{r['reference']:.3f}", f"{r['candidate']:.3f}",
                 f"{r['identical']}/{r['paired']}", f"{r['p_value']:.3g}"] for r in found["cells"]]
        print(tabulate(rows, headers=["model", "condition", "reference", "candidate", "identical predictions",
                                      "McNemar p"], tablefmt="github", disable_numparse=True))
        print(f"{len(found['cells'])} (model, condition) cells: {found['same_accuracy']} with identical accuracy; "
              f"{found['identical']} of {found['paired']} paired clips with identical predictions; lowest agreement "
              f"in a cell {found['min_agreement']:.1%}; every accuracy inside the reference's Wilson interval: "
              f"{'yes' if found['all_inside_reference_ci'] else 'NO'}")
    if args.min_agreement is not None:
        short = [r for r in found["cells"] if r["agreement"] < args.min_agreement or not r["inside_reference_ci"]]
        if short:
            print(f"{len(short)} cell(s) below --min-agreement {args.min_agreement} or outside the reference's "
                  "interval: " + ", ".join(f"{r['model']} on {r['condition']}" for r in short[:8]), file=sys.stderr)
            return 1
    return 0


def cmd_thresholds(args, where: Workspace) -> int:
    from codecbench.results.files import load_results

    spec = where.spec
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


def cmd_history(args, where: Workspace) -> int:
    from codecbench.results.files import check_history, rebuild_history

    spec = where.spec
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


def _add_to_board(args) -> int:
    from codecbench.report.board import render_board
    from codecbench.results.submission import Board

    if args.sources:
        raise UsageError("leaderboard --add takes submission files, not results folders: "
                         f"{', '.join(args.sources)}")
    board = Board(args.board)
    added = board.add(args.add, replace=args.replace)
    site = render_board(board, Path(args.out) if args.out else board.root / "site")
    held = len(list(board.folder.glob("*.json")))
    print(f"board {board.root}: added {', '.join(added)}; {held} models", file=sys.stderr)
    print(f"open the board: {site.resolve().as_uri()}", file=sys.stderr)
    return 0
