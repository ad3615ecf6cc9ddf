"""``codecbench diagnose``: why a model fails under a codec (:mod:`codecbench.run.diagnose`)."""
from __future__ import annotations

import sys

from codecbench.errors import UsageError
from codecbench.run.diagnose import diagnose_split
from codecbench.run.resolve import Run, Workspace


def cmd_diagnose(args, where: Workspace) -> int:
    spec = where.spec
    if not spec.model or len(spec.model) != 1:
        raise UsageError("--model: name one model to diagnose")
    if not spec.condition or len(spec.condition) != 1:
        raise UsageError("--condition: name one coded condition to diagnose")
    diagnosis = diagnose_split(Run.resolve(where), max_clips=args.clips, n_bands=args.bands,
                               say=lambda line: print(line, file=sys.stderr))
    print(diagnosis.markdown())
    paths = diagnosis.write(spec.results)
    print(f"written: {', '.join(str(p) for p in paths.values())} (codecbench report shows it)")
    return 0
