"""Performance benchmarks that print figures (``codecbench bench codecs|model``); never timed tests.

Ratios are measured side by side in one run, because shared machines are noisy.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from . import codecs
from .cache import Cache
from .datasets import synth_scene


def _median_time(func, repeats: int) -> float:
    from .plan import median_time
    return median_time(func, repeats, warmup=False)


def _cli_pair(src: str, cond: codecs.Condition, tmp: str) -> None:
    """The command-line way: one process encodes (ffmpeg, or aac-enc for libfdk-aac), ffmpeg decodes to WAV."""
    spec = cond.spec
    ext = {"aac": "m4a", "mp3": "mp3", "opus": "opus", "sbc": "sbc", "he-aac": "aac"}[cond.codec]
    coded, back = os.path.join(tmp, f"coded.{ext}"), os.path.join(tmp, "back.wav")
    if cond.codec == "he-aac":  # Fraunhofer's own command-line encoder (Debian: aac-enc), ADTS out
        enc = ["aac-enc", "-t", "5", "-r", str(cond.kbps * 1000), "-a", "1", src]
    else:
        enc = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", src, "-c:a", spec.encoder,
               "-b:a", f"{cond.kbps}k"]
    if cond.codec == "opus":
        enc += ["-ar", "48000"]
    subprocess.run(enc + [coded], check=True, capture_output=True)
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", coded, "-ar", "44100",
                    back], check=True)
    sf.read(back, dtype="float32")


def _mp3_peers(signal: np.ndarray, sr: int, cond: codecs.Condition, repeats: int) -> dict:
    """MP3 round trip through libavcodec's own libmp3lame (the route before the in-process LAME one), and through
    audiomentations' fast-mp3-augment backend at LAME quality 3 (the quality libavcodec leaves LAME at) when
    installed; interleaved with ours."""
    from .codecs import _encode_pyav, codec_rate, decode, lame, resample

    def libavcodec_route():
        rate = codec_rate(cond, sr)
        decode(_encode_pyav(resample(signal, sr, rate), rate, cond, sr, len(signal)))

    try:
        import fast_mp3_augment
    except ImportError:
        fast_mp3_augment = None
    ours, via_libavcodec, peer, encode_only, decode_only = [], [], [], [], []
    bitstream = codecs.encode(signal, sr, cond)
    for _ in range(repeats):
        encode_only.append(_median_time(lambda: codecs.encode(signal, sr, cond), 1))
        decode_only.append(_median_time(lambda: decode(bitstream), 1))
        ours.append(_median_time(lambda: codecs.roundtrip(signal, sr, cond), 1))
        via_libavcodec.append(_median_time(libavcodec_route, 1))
        if fast_mp3_augment is not None:
            peer.append(_median_time(lambda: fast_mp3_augment.compress_roundtrip(signal, sr, cond.kbps, quality=3), 1))
    row = {"route": "LAME in-process (" + (lame.version() or "?") + ")" if codecs.encode(
               signal[:sr], sr, cond).backend == "lame" else "libavcodec libmp3lame",
           "in_process_s": statistics.median(ours), "libavcodec_route_s": statistics.median(via_libavcodec),
           "encode_s": statistics.median(encode_only), "decode_s": statistics.median(decode_only)}
    if peer:
        row.update(peer_fast_mp3_augment_q3_s=statistics.median(peer),
                   vs_peer=statistics.median(ours) / statistics.median(peer))
    return row


def _has_cli(cond: codecs.Condition) -> bool:
    if cond.codec == "he-aac":
        return bool(shutil.which("aac-enc") and shutil.which("ffmpeg"))
    return cond.codec in ("aac", "mp3", "opus", "sbc") and bool(shutil.which("ffmpeg"))


def bench_codecs(conditions=None, clips: int = 24, duration: float = 10.0, repeats: int = 7) -> dict:
    """Round-trip time per condition (in-process vs a CLI encoder + ffmpeg decoder pair), fill scaling and
    warm-cache speed-up."""
    from .encode import fill
    from .matrix import load_matrix

    conds = [codecs.parse_condition(c) for c in conditions] if conditions else list(dict.fromkeys(
        [c for c in load_matrix().all_conditions() if not c.is_original] +
        [codecs.parse_condition(c) for c in ("aac-ld@64", "aac-eld@32")] +
        [c for c in load_matrix("extended").all_conditions() if not c.is_original]))
    conds = [c for c in conds if codecs.availability(c)[0]]
    sr = 44100
    signal = synth_scene(4, np.random.default_rng(0), duration, sr)
    ffmpeg = shutil.which("ffmpeg")
    result: dict = {"clip_seconds": duration, "conditions": {}, "ffmpeg": ffmpeg or None}
    with tempfile.TemporaryDirectory(prefix="codecbench-bench-") as tmp:
        src = os.path.join(tmp, "clip.wav")
        sf.write(src, signal, sr, subtype="PCM_16")
        for cond in conds:
            codecs.roundtrip(signal, sr, cond)  # warm-up: first-call imports and codec init
            # interleaved, so a burst of load on a shared machine hits both sides alike
            inproc_times, cli_times = [], []
            for _ in range(repeats):
                inproc_times.append(_median_time(lambda: codecs.roundtrip(signal, sr, cond), 1))
                if _has_cli(cond):
                    cli_times.append(_median_time(lambda: _cli_pair(src, cond, tmp), 1))
            row = {"in_process_s": statistics.median(inproc_times), "library": codecs.codec_library(cond)}
            if cond.codec == "mp3":
                row.update(_mp3_peers(signal, sr, cond, repeats))
            if cli_times:
                cli = statistics.median(cli_times)
                row.update(cli_pair_s=cli, in_process_speedup=cli / row["in_process_s"])
            result["conditions"][cond.name] = row

        # fill throughput: the same clips into fresh caches with 1 and 2 jobs, then warm
        folder = Path(tmp) / "clips"
        folder.mkdir()
        paths = []
        for i in range(clips):
            p = folder / f"clip{i:03d}.wav"
            sf.write(p, synth_scene(i % 10, np.random.default_rng(100 + i), duration, sr), sr, subtype="PCM_16")
            paths.append(p)
        fill_conds = conds[:3]
        # start the worker pool first: we measure throughput, not the one-off import of the workers
        fill(paths[:2], fill_conds[:1], Cache(Path(tmp) / "warmup"), jobs=2, progress=False)
        timings = {}
        for jobs in (1, 2):
            cache = Cache(Path(tmp) / f"cache{jobs}")
            summary = fill(paths, fill_conds, cache, jobs=jobs, progress=False)
            timings[jobs] = summary.seconds
        warm = fill(paths, fill_conds, Cache(Path(tmp) / "cache2"), jobs=2, progress=False)
        pairs = clips * len(fill_conds)
        result["fill"] = {"clips": clips, "conditions": [c.name for c in fill_conds],
                          "jobs1_s": timings[1], "jobs2_s": timings[2], "jobs2_speedup": timings[1] / timings[2],
                          "pairs_per_s_jobs1": pairs / timings[1], "pairs_per_s_jobs2": pairs / timings[2],
                          "warm_s": warm.seconds, "warm_speedup": timings[2] / warm.seconds}
    speedups = [r["in_process_speedup"] for r in result["conditions"].values() if "in_process_speedup" in r]
    result["targets"] = {
        "in_process_vs_cli>=1.3": (min(speedups) >= 1.3) if speedups else None,
        "jobs2_vs_jobs1>=1.7": result["fill"]["jobs2_speedup"] >= 1.7,
        "warm_vs_cold>=50": result["fill"]["warm_speedup"] >= 50,
    }
    peers = [r["vs_peer"] for r in result["conditions"].values() if "vs_peer" in r]
    if peers:
        result["targets"]["mp3_vs_fast_mp3_augment<=1.0"] = max(peers) <= 1.0
    return result


def format_codec_bench(result: dict) -> str:
    lines = [f"round trip of a {result['clip_seconds']:.0f}-s 44.1 kHz clip (median):"]
    for name, row in result["conditions"].items():
        line = f"  {name:<10} in-process {row['in_process_s'] * 1000:7.1f} ms"
        if "cli_pair_s" in row:
            line += f"   CLI pair {row['cli_pair_s'] * 1000:7.1f} ms   speed-up {row['in_process_speedup']:.2f}x"
        line += f"   ({row['library']})"
        lines.append(line)
        if "libavcodec_route_s" in row:
            line = (f"  {'':<10} via {row['route']}: encode {row['encode_s'] * 1000:.1f} ms + decode "
                    f"{row['decode_s'] * 1000:.1f} ms; libavcodec's own libmp3lame "
                    f"{row['libavcodec_route_s'] * 1000:.1f} ms (same bytes)")
            if "peer_fast_mp3_augment_q3_s" in row:
                line += (f"; fast-mp3-augment q3 {row['peer_fast_mp3_augment_q3_s'] * 1000:.1f} ms -> ours / peer = "
                         f"{row['vs_peer']:.2f}")
            lines.append(line)
    if not result["ffmpeg"]:
        lines.append("  (no ffmpeg on PATH: CLI comparison skipped; HE-AAC also needs aac-enc)")
    f = result["fill"]
    lines.append(f"cache fill, {f['clips']} clips x {len(f['conditions'])} conditions: 1 job {f['jobs1_s']:.2f} s, "
                 f"2 jobs {f['jobs2_s']:.2f} s ({f['jobs2_speedup']:.2f}x); warm re-run {f['warm_s'] * 1000:.0f} ms "
                 f"({f['warm_speedup']:.0f}x faster than cold)")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else ('n/a' if v is None else 'MISSED')}"
                                         for k, v in result["targets"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- model

PAPER_GFLOP_PER_CLIP = 30.7  # the paper preset, one 10-s clip (128 x 423 x 3), multiply-adds counted as 2


def _matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    from .backend import keras
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((n, n), dtype=np.float32))
    keras.ops.matmul(a, a)
    seconds = _median_time(lambda: np.asarray(keras.ops.matmul(a, a)), repeats)
    return 2 * n ** 3 / seconds / 1e9


def bench_model(batch_sizes=(1, 4, 16), repeats: int = 2) -> dict:
    """Inference clips/s of the paper FCNN, its GFLOP/s against a plain Keras matmul, and feature cost."""
    from . import features
    from .backend import keras
    from .models import build_fcnn, preset_config

    model = build_fcnn(preset_config("paper"))
    result = {"backend": keras.backend.backend(), "model_params": model.count_params(), "batches": {}}
    for bs in batch_sizes:
        x = np.random.default_rng(bs).random((bs, 128, 423, 3), dtype=np.float32)
        model.predict_on_batch(x)  # trace and warm up
        seconds = _median_time(lambda: model.predict_on_batch(x), repeats)
        clips_per_s = bs / seconds
        result["batches"][bs] = {"seconds": seconds, "clips_per_s": clips_per_s,
                                 "gflops": clips_per_s * PAPER_GFLOP_PER_CLIP}
    result["matmul_gflops"] = _matmul_gflops()
    best = max(r["gflops"] for r in result["batches"].values())
    result["model_vs_matmul"] = best / result["matmul_gflops"]
    clip = synth_scene(0, np.random.default_rng(0), 10.0, 44100)
    features.extract(clip)
    result["features_ms_per_clip"] = _median_time(lambda: features.extract(clip), 5) * 1000
    result["targets"] = {"model_vs_matmul>=0.8": result["model_vs_matmul"] >= 0.8}
    return result


def format_model_bench(result: dict) -> str:
    lines = [f"paper FCNN ({result['model_params']:,} parameters, {result['backend']} backend), inference:"]
    for bs, row in result["batches"].items():
        lines.append(f"  batch {bs:>3}: {row['clips_per_s']:6.2f} clips/s  = {row['gflops']:7.1f} GFLOP/s")
    lines.append(f"plain Keras matmul: {result['matmul_gflops']:.1f} GFLOP/s; best model / matmul = "
                 f"{result['model_vs_matmul']:.2f}x")
    lines.append(f"feature extraction: {result['features_ms_per_clip']:.1f} ms per 10-s clip")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- fine-tuning

def bench_finetune(steps: int = 2) -> dict:
    """Training-step time of full vs segment-1/7/10 fine-tuning, for the demo and the paper preset."""
    from .backend import keras
    from .models import build_fcnn, freeze_except, preset_config

    setups = {"demo": {"preset": "small", "shape": (128, 79, 3), "crop": 64, "batch": 32, "epoch_samples": 1800},
              # batch 8 keeps the CPU run to minutes; samples/s is what carries over to batch 32
              "paper": {"preset": "paper", "shape": (128, 423, 3), "crop": 400, "batch": 8,
                        "epoch_samples": 13965 * 5}}
    result = {"backend": keras.backend.backend(), "devices": _devices(), "setups": {}}
    for name, s in setups.items():
        rows = {}
        x = np.random.default_rng(0).random((s["batch"], 128, s["crop"], 3), dtype=np.float32)
        y = keras.utils.to_categorical(np.arange(s["batch"]) % 10, 10)
        for strategy, segments in (("full", None), ("segment 1", [1]), ("segment 7", [7]), ("segment 10", [10])):
            model = build_fcnn(preset_config(s["preset"], s["shape"], 10))
            freeze_except(model, segments)
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
            model.train_on_batch(x, y)  # trace and warm up
            seconds = _median_time(lambda: model.train_on_batch(x, y), steps)
            rows[strategy] = {"seconds_per_step": seconds, "samples_per_s": s["batch"] / seconds,
                              "seconds_per_epoch": s["epoch_samples"] / (s["batch"] / seconds)}
        result["setups"][name] = {**{k: v for k, v in s.items()}, "strategies": rows}
    return result


def _devices() -> list[str]:
    try:
        import tensorflow as tf
        return [d.name for d in tf.config.list_logical_devices()]
    except Exception:  # another backend: the device list is informative only
        return []


def format_finetune_bench(result: dict) -> str:
    lines = [f"fine-tuning step time ({result['backend']} on {', '.join(result['devices']) or 'default device'}):"]
    for name, setup in result["setups"].items():
        lines.append(f"  {name} ({setup['preset']} FCNN, batch {setup['batch']} x {setup['crop']} frames, "
                     f"epoch = {setup['epoch_samples']:,} samples):")
        for strategy, row in setup["strategies"].items():
            lines.append(f"    {strategy:<11} {row['samples_per_s']:7.1f} samples/s   "
                         f"{row['seconds_per_epoch']:9.1f} s/epoch")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the paper's scale

PAPER_COUNTS = {"train_clips": 13965, "evaluate_clips": 2970, "models": 15}


def bench_scale(clip_seconds: float = 10.0, train_batch: int = 8, clips: int = 3) -> dict:
    """Per-pair costs measured here on synthetic 10-s clips at TAU's shape, extrapolated to the paper's counts.

    Cache bytes come from a real fill of ``clips`` clips under the paper's conditions; coding and feature times
    from one round trip per condition and one extraction (:mod:`codecbench.plan` calibration); fine-tuning and
    evaluation from training and inference steps of the paper FCNN on the device Keras sees.
    """
    from .encode import fill
    from .matrix import load_matrix
    from .models import preset_config
    from .plan import PCM_CACHE_BYTES_PER_PAIR, codec_seconds, feature_seconds, model_rates

    matrix = load_matrix()
    train_conds = (["wav"] if matrix.include_original else []) + [c.name for c in matrix.finetune]
    eval_conds = [c.name for c in matrix.validation]
    available = {c for c in set(train_conds + eval_conds) if codecs.availability(c)[0]}
    result: dict = {"clip_seconds": clip_seconds, "counts": dict(PAPER_COUNTS), "unavailable":
                    sorted(set(train_conds + eval_conds) - available)}
    sr = 44100
    with tempfile.TemporaryDirectory(prefix="codecbench-scale-") as tmp:
        paths = []
        for i in range(clips):
            p = Path(tmp) / f"clip{i}.wav"
            sf.write(p, synth_scene(i, np.random.default_rng(i), clip_seconds, sr), sr, subtype="PCM_24")
            paths.append(p)
        cache = Cache(Path(tmp) / "cache")
        fill(paths, sorted(available), cache, with_features=True, jobs=1, progress=False)
        coded = {}
        for entry in cache.entries("coded"):
            from .encode import load_bitstream
            bitstream = load_bitstream(cache, entry.stem)
            coded.setdefault(bitstream.condition, []).append(entry.stat().st_size)
        feature_bytes = statistics.mean(e.stat().st_size for e in cache.entries("features"))
    coded_bytes = {c: statistics.mean(v) for c, v in coded.items()}
    n_train, n_eval = PAPER_COUNTS["train_clips"], PAPER_COUNTS["evaluate_clips"]
    pairs = [(c, n_train) for c in train_conds] + [(c, n_eval) for c in eval_conds]
    after = sum(n * (coded_bytes.get(c, 0) + feature_bytes) for c, n in pairs)
    before = sum(n * (PCM_CACHE_BYTES_PER_PAIR if c != "wav" else 128 * 423 * 3 * 4) for c, n in pairs)
    n_pairs = sum(n for _, n in pairs)
    result["cache"] = {"pairs": n_pairs, "before_bytes": before, "after_bytes": after,
                       "after_bytes_per_pair": after / n_pairs, "feature_bytes": feature_bytes,
                       "coded_bytes": coded_bytes}
    core_seconds = sum(n * (codec_seconds(c) * clip_seconds / 10 + feature_seconds() * clip_seconds / 10)
                       for c, n in pairs if c in available)
    result["encoding"] = {"core_hours": core_seconds / 3600, "hours_2_cores": core_seconds / 3600 / 2,
                          "per_condition_s": {c: codec_seconds(c) for c in sorted(available)},
                          "features_s": feature_seconds()}
    frames = 1 + int(clip_seconds * sr) // 1024 - 8
    rates = model_rates(preset_config("paper", (128, frames, 3), 10), batch_size=train_batch, crop_frames=400,
                        full_frames=frames)
    examples = n_train * len(train_conds)
    result["model"] = {**rates, "train_batch": train_batch, "devices": _devices()}
    result["finetuning"] = {"examples_per_epoch": examples,
                            "hours_per_epoch": examples / rates["train_examples_per_s"] / 3600}
    evaluations = PAPER_COUNTS["models"] * n_eval * len(eval_conds)
    result["evaluation"] = {"clip_evaluations": evaluations,
                            "hours": evaluations / rates["inference_clips_per_s"] / 3600}
    return result


def format_scale_bench(result: dict) -> str:
    from tabulate import tabulate

    c, e, f, v = result["cache"], result["encoding"], result["finetuning"], result["evaluation"]
    gb = 1e9
    rows = [["cache for the paper's experiment", f"{c['pairs']:,} (clip, condition) pairs",
             f"{c['before_bytes'] / gb:.0f} GB before (decoded PCM + 3-channel features), "
             f"{c['after_bytes'] / gb:.1f} GB now ({c['after_bytes_per_pair'] / 1e6:.3f} MB per pair)"],
            ["encoding + features", f"{e['core_hours']:.1f} core-hours",
             f"{e['hours_2_cores']:.1f} h on 2 cores; each extra single-core dask worker adds "
             f"{1 / e['core_hours']:.3f} of the work per hour (N workers: {e['core_hours']:.1f} / N h)"],
            ["fine-tuning, one epoch", f"{f['examples_per_epoch']:,} examples",
             f"{f['hours_per_epoch']:.1f} h ({result['model']['train_examples_per_s']:.2f} examples/s, "
             f"{result['model']['backend']} on {', '.join(result['model']['devices']) or 'default device'})"],
            ["evaluation of the 15-model zoo", f"{v['clip_evaluations']:,} clip evaluations",
             f"{v['hours']:.1f} h ({result['model']['inference_clips_per_s']:.2f} clips/s)"]]
    out = tabulate(rows, headers=["work", "size", "on this machine"], tablefmt="github")
    if result["unavailable"]:
        out += f"\n(unavailable here, left out: {', '.join(result['unavailable'])})"
    return out


# --------------------------------------------------------------------------- input pipeline

PIPELINE_SETUPS = {
    # the demo: small FCNN on 2-s clips (79 frames, 64-frame crops) - the fastest model, so the hardest to feed
    "small": {"preset": "small", "seconds": 2.0, "crop": 64, "batch": 32, "steps": 12, "eval_clips": 256},
    # the paper: 11.8M-parameter FCNN on 10-s clips (423 frames, 400-frame crops); batch 16 keeps a CPU run short
    "paper": {"preset": "paper", "seconds": 10.0, "crop": 400, "batch": 16, "steps": 2, "eval_clips": 32},
}


class _EpochSeconds:
    def __init__(self):
        from .backend import keras

        outer = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.seconds.append(time.perf_counter() - outer.start)

        self.seconds: list[float] = []
        self.callback = Timer()


def bench_pipeline(setups=("small", "paper"), repeats: int = 3, clips: int | None = None) -> dict:
    """Training examples/s and inference clips/s fed from real cached features (with the paper's augmentation:
    random crops, masks, mixup) against the same model and batch size on in-memory random tensors.

    Both sides run interleaved in one process, so a burst of load on a shared machine hits both alike; the
    ratio (cache-fed / in-memory) is the figure that carries over (target: >= 0.9 on a CPU, >= 0.8 on a GPU).
    """
    from .backend import keras
    from .encode import cached_features
    from .evaluation import predict_stream
    from .models import build_fcnn, preset_config
    from .schedule import TrainConfig
    from .training import AugmentedBatches

    result: dict = {"backend": keras.backend.backend(), "devices": _devices(), "setups": {}}
    sr = 44100
    with tempfile.TemporaryDirectory(prefix="codecbench-pipeline-") as tmp:
        for name in setups:
            s = PIPELINE_SETUPS[name]
            n_clips = clips or max(s["batch"] * 2, min(s["eval_clips"], s["batch"] * s["steps"]))
            paths = []
            for i in range(n_clips):
                p = Path(tmp) / f"{name}{i:04d}.wav"
                sf.write(p, synth_scene(i % 10, np.random.default_rng(i), s["seconds"], sr), sr, subtype="PCM_16")
                paths.append(p)
            reader, _ = cached_features(paths, "wav", Cache(Path(tmp) / "cache"), jobs=2, progress=False)
            shape = reader.get(0).shape
            labels = np.arange(len(reader)) % 10
            model = build_fcnn(preset_config(s["preset"], shape, 10))
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                          metrics=["accuracy"], jit_compile=False)
            config = TrainConfig(batch_size=s["batch"], crop_frames=s["crop"], time_mask_frames=min(40, s["crop"] // 4))
            n_train = s["batch"] * s["steps"]
            rng = np.random.default_rng(0)
            x_mem = rng.random((n_train, shape[0], s["crop"], shape[2]), dtype=np.float32)
            y_mem = keras.utils.to_categorical(np.arange(n_train) % 10, 10)
            train_idx = np.arange(n_train) % len(reader)

            def cached_epoch(timer):
                batches = AugmentedBatches(lambda idx: reader(train_idx[idx]), labels[train_idx], 10, config)
                model.fit(batches, epochs=1, callbacks=[timer.callback], verbose=0)

            def memory_epoch(timer):
                model.fit(x_mem, y_mem, batch_size=s["batch"], epochs=1, shuffle=False, callbacks=[timer.callback],
                          verbose=0)

            # inference: every clip at full length, in the evaluator's batch, read ahead from the cache
            eval_batch = max(1, min(64, (64 << 20) // int(np.prod(shape) * 4)))
            x_eval = rng.random((len(reader),) + shape, dtype=np.float32)

            def cached_predict():
                predict_stream(model.predict_on_batch, reader, batch_size=eval_batch)

            def memory_predict():
                for i in range(0, len(x_eval), eval_batch):
                    np.asarray(model.predict_on_batch(x_eval[i:i + eval_batch]))

            warm_c, warm_m = _EpochSeconds(), _EpochSeconds()
            cached_epoch(warm_c), memory_epoch(warm_m)  # trace both input signatures
            memory_predict()
            tc, tm, pc, pm = _EpochSeconds(), _EpochSeconds(), [], []
            for _ in range(repeats):  # interleaved
                cached_epoch(tc)
                memory_epoch(tm)
                pc.append(_median_time(cached_predict, 1))
                pm.append(_median_time(memory_predict, 1))
            train_c, train_m = n_train / statistics.median(tc.seconds), n_train / statistics.median(tm.seconds)
            infer_c, infer_m = len(reader) / statistics.median(pc), len(reader) / statistics.median(pm)
            result["setups"][name] = {
                "preset": s["preset"], "input_shape": list(shape), "batch": s["batch"], "crop_frames": s["crop"],
                "train_examples": n_train, "eval_clips": len(reader), "eval_batch": eval_batch,
                "train_cached_examples_per_s": train_c, "train_memory_examples_per_s": train_m,
                "train_ratio": train_c / train_m,
                "inference_cached_clips_per_s": infer_c, "inference_memory_clips_per_s": infer_m,
                "inference_ratio": infer_c / infer_m}
    on_gpu = any("GPU" in d for d in result["devices"])
    floor = 0.8 if on_gpu else 0.9
    result["targets"] = {f"{name}_{kind}_ratio>={floor}": row[f"{kind}_ratio"] >= floor
                         for name, row in result["setups"].items() for kind in ("train", "inference")}
    return result


def format_pipeline_bench(result: dict) -> str:
    lines = [f"input pipeline ({result['backend']} on {', '.join(result['devices']) or 'default device'}): "
             "cache-fed (with augmentation) vs in-memory random tensors, same model and batch"]
    for name, r in result["setups"].items():
        lines.append(f"  {name} FCNN, input {tuple(r['input_shape'])}:")
        train_c, train_m = r["train_cached_examples_per_s"], r["train_memory_examples_per_s"]
        lines.append(f"    training  batch {r['batch']:>3} x {r['crop_frames']} frames: cache {train_c:8.2f}  "
                     f"memory {train_m:8.2f} examples/s   ratio {r['train_ratio']:.2f}")
        infer_c, infer_m = r["inference_cached_clips_per_s"], r["inference_memory_clips_per_s"]
        lines.append(f"    inference batch {r['eval_batch']:>3}, full clips:  cache {infer_c:8.2f}  "
                     f"memory {infer_m:8.2f} clips/s      ratio {r['inference_ratio']:.2f}")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- prefix-shared evaluation

def _paper_like_zoo(shape) -> dict:
    """The paper zoo's structure at the paper's size: base, four independently trained full fine-tunings, and ten
    segment-k models that differ from base in segment k only (random weights: the cost does not depend on them)."""
    from .backend import keras
    from .models import build_fcnn, derive_segments, preset_config

    config = preset_config("paper", shape, 10)
    keras.utils.set_random_seed(0)
    base = build_fcnn(config)
    zoo = {"base": base}
    for i, epochs in enumerate((1, 10, 20, 40)):
        keras.utils.set_random_seed(1 + i)
        zoo[f"finetuned_full@e{epochs}"] = build_fcnn(config)
    rng = np.random.default_rng(0)
    for k, segment in enumerate(derive_segments(base), start=1):
        model = build_fcnn(config)
        model.set_weights(base.get_weights())
        for name in segment.layers:
            layer = model.get_layer(name)
            layer.set_weights([w + rng.normal(0, 1e-3, w.shape).astype(w.dtype) for w in layer.get_weights()])
        zoo[f"finetuned_seg{k}"] = model
    return zoo


def bench_prefix(setups=("demo", "paper"), repeats: int = 2) -> dict:
    """Evaluation of a whole zoo with and without prefix sharing (:mod:`codecbench.prefix`), side by side:
    clips/s, FLOPs per clip from the layer shapes, and whether every prediction is identical."""
    from .backend import keras, quiet_retracing
    from .prefix import SharedPrefixPredictor
    from .zoo import Zoo, packaged_model_dir

    result: dict = {"backend": keras.backend.backend(), "devices": _devices(), "setups": {}}
    for name in setups:
        if name == "demo":
            zoo = Zoo(packaged_model_dir())
            models = {m: zoo.scoring(m).keras_model for m in zoo.names()}
            shape, clips = (128, 79, 3), 256
        else:
            shape, clips = (128, 423, 3), 4
            models = _paper_like_zoo(shape)
        x = np.random.default_rng(1).random((clips, *shape), dtype=np.float32)
        batch = max(1, min(clips, (64 << 20) // int(np.prod(shape) * 4)))
        predictor = SharedPrefixPredictor(models)

        def unshared():
            with quiet_retracing():
                return {k: np.concatenate([np.asarray(m.predict_on_batch(x[i:i + batch]))
                                           for i in range(0, clips, batch)]) for k, m in models.items()}

        def shared():
            return predictor.predict(x, batch_size=batch)

        reference, together = unshared(), shared()  # warm-up (traces every sub-model) and the identity check
        identical = all(np.array_equal(reference[k].argmax(1), together[k].argmax(1)) for k in models)
        max_diff = max(float(np.max(np.abs(reference[k] - together[k]))) for k in models)
        times_u, times_s = [], []
        for _ in range(repeats):  # interleaved
            times_u.append(_median_time(unshared, 1))
            times_s.append(_median_time(shared, 1))
        tu, ts = statistics.median(times_u), statistics.median(times_s)
        flops = predictor.flops(shape)
        result["setups"][name] = {
            "models": len(models), "clips": clips, "input_shape": list(shape), "batch": batch,
            "sub_model_calls_per_batch": predictor.calls_per_batch,
            "gflop_per_clip_unshared": flops["unshared"] / 1e9, "gflop_per_clip_shared": flops["shared"] / 1e9,
            "flop_ratio": flops["ratio"], "unshared_clips_per_s": clips / tu, "shared_clips_per_s": clips / ts,
            "speedup": tu / ts, "identical_predictions": identical, "max_probability_difference": max_diff}
    return result


def format_prefix_bench(result: dict) -> str:
    lines = [f"prefix-shared evaluation of a whole zoo ({result['backend']}):"]
    for name, r in result["setups"].items():
        lines.append(f"  {name}: {r['models']} models, {r['clips']} clips {tuple(r['input_shape'])}: "
                     f"{r['gflop_per_clip_unshared']:.2f} -> {r['gflop_per_clip_shared']:.2f} GFLOP per clip "
                     f"({r['flop_ratio']:.2f}x fewer); measured {r['unshared_clips_per_s']:.2f} -> "
                     f"{r['shared_clips_per_s']:.2f} clips/s through the zoo = {r['speedup']:.2f}x; predictions "
                     f"{'identical' if r['identical_predictions'] else 'DIFFERENT'} "
                     f"(max probability difference {r['max_probability_difference']:.1e})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- precision

def bench_precision(repeats: int = 2, accuracy: bool = True) -> dict:
    """float32 against mixed_bfloat16, side by side: inference clips/s and training examples/s of the small and the
    paper FCNN on the device Keras sees, and (``accuracy``) the demo zoo's base and finetuned_full@e10 on the
    embedded default under wav and mp3@32 with both policies, with Wilson intervals and paired agreement."""
    from .backend import keras, with_precision
    from .models import build_fcnn, preset_config

    cpu_flags = _cpu_flags()
    result: dict = {"backend": keras.backend.backend(), "devices": _devices(),
                    "cpu_bf16": sorted(f for f in cpu_flags if "bf16" in f), "speed": {}}
    for preset, shape, batch, crop in (("small", (128, 79, 3), 32, 64), ("paper", (128, 423, 3), 4, 400)):
        keras.utils.set_random_seed(0)
        base = build_fcnn(preset_config(preset, shape, 10))
        x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        xt = x[:, :, :crop]
        y = keras.utils.to_categorical(np.arange(batch) % 10, 10)
        models = {p: with_precision(base, p) for p in ("float32", "mixed_bfloat16")}
        for m in models.values():
            m.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
            m.predict_on_batch(x), m.train_on_batch(xt, y)  # trace and warm up
        times = {p: {"infer": [], "train": []} for p in models}
        for _ in range(repeats):  # interleaved
            for p, m in models.items():
                times[p]["infer"].append(_median_time(lambda: m.predict_on_batch(x), 1))
                times[p]["train"].append(_median_time(lambda: m.train_on_batch(xt, y), 1))
        rows = {p: {"inference_clips_per_s": batch / statistics.median(t["infer"]),
                    "train_examples_per_s": batch / statistics.median(t["train"])} for p, t in times.items()}
        rows["mixed_vs_float32"] = {k: rows["mixed_bfloat16"][k] / rows["float32"][k] for k in rows["float32"]}
        result["speed"][preset] = rows
    if accuracy:
        from .api import evaluate

        frames = {p: evaluate(["base", "finetuned_full@e10"], conditions=["wav", "mp3@32"], precision=p)
                  for p in ("float32", "mixed_bfloat16")}
        rows = []
        f32, bf = frames["float32"].attrs["records"], frames["mixed_bfloat16"].attrs["records"]
        for key in f32:
            a, b = f32[key], bf[key]
            agree = float(np.mean(np.array(a["predictions"]) == np.array(b["predictions"])))
            inside = a["ci_low"] <= b["accuracy"] <= a["ci_high"]
            rows.append({"model": key[0], "condition": key[1], "float32": a["accuracy"],
                         "float32_ci": [a["ci_low"], a["ci_high"]], "mixed_bfloat16": b["accuracy"],
                         "mixed_ci": [b["ci_low"], b["ci_high"]], "prediction_agreement": agree,
                         "mixed_within_float32_ci": inside})
        result["accuracy"] = rows
    return result


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def format_precision_bench(result: dict) -> str:
    lines = [f"float32 vs mixed_bfloat16 ({result['backend']} on {', '.join(result['devices']) or 'default device'};"
             f" CPU bf16 instructions: {', '.join(result['cpu_bf16']) or 'none'}):"]
    for preset, rows in result["speed"].items():
        r32, rbf, ratio = rows["float32"], rows["mixed_bfloat16"], rows["mixed_vs_float32"]
        lines.append(f"  {preset} FCNN: inference {r32['inference_clips_per_s']:.2f} -> "
                     f"{rbf['inference_clips_per_s']:.2f} clips/s ({ratio['inference_clips_per_s']:.2f}x), training "
                     f"{r32['train_examples_per_s']:.2f} -> {rbf['train_examples_per_s']:.2f} examples/s "
                     f"({ratio['train_examples_per_s']:.2f}x)")
    for row in result.get("accuracy", []):
        lines.append(f"  demo {row['model']} on {row['condition']}: float32 {row['float32']:.3f} "
                     f"[{row['float32_ci'][0]:.3f}, {row['float32_ci'][1]:.3f}], mixed_bfloat16 "
                     f"{row['mixed_bfloat16']:.3f}; same prediction for {row['prediction_agreement']:.1%} of clips; "
                     f"{'within' if row['mixed_within_float32_ci'] else 'OUTSIDE'} the float32 interval")
    return "\n".join(lines)


#: ``codecbench bench <what>``: the measurement and its text form
BENCHMARKS = {"codecs": (bench_codecs, format_codec_bench), "model": (bench_model, format_model_bench),
              "finetune": (bench_finetune, format_finetune_bench), "scale": (bench_scale, format_scale_bench),
              "pipeline": (bench_pipeline, format_pipeline_bench), "prefix": (bench_prefix, format_prefix_bench),
              "precision": (bench_precision, format_precision_bench)}
