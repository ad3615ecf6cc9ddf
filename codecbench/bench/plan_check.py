"""``codecbench bench plan``: a plan's fill time checked against the fill it plans.

``N`` paper-size clips (10 s at 44.1 kHz: synthetic scenes, and shifted copies of them) are written, the fill of them
under the conditions is planned as ``encode --dry-run`` plans it (:func:`codecbench.run.plan.fill_stage`: the short
calibration on this machine, with the workers' start-up once) and then run with every core; the plan's seconds and
the measured ones are printed side by side. On a quiet machine they agree within 15 % (target) at ``--clips 1000``.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from codecbench import codecs
from codecbench.bench.scratch import FOLDER_PREFIX, check_space, remove_abandoned, terminated_as_exit, write_clips
from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.core.parallel import stop_local_workers, usable_cores
from codecbench.errors import EnvironmentProblem
from codecbench.run.plan import fill_stage, new_plan, plan_fill
from codecbench.store.fill import fill

#: |measured / planned - 1| at most this.
TARGET_AGREEMENT = 0.15


def bench_plan(clips: int = 100, conditions: list | None = None, seconds: float = 10.0) -> dict:
    """Plan the fill of ``clips`` synthetic clips of ``seconds`` under ``conditions`` (default mp3@64) with every
    core, run it, and return both times."""

    conds = conditions or [Condition("mp3", 64)]
    for cond in conds:
        ok, why = codecs.availability(cond)
        if not ok:
            raise EnvironmentProblem(f"bench plan: {cond.name} is unavailable here: {why}")
    cores, sr = usable_cores(), 44100
    remove_abandoned()
    check_space(clips * (len(conds) + 1), seconds, sr, "bench plan")
    with tempfile.TemporaryDirectory(prefix=FOLDER_PREFIX) as tmp, terminated_as_exit():
        (Path(tmp) / ".pid").write_text(str(os.getpid()))
        paths = [str(Path(tmp) / f"clip{i:05d}.wav") for i in range(clips)]
        _write_clips(paths, seconds, sr, cores)
        cache = Cache(Path(tmp) / "cache")
        start = time.perf_counter()
        plan = plan_fill(new_plan("bench plan", paths, conds, cache), paths, conds, cache, with_features=True)
        stages = fill_stage(plan, seconds, cores, None)
        planning = time.perf_counter() - start
        stop_local_workers()  # the fill starts its workers, as a real run does: their start-up is planned
        start = time.perf_counter()
        fill(paths, conds, cache, with_features=True, jobs=cores, progress=False)
        measured = time.perf_counter() - start
    planned = sum(s.seconds for s in stages)
    return {"clips": clips, "clip_seconds": seconds, "conditions": [c.name for c in conds], "cores": cores,
            "stages": [{"name": s.name, "work": s.work, "seconds": s.seconds} for s in stages],
            "planning_s": planning, "planned_s": planned, "measured_s": measured,
            "measured_over_planned": measured / planned if planned else float("nan"),
            "targets": {f"within {TARGET_AGREEMENT:.0%}": abs(measured / planned - 1) <= TARGET_AGREEMENT
                        if planned else False}}


#: Scenes synthesised for a plan check; the other clips are shifted, scaled copies of them (a 10-s scene takes
#: about 1.7 s to make on one core, longer than coding it).
DISTINCT_SCENES = 32


def _write_clips(paths: list[str], seconds: float, sr: int, cores: int) -> None:
    """Write the clips: :data:`DISTINCT_SCENES` synthetic scenes, then each other clip a circular shift of one of
    them at a slightly lower level, so every clip has its own bytes (its own cache keys) and real content to code."""
    distinct = paths[:DISTINCT_SCENES]
    write_clips(distinct, seconds, sr, cores)
    scenes = [sf.read(p, dtype="float32")[0] for p in distinct]
    for i, path in enumerate(paths[len(distinct):], start=len(distinct)):
        scene = scenes[i % len(scenes)]
        shifted = np.roll(scene, (i * 9973) % len(scene)) * (1.0 - 0.0004 * (i // len(scenes)))
        sf.write(path, shifted, sr, subtype="PCM_16")


def format_plan_bench(result: dict) -> str:
    lines = [f"a fill planned, then run: {result['clips']:,} clips of {result['clip_seconds']:g} s under "
             f"{', '.join(result['conditions'])}, {result['cores']} cores (planning took {result['planning_s']:.1f} s)"]
    lines += [f"  planned {s['name']:<18} {s['seconds']:8.1f} s  ({s['work']})" for s in result["stages"]]
    lines.append(f"  planned {'in all':<18} {result['planned_s']:8.1f} s")
    lines.append(f"  measured{'':<19} {result['measured_s']:8.1f} s  = {result['measured_over_planned']:.2f}x the plan")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)
