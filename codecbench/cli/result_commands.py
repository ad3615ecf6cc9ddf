"""Commands over results: ``report``, ``compare``, ``thresholds``, ``history``."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from ..spec import RunSpec


def cmd_report(args, spec: RunSpec) -> int:
    from ..report import FORMATS, render

    formats = ["html"] if args.html else [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise UsageError(f"--format: unknown {', '.join(unknown) or 'empty'}; expected some of {', '.join(FORMATS)}")
    results = spec.results
    out = Path(args.out) if args.out else (results if results.suffix != ".json" else results.parent)
    markdown, written = render(results, out, formats, models=list(spec.model) if spec.model else None,
                               baseline=spec.baseline, alpha=spec.alpha, run_id=args.run_id,
                               baseline_max_changed=spec.baseline_max_changed, paper=args.paper)
    if not args.html:
        print(markdown)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    page = next((p for p in written if p.suffix == ".html"), None)
    if page is not None:
        print(f"open the HTML report: {page.resolve().as_uri()}", file=sys.stderr)
    return 0


def cmd_leaderboard(args, spec: RunSpec) -> int:
    from ..report.html import render_leaderboard
    from ..results import leaderboard_documents

    sources = [Path(s) for s in args.sources] or [spec.results]
    documents = leaderboard_documents(sources)
    default = spec.results if spec.results.suffix != ".json" else spec.results.parent
    page = render_leaderboard(documents, Path(args.out) if args.out else default / "leaderboard")
    print(f"{len(documents)} dataset/matrix groups from {', '.join(str(s) for s in sources)}", file=sys.stderr)
    print(f"open the leaderboard: {page.resolve().as_uri()}", file=sys.stderr)
    return 0


def cmd_compare(args, spec: RunSpec) -> int:
    from tabulate import tabulate

    from ..results import load_results
    from ..stats import paired_comparison
    from ..zoo import sort_key

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
    from ..fsutil import atomic_write
    from ..results import load_results
    from ..thresholds import thresholds_from_results

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
    from ..results import check_history, rebuild_history

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
