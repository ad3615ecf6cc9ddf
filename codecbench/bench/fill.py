"""``codecbench bench fill``: what filling the cache costs per (clip, condition), beside the sum of its parts.

For every coded condition of the paper's matrix, on the same paper-size clips (10 s at 44.1 kHz), side by side in
this process:

- the parts: the codec's round trip (encode + decode) and the baseline front-end (static log-mel) done alone on the
  decoded signal, the sources already in memory;
- the fill: :func:`codecbench.store.fill.fill` of those clips under that condition with one job (this process),
  into an empty cache: reading and hashing the source, coding, decoding, featurising and the two cache writes.

The target is a fill within 1.25x of its parts. Then the whole matrix is filled with 1 job and with every core's
worker (warm: the workers are started first, and their start-up is measured apart as a fixed cost per worker), and
the speed-up is reported (target: 2 jobs >= 1.8x one job).
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
from codecbench.codecs.matrix import load_matrix
from codecbench.core.cache import Cache
from codecbench.core.parallel import stop_local_workers, usable_cores
from codecbench.core.provenance import cpu_summary, host_text
from codecbench.errors import EnvironmentProblem
from codecbench.signal.frontends import BASELINE
from codecbench.store.fill import fill

#: A fill per (clip, condition) at most this many times its parts (the codec's round trip + the front-end alone).
TARGET_FILL_OVER_PARTS = 1.25
#: Two jobs at least this many times as fast as one.
TARGET_TWO_JOBS = 1.8
#: Clips per worker at least in the speed-up's fill (one task per clip: fewer leave a worker alone at the end) ...
STEADY_CLIPS_PER_WORKER = 8
#: ... up to this many clips: the one-job fill of the whole matrix grows with them (32 clips x 9 conditions: about
#: 20 s at 0.07 core-s per pair), and on many cores (16: 2 per worker) the benchmark's time would grow with the cores
STEADY_CLIPS_AT_MOST = 32
#: The matrix whose coded conditions are measured by default (the paper's: its fine-tuning and validation ones).
PAPER_MATRIX = "peters"


def bench_fill(clips: int = 8, seconds: float = 10.0, conditions: list | None = None, jobs: int | None = None,
               repeats: int = 2, clips_per_worker: int = STEADY_CLIPS_PER_WORKER) -> dict:
    """The fill's cost per (clip, condition) against its parts, per condition, and the fill's speed-up with jobs.

    Parameters
    ----------
    clips : int
        Synthetic scenes of ``seconds`` coded under every condition.
    conditions : list of Condition, optional
        Default: the coded conditions of the paper's matrix that are available here (the others are listed).
    jobs : int, optional
        Workers of the parallel fill (default: every core).
    repeats : int
        Each in-process measurement is the best of this many passes.
    clips_per_worker : int
        The whole matrix's fills (1 job, then ``jobs``) code at least this many clips per worker (up to
        :data:`STEADY_CLIPS_AT_MOST` clips), more than ``clips`` where it takes (the parts are measured on ``clips``):
        a fill is one task per clip, and with few the last one's worker runs alone at the end, which a long fill
        does not see.
    """
    wanted = conditions or paper_coded()
    usable, unavailable = [], {}
    for cond in wanted:
        ok, why = codecs.availability(cond)
        if ok:
            usable.append(cond)
        else:
            unavailable[cond.name] = why
    if not usable:
        raise EnvironmentProblem("bench fill: none of the conditions can be coded here: "
                                 + "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    cores = usable_cores()
    jobs = max(1, min(jobs or cores, cores))
    sr = 44100
    result: dict = {"cores": cores, "host": cpu_summary(), "jobs": jobs, "clips": clips, "clip_seconds": seconds,
                    "sample_rate": sr, "unavailable": unavailable, "conditions": {}, "targets": {}}
    # the speed-up and the steady state on enough clips that each worker takes several (a fill is one task per
    # clip): with 8 clips on 2 workers the last clip's worker ran alone at the end, 1.75-1.81x where 16 gave 1.88x
    scale_clips = max(clips, min(clips_per_worker * jobs, STEADY_CLIPS_AT_MOST))
    remove_abandoned()
    check_space(scale_clips * (len(usable) + 1), seconds, sr, "bench fill")
    with tempfile.TemporaryDirectory(prefix=FOLDER_PREFIX) as tmp, terminated_as_exit():
        (Path(tmp) / ".pid").write_text(str(os.getpid()))
        every = [str(Path(tmp) / f"clip{i:04d}.wav") for i in range(scale_clips)]
        write_clips(every, seconds, sr, cores)
        paths = every[:clips]
        sources = [sf.read(p, dtype="float32")[0] for p in paths]
        fresh = _fresh_caches(Path(tmp))
        for cond in usable:
            parts = _parts(sources, sr, cond, repeats)
            fill_s = _best(lambda: _fill(paths, [cond], Cache(next(fresh)), jobs=1), repeats) / clips
            result["conditions"][cond.name] = {**parts, "fill_s": fill_s, "fill_over_parts": fill_s / parts["parts_s"]}
        one = _best(lambda: _fill(every, usable, Cache(next(fresh)), jobs=1), 1)
        startup = worker_startup(every, usable, Path(tmp), jobs)
        many = _best(lambda: _fill(every, usable, Cache(next(fresh)), jobs=jobs), 1)
    pairs = scale_clips * len(usable)
    result.update(pairs=pairs, scale_clips=scale_clips, one_job_s=one, jobs_s=many, speedup=one / many,
                  steady_core_s_per_pair=many * jobs / pairs, one_job_core_s_per_pair=one / pairs,
                  worker_startup_s=startup)
    result["targets"] = {f"fill<={TARGET_FILL_OVER_PARTS:g}x parts ({name})": row["fill_over_parts"]
                         <= TARGET_FILL_OVER_PARTS for name, row in result["conditions"].items()}
    if jobs >= 2:
        result["targets"][f"{jobs} jobs>={TARGET_TWO_JOBS * jobs / 2:g}x one job"] = \
            result["speedup"] >= TARGET_TWO_JOBS * jobs / 2
    return result


def paper_coded() -> list:
    """The coded conditions of the paper's matrix, fine-tuning ones first (AAC 32, HE-AAC 16/32, MP3 64), then the
    validation ones."""
    matrix = load_matrix(PAPER_MATRIX)
    return [c for c in dict.fromkeys([*matrix.finetune, *matrix.validation]) if not c.is_original]


def _fresh_caches(root: Path):
    n = 0
    while True:
        n += 1
        yield root / f"cache{n}"


def _fill(paths, conds, cache, *, jobs: int) -> None:
    fill(paths, conds, cache, with_features=True, jobs=jobs, progress=False)


def _best(func, repeats: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def _parts(sources: list[np.ndarray], sr: int, cond, repeats: int) -> dict:
    """Seconds per clip of the codec's round trip and of the baseline front-end alone, on sources in memory."""

    decoded = [codecs.decode(codecs.encode(x, sr, cond)) for x in sources]  # also the warm-up
    BASELINE.stored(decoded[0], sr)  # the front-end's first call (imports, filters) is start-up, not a rate
    encode_s = _best(lambda: [codecs.encode(x, sr, cond) for x in sources], repeats) / len(sources)
    bitstreams = [codecs.encode(x, sr, cond) for x in sources]
    decode_s = _best(lambda: [codecs.decode(b) for b in bitstreams], repeats) / len(sources)
    frontend_s = _best(lambda: [BASELINE.stored(y, sr) for y in decoded], repeats) / len(sources)
    return {"encode_s": encode_s, "decode_s": decode_s, "frontend_s": frontend_s,
            "parts_s": encode_s + decode_s + frontend_s}


def worker_startup(paths, conds, root: Path, jobs: int) -> float:
    """Seconds a fresh fill worker takes before its first clip (process start, imports, codec libraries), measured
    as the cold fill of one clip per worker less the same fill with those workers warm; the workers stay warm.
    Caches are made under ``root``."""
    first = [paths[i % len(paths)] for i in range(jobs)]
    stop_local_workers()
    start = time.perf_counter()
    _fill(first, conds[:1], Cache(root / "startup-cold"), jobs=jobs)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    _fill(first, conds[:1], Cache(root / "startup-warm"), jobs=jobs)
    return max(0.0, cold - (time.perf_counter() - start))


def format_fill_bench(result: dict) -> str:
    lines = [f"filling the cache: {result['clips']} clips of {result['clip_seconds']:g} s at "
             f"{result['sample_rate'] / 1000:g} kHz, per (clip, condition), in one process (best of passes)"
             + (f", on {host_text(result['host'])}" if result.get("host") else ""),
             f"  {'condition':<10} {'encode':>8} {'decode':>8} {'log-mel':>8} {'parts':>8} {'fill':>8}  fill/parts"]
    for name, row in result["conditions"].items():
        lines.append(f"  {name:<10} " + " ".join(f"{row[k] * 1000:6.0f}ms" for k in
                                                ("encode_s", "decode_s", "frontend_s", "parts_s", "fill_s"))
                     + f"  {row['fill_over_parts']:.2f}x")
    for name, why in result["unavailable"].items():
        lines.append(f"  {name:<10} unavailable here: {why}")
    lines.append(f"every condition, {result['pairs']} pairs ({result['scale_clips']} clips): 1 job "
                 f"{result['one_job_s']:.1f} s, {result['jobs']} jobs "
                 f"{result['jobs_s']:.1f} s (warm workers) = {result['speedup']:.2f}x")
    lines.append(f"steady state: {result['steady_core_s_per_pair']:.3f} core-s per pair with {result['jobs']} jobs "
                 f"({result['one_job_core_s_per_pair']:.3f} with one); start-up {result['worker_startup_s']:.1f} s "
                 "per worker, once")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)

