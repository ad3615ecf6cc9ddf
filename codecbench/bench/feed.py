"""``codecbench bench feed``: how many paper-size clips per second the host can feed a model, per core.

The input pipeline alone, from a warm cache, no model: paper-size clips (10 s at 44.1 kHz) coded under one condition,
then read back as the model would get them:

- ``features``: the cached static log-mel entry read, checked and finished with the deltas (what a host-side
  front-end model is fed, (128, 423, 3) float32);
- ``waveforms``: the cached bitstream decoded to 44.1-kHz float32 (what a model with its front-end on the device is
  fed; :mod:`codecbench.models.frontend_layer`).

The fill that codes them is timed with warm workers (its start-up measured apart: a fixed cost per worker), and the
decoder alone on the same bitstreams gives the bound of the waveform feed per core: in one process on an otherwise
idle machine, and in one process per core with every core decoding (the conditions the feed's figure is taken in).
Each is read in this process (one thread, as on a CPU-only machine) and through
:class:`codecbench.store.feed.ProcessFeed` with 1, 2 and all cores' worker processes, the batches stacked in this
process as the evaluator stacks them. The figure that carries over is clips/s per core with every core working; the
target is 200 (16 cores: about 3,200 clips/s, what an H200-class GPU infers with the paper FCNN).
"""
from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from codecbench import codecs
from codecbench.bench.fill import STEADY_CLIPS_PER_WORKER, worker_startup
from codecbench.bench.scratch import FOLDER_PREFIX, check_space, remove_abandoned, terminated_as_exit, write_clips
from codecbench.codecs import ORIGINAL, Condition, availability
from codecbench.core.cache import Cache
from codecbench.core.parallel import parallel_map, usable_cores
from codecbench.core.provenance import cpu_summary, host_text
from codecbench.errors import EnvironmentProblem
from codecbench.signal.frontends import BASELINE, FrontEnd
from codecbench.store.feed import ProcessFeed
from codecbench.store.fill import clip_key, fill, load_bitstream
from codecbench.store.inputs import input_reader

#: clips/s per core with every core working that keeps a fast accelerator busy (see the module docstring)
TARGET_PER_CORE = 200.0


def bench_feed(clips: int = 32, condition=None, seconds: float = 10.0, rounds: int = 3,
               workers: list[int] | None = None) -> dict:
    """Clips/s of the feed for ``features`` and ``waveforms``, in process and with each worker count (default 1, 2
    and all cores), on ``clips`` synthetic clips of ``seconds`` coded under ``condition``; each measurement reads
    every clip ``rounds`` times in batches of 32 (the best of two passes is kept). ``condition``: a
    :class:`~codecbench.codecs.Condition` (default mp3@64)."""

    cond = condition or Condition("mp3", 64)
    ok, why = availability(cond)
    if not ok:
        raise EnvironmentProblem(f"bench feed: {cond.name} is unavailable here: {why}")
    cores = usable_cores()
    counts = sorted({n for n in (workers or [1, 2, cores]) if 1 <= n <= max(cores, 1)})
    sr = 44100
    result: dict = {"cores": cores, "host": cpu_summary(), "clips": clips, "clip_seconds": seconds,
                    "sample_rate": sr, "condition": cond.name, "rounds": rounds, "modes": {},
                    "target_per_core": TARGET_PER_CORE}
    remove_abandoned()
    # the fills (the rates a plan reads) code several clips per worker: a fill is one task per clip, and with few the
    # last clip's worker runs alone at the end (64 clips on 16 cores: 4 each), which a long fill does not see
    filled = max(clips, STEADY_CLIPS_PER_WORKER * cores)
    check_space(filled, seconds, sr)
    with tempfile.TemporaryDirectory(prefix=FOLDER_PREFIX) as tmp, terminated_as_exit():
        (Path(tmp) / ".pid").write_text(str(os.getpid()))  # whose it is: a run killed outright leaves it behind
        every = [str(Path(tmp) / f"clip{i:04d}.wav") for i in range(filled)]
        write_clips(every, seconds, sr, cores)
        paths = every[:clips]
        cache = Cache(Path(tmp) / "cache")
        # start-up apart: a fresh worker's imports and codec libraries are a fixed cost, once per worker, not a rate
        result["worker_startup_s"] = worker_startup(paths, [cond], Path(tmp), cores)
        start = time.perf_counter()
        fill(every, [cond], cache, with_features=True, jobs=cores, progress=False)  # the workers are warm
        result["fill_seconds"] = time.perf_counter() - start
        result["fill_clips"] = filled
        result["fill_clips_per_s_per_core"] = filled / result["fill_seconds"] / cores
        # the original's pairs (features only: read, hash, log-mel, write), priced apart: at the coded rate a plan
        # charged the paper's fine-tuning set's 13,965 original pairs an encode and a decode each
        start = time.perf_counter()
        fill(every, [ORIGINAL], cache, with_features=True, jobs=cores, progress=False)
        result["fill_original_clips_per_s_per_core"] = filled / (time.perf_counter() - start) / cores
        result["decoder_alone_clips_per_s"] = _decoder_alone(paths, cond, cache)
        result["decoder_every_core_clips_per_s_per_core"] = _decoder_every_core(paths, cond, cache, cores)
        readers = {"features": input_reader(paths, cond, cache, frontend=BASELINE, jobs=1, progress=False)[0],
                   "waveforms": input_reader(paths, cond, cache, frontend=FrontEnd("waveform", sr), jobs=1,
                                             progress=False)[0]}
        order = [i % clips for i in range(clips * rounds)]
        batches = [order[i:i + 32] for i in range(0, len(order), 32)]
        for mode, reader in readers.items():
            shape = reader([0]).shape[1:]
            row: dict = {"input_shape": list(shape), "mb_per_clip": float(np.prod(shape)) * 4 / 1e6,
                         "in_process": _rate(reader, batches), "workers": {}}
            for n in counts:
                feed = ProcessFeed(reader, workers=n)
                feed.warm_up()
                row["workers"][n] = _rate_parallel(feed, batches, n)
            best = row["workers"][counts[-1]]
            row["per_core_all_cores"] = best / counts[-1]
            row["per_worker"] = {n: r / n for n, r in row["workers"].items()}
            result["modes"][mode] = row
    # what a plan prices the feed with (codecbench.run.rates.Rates)
    result["feed_clips_per_s_per_worker"] = {mode: row["per_core_all_cores"] for mode, row in result["modes"].items()}
    result["targets"] = {f"{mode}_per_core>={TARGET_PER_CORE:g}": row["per_core_all_cores"] >= TARGET_PER_CORE
                         for mode, row in result["modes"].items()}
    waveforms = result["modes"]["waveforms"]["per_core_all_cores"]
    result["waveforms_over_decoder"] = waveforms / result["decoder_alone_clips_per_s"]
    result["waveforms_over_decoder_every_core"] = waveforms / result["decoder_every_core_clips_per_s_per_core"]
    result["targets"][f"waveforms_per_core>={TARGET_OF_DECODER:g}x decoder alone"] = \
        result["waveforms_over_decoder"] >= TARGET_OF_DECODER
    result["targets"][f"waveforms_per_core>={TARGET_OF_DECODER:g}x decoder on every core"] = \
        result["waveforms_over_decoder_every_core"] >= TARGET_OF_DECODER
    return result


#: The waveform feed per core, every core working, at least this share of the decoder alone in one process.
TARGET_OF_DECODER = 0.8


def _decoder_alone(paths, cond, cache) -> float:
    """Clips/s of the codec's decoder alone on the cached bitstreams, in this process, the bitstreams in memory
    (the bound a waveform feed can reach per core)."""
    return float("nan") if cond.is_original else _decode_rate(_decode_task(paths, cond, cache))


def _decoder_every_core(paths, cond, cache, cores: int) -> float:
    """Clips/s per core of the decoder alone with every core decoding (one process per core, the bitstreams in
    memory): the same bound as :func:`_decoder_alone`, measured as the feed is, with every core working (cores that
    share caches, memory bandwidth or a physical core slow each other down, decoder or feed alike)."""

    if cond.is_original:
        return float("nan")
    rates = list(parallel_map(_decode_rate, [_decode_task(paths, cond, cache)] * cores, jobs=cores))
    return float(np.mean(rates))


def _decode_task(paths, cond, cache) -> tuple:
    return str(cache.root), [clip_key(p, cond) for p in paths], cond


def _decode_rate(task) -> float:
    """Clips/s decoding the cached bitstreams of ``(cache root, keys, condition)``, read into memory first (best of
    three passes, so that workers running it side by side overlap); NaN if one is missing."""

    root, keys, cond = task
    cache = Cache(root)
    loaded = [load_bitstream(cache, key, cond) for key in keys]
    bitstreams = [b for b in loaded if b is not None]
    if len(bitstreams) < len(keys):
        return float("nan")
    return len(bitstreams) / min(_seconds(lambda: [codecs.decode(b) for b in bitstreams]) for _ in range(3))


def _seconds(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _rate(reader, batches) -> float:
    """Clips/s reading ``batches`` one after another in this process (best of two passes)."""
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for b in batches:
            reader(b)
        best = min(best, time.perf_counter() - start)
    return sum(len(b) for b in batches) / best


def _rate_parallel(feed, batches, workers: int) -> float:
    """Clips/s with ``workers`` batches in flight (as the evaluator's and the trainer's reader threads keep them)."""

    best = float("inf")
    with ThreadPoolExecutor(max_workers=max(2, min(8, workers))) as threads:
        for _ in range(2):
            start = time.perf_counter()
            list(threads.map(feed, batches))
            best = min(best, time.perf_counter() - start)
    return sum(len(b) for b in batches) / best


def format_feed_bench(result: dict) -> str:
    lines = [f"input feed from a warm cache: {result['clips']} clips of {result['clip_seconds']:g} s at "
             f"{result['sample_rate'] / 1000:g} kHz under {result['condition']}, {result['cores']} cores"
             + (f" of {host_text(result['host'])}" if result.get("host") else ""),
             f"  coding + features (the fill, warm workers): {result['fill_clips_per_s_per_core']:.2f} clips/s per "
             f"core; start-up {result['worker_startup_s']:.1f} s per worker, once",
             "  features alone (the original's fill, warm workers): "
             f"{result['fill_original_clips_per_s_per_core']:.2f} clips/s per core",
             f"  the decoder alone, one process, bitstreams in memory: {result['decoder_alone_clips_per_s']:.1f} "
             "clips/s",
             "  the decoder alone, one process per core, every core decoding: "
             f"{result['decoder_every_core_clips_per_s_per_core']:.1f} clips/s per core"]
    for mode, row in result["modes"].items():
        lines.append(f"  {mode} ({' x '.join(str(n) for n in row['input_shape'])} float32, "
                     f"{row['mb_per_clip']:.2f} MB/clip):")
        lines.append(f"    in this process (1 thread): {row['in_process']:8.1f} clips/s")
        for n, rate in row["workers"].items():
            lines.append(f"    {n:>3} worker process(es):      {rate:8.1f} clips/s  = {rate / int(n):7.1f} per worker")
        lines.append(f"    per core, all cores working: {row['per_core_all_cores']:.1f} clips/s "
                     f"(target {result['target_per_core']:g})"
                     + (f" = {result['waveforms_over_decoder']:.2f}x the decoder alone, "
                        f"{result['waveforms_over_decoder_every_core']:.2f}x the decoder on every core"
                        if mode == "waveforms" else ""))
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)
