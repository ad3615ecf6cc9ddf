"""``codecbench diagnose``: why a model fails under a codec (:mod:`codecbench.run.diagnose`)."""
from __future__ import annotations

import sys

from codecbench.errors import UsageError
from codecbench.run.diagnose import diagnose_split
from codecbench.run.resolve import Workspace
from codecbench.run.spec import RunSpec


def cmd_diagnose(args, spec: RunSpec) -> int:
    if not spec.model or len(spec.model) != 1:
        raise UsageError("--model: name one model to diagnose")
    if not spec.condition or len(spec.condition) != 1:
        raise UsageError("--condition: name one coded condition to diagnose")
    diagnosis = diagnose_split(Workspace(spec), spec.model[0], spec.condition[0], max_clips=args.clips,
                               n_bands=args.bands, say=lambda line: print(line, file=sys.stderr))
    print(diagnosis.markdown())
    paths = diagnosis.write(spec.results)
    print(f"written: {', '.join(str(p) for p in paths.values())} (codecbench report shows it)")
    return 0
