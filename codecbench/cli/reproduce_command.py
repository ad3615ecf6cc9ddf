"""``codecbench reproduce PAPER``: a study end to end, resumable (:mod:`codecbench.reproduce`)."""
from __future__ import annotations

from pathlib import Path

from codecbench.errors import UsageError
from codecbench.run.resolve import Workspace


def _numbers(text: str | None, option: str) -> tuple[int, ...] | None:
    """``"1,10,20,40"`` or ``"1-10"`` -> a tuple of positive whole numbers; the option is named on bad input."""
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, _, high = part.partition("-")
            out += range(int(low), int(high or low) + 1)
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise UsageError(f"{option}: expected positive whole numbers such as 1,10,20,40 or 1-10; got {text!r}")
    return tuple(sorted(set(out)))


def cmd_reproduce(args, where: Workspace) -> int:
    from codecbench.cli.parser import validation_conditions
    from codecbench.reproduce import ReproduceOptions, reproduce

    spec = where.spec
    validate = validation_conditions(args.validate)
    segment_epochs = _numbers(args.segment_epochs, "--segment-epochs")
    options = ReproduceOptions(
        paper=args.paper, data=args.data, out=Path(args.out or f"reproduce-{args.paper}"),
        checkpoint=Path(args.checkpoint).expanduser() if args.checkpoint else None, preset=args.preset,
        full_epochs=_numbers(args.full_epochs, "--full-epochs"), segments=_numbers(args.segments, "--segments"),
        segment_epochs=segment_epochs[-1] if segment_epochs else None, validate=validate, folds=spec.folds,
        code_ahead=args.code_ahead, dry_run=args.dry_run,
        force=args.force)
    if options.segments and max(options.segments) > 10:
        raise UsageError(f"--segments: the FCNN has segments 1-10; got {args.segments!r}")
    report = reproduce(where, options, say=lambda line: print(line, flush=True))
    if report is not None:
        print(f"done: {report}")
    return 0
