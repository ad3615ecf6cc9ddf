"""``codecbench bench scale``: the paper's evaluation extrapolated from measured rates."""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tabulate import tabulate

from codecbench import codecs
from codecbench.bench.timing import PAPER_COUNTS, devices
from codecbench.codecs.matrix import load_matrix
from codecbench.core.cache import Cache
from codecbench.core.parallel import usable_cores
from codecbench.datasets import synth_scene
from codecbench.run.plan import PCM_CACHE_BYTES_PER_PAIR
from codecbench.run.rates import codec_seconds, feature_seconds, model_rates
from codecbench.store.fill import fill, load_bitstream


def bench_scale(clip_seconds: float = 10.0, train_batch: int = 8, clips: int = 3, memory: bool = True) -> dict:
    """Per-pair costs measured here on synthetic 10-s clips at TAU's shape, extrapolated to the paper's counts.

    ``memory``: also the evaluation's peak memory (:func:`~codecbench.bench.memory.bench_memory`, a few minutes).

    Cache bytes come from a real fill of ``clips`` clips under the paper's conditions; coding and feature times
    from one round trip per condition and one extraction (:mod:`codecbench.run.plan` calibration); fine-tuning and
    evaluation from training and inference steps of the paper FCNN on the device Keras sees.
    """
    from codecbench.models import preset_config

    matrix = load_matrix()
    train_conds = matrix.training
    eval_conds = list(matrix.validation)
    available = {c for c in set(train_conds + eval_conds) if codecs.availability(c)[0]}
    result: dict = {"clip_seconds": clip_seconds, "counts": dict(PAPER_COUNTS), "unavailable":
                    sorted(c.name for c in set(train_conds + eval_conds) - available)}
    sr = 44100
    with tempfile.TemporaryDirectory(prefix="codecbench-scale-") as tmp:
        paths = []
        for i in range(clips):
            p = Path(tmp) / f"clip{i}.wav"
            sf.write(p, synth_scene(i, np.random.default_rng(i), clip_seconds, sr), sr, subtype="PCM_24")
            paths.append(p)
        cache = Cache(Path(tmp) / "cache")
        fill(paths, sorted(available), cache, with_features=True, jobs=1, progress=False)
        coded: dict[str, list[int]] = {}
        for entry in cache.entries("coded"):
            bitstream = load_bitstream(cache, entry.stem)
            if bitstream is not None:
                coded.setdefault(bitstream.condition.name, []).append(entry.stat().st_size)
        feature_bytes = statistics.mean(e.stat().st_size for e in cache.entries("features"))
    coded_bytes = {c: statistics.mean(v) for c, v in coded.items()}
    n_train, n_eval = PAPER_COUNTS["train_clips"], PAPER_COUNTS["evaluate_clips"]
    pairs = [(c, n_train) for c in train_conds] + [(c, n_eval) for c in eval_conds]
    after = sum(n * (coded_bytes.get(c.name, 0) + feature_bytes) for c, n in pairs)
    before = sum(n * (PCM_CACHE_BYTES_PER_PAIR if not c.is_original else 128 * 423 * 3 * 4) for c, n in pairs)
    n_pairs = sum(n for _, n in pairs)
    result["cache"] = {"pairs": n_pairs, "pcm_cache_bytes": before, "after_bytes": after,
                       "after_bytes_per_pair": after / n_pairs, "feature_bytes": feature_bytes,
                       "coded_bytes": coded_bytes}
    core_seconds = sum(n * (codec_seconds(c) * clip_seconds / 10 + feature_seconds() * clip_seconds / 10)
                       for c, n in pairs if c in available)
    result["encoding"] = {"core_hours": core_seconds / 3600, "cores": usable_cores(),
                          "hours_on_all_cores": core_seconds / 3600 / usable_cores(),
                          "per_condition_s": {c.name: codec_seconds(c) for c in sorted(available)},
                          "features_s": feature_seconds()}
    frames = 1 + int(clip_seconds * sr) // 1024 - 8
    rates = model_rates(preset_config("paper", (128, frames, 3), 10), batch_size=train_batch, crop_frames=400,
                        full_frames=frames)
    examples = n_train * len(train_conds)
    result["model"] = {**rates, "train_batch": train_batch, "devices": devices()}
    result["finetuning"] = {"examples_per_epoch": examples,
                            "hours_per_epoch": examples / rates["train_examples_per_s"] / 3600}
    evaluations = PAPER_COUNTS["models"] * n_eval * len(eval_conds)
    result["evaluation"] = {"clip_evaluations": evaluations,
                            "hours": evaluations / rates["inference_clips_per_s"] / 3600}
    if memory:
        from codecbench.bench.memory import bench_memory
        result["memory"] = bench_memory(seconds=clip_seconds)
    return result


def format_scale_bench(result: dict) -> str:
    c, e, f, v = result["cache"], result["encoding"], result["finetuning"], result["evaluation"]
    gb = 1e9
    rows = [["cache for the paper's experiment", f"{c['pairs']:,} (clip, condition) pairs",
             f"{c['after_bytes'] / gb:.1f} GB ({c['after_bytes_per_pair'] / 1e6:.3f} MB per pair: bitstreams + "
             f"compact features; a cache of decoded PCM + 3-channel features would take "
             f"{c['pcm_cache_bytes'] / gb:.0f} GB)"],
            ["encoding + features", f"{e['core_hours']:.1f} core-hours",
             f"{e['hours_on_all_cores']:.1f} h on this machine's {e['cores']} cores; each extra single-core dask "
             f"worker adds "
             f"{1 / e['core_hours']:.3f} of the work per hour (N workers: {e['core_hours']:.1f} / N h)"],
            ["fine-tuning, one epoch", f"{f['examples_per_epoch']:,} examples",
             f"{f['hours_per_epoch']:.1f} h ({result['model']['train_examples_per_s']:.2f} examples/s, "
             f"{result['model']['backend']} on {', '.join(result['model']['devices']) or 'default device'})"],
            ["evaluation of the 15-model zoo", f"{v['clip_evaluations']:,} clip evaluations",
             f"{v['hours']:.1f} h ({result['model']['inference_clips_per_s']:.2f} clips/s)"]]
    out = tabulate(rows, headers=["work", "size", "on this machine"], tablefmt="github")
    if result["unavailable"]:
        out += f"\n(unavailable here, left out: {', '.join(result['unavailable'])})"
    if result.get("memory"):
        from codecbench.bench.memory import format_memory_bench
        out += "\n" + format_memory_bench(result["memory"])
    return out


# --------------------------------------------------------------------------- input pipeline
