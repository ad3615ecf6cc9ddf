"""``codecbench bench augment``: codec augmentation throughput against audiomentations' ``Mp3Compression``.

On the same clips, interleaved, in one process: clips per second of (1) :class:`~codecbench.augment.CodecAugment`
coding MP3 (cold: every clip coded), (2) audiomentations' ``Mp3Compression`` with its fast-mp3-augment backend at
LAME's quality 3 (codecbench's, so both make the same kind of MP3), and (3) the epoch-level pool serving the same
pairs again (warm): audio decoded from the cached bitstreams (a pair met again beyond the pool's memory budget),
decoded audio kept in memory (within it), and log-mel features from the feature cache. Targets: cold >= 1.0x the
peer, warm >= 20x cold. Memory: the pool's budget (``memory_bytes``, 1 GiB by default); disk: the bitstreams and
features the cache keeps (about 80 KB and 220 KB per 10-s pair at 64 kbps).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from codecbench.augment import CodecAugment, CodecAugmentedDataset
from codecbench.core.cache import Cache
from codecbench.datasets import synth_scene


def _rate(func, items, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            func(item)
        out.append(len(items) / (time.perf_counter() - start))
    return out


def bench_augment(clips: int = 12, seconds: float = 10.0, kbps: int = 64, repeats: int = 3) -> dict:
    """Clips/s of cold coding, the peer, and the warm pool (see the module)."""

    sr = 44100
    signals = [synth_scene(i % 10, np.random.default_rng(i), seconds, sr).astype(np.float32) for i in range(clips)]
    ours = CodecAugment([f"mp3@{kbps}"], p=1.0)
    result: dict = {"clips": clips, "seconds": seconds, "condition": f"mp3@{kbps}", "rates": {}}
    runs: dict[str, list[float]] = {"codecbench_cold": []}
    try:
        from audiomentations import Mp3Compression

        from codecbench.codecs.lame import QUALITY

        # at codecbench's LAME quality (3; audiomentations' default is 7, faster and worse), so both make the same MP3
        peer = Mp3Compression(min_bitrate=kbps, max_bitrate=kbps, backend="fast-mp3-augment", quality=QUALITY, p=1.0)
        peer(signals[0], sr)  # loads its backend (ImportError when fast-mp3-augment is missing)
        result["peer_quality"] = QUALITY
        runs["audiomentations_fast_mp3_augment"] = []
    except ImportError as exc:
        peer, result["peer_missing"] = None, f"audiomentations with fast-mp3-augment is not installed ({exc}); " \
                                             "pip install audiomentations fast-mp3-augment"
    ours(signals[0], sr)
    for _ in range(repeats):  # interleaved: a noisy machine slows both alike
        runs["codecbench_cold"] += _rate(lambda x: ours(x, sr), signals, 1)
        if peer is not None:
            runs["audiomentations_fast_mp3_augment"] += _rate(lambda x: peer(samples=x, sample_rate=sr), signals, 1)
    with tempfile.TemporaryDirectory(prefix="codecbench-augment-") as tmp:
        paths = []
        for i, x in enumerate(signals):
            paths.append(Path(tmp) / f"clip{i}.wav")
            sf.write(paths[-1], x, sr, subtype="FLOAT")
        cache = Cache(Path(tmp) / "cache")
        for name, frontend in (("pool_warm_audio", None), ("pool_warm_features", "hu2020")):
            pool = CodecAugmentedDataset(paths, conditions=[f"mp3@{kbps}"], cache=cache, frontend=frontend, jobs=1)
            pool.prepare()  # the first epoch codes (and featurises): what follows is the warm path
            if frontend is None:  # the first pass decodes the cached bitstreams; later ones find the audio in memory
                runs["pool_warm_audio_decoding"] = _rate(pool.item, list(range(len(pool))), 1)
                result["pool_memory_bytes"] = pool._kept.budget
                result["pool_memory_used_bytes"] = pool._kept.used
            runs[name] = _rate(pool.item, list(range(len(pool))), repeats)
    for name, values in runs.items():
        result["rates"][name] = statistics.median(values)
    rates = result["rates"]
    if "audiomentations_fast_mp3_augment" in rates:
        result["cold_vs_peer"] = rates["codecbench_cold"] / rates["audiomentations_fast_mp3_augment"]
    result["warm_audio_vs_cold"] = rates["pool_warm_audio"] / rates["codecbench_cold"]
    result["warm_audio_decoding_vs_cold"] = rates["pool_warm_audio_decoding"] / rates["codecbench_cold"]
    result["warm_features_vs_cold"] = rates["pool_warm_features"] / rates["codecbench_cold"]
    result["targets"] = {"cold >= 1.0x peer": result.get("cold_vs_peer", float("nan")) >= 1.0,
                         "warm >= 20x cold (features)": result["warm_features_vs_cold"] >= 20,
                         "warm >= 20x cold (audio)": result["warm_audio_vs_cold"] >= 20}
    return result


def format_augment_bench(result: dict) -> str:
    r = result["rates"]
    lines = [f"codec augmentation, {result['condition']}, {result['clips']} clips of {result['seconds']:g} s "
             "(clips/s, median of interleaved runs):",
             f"  codecbench CodecAugment, cold (coding):           {r['codecbench_cold']:8.1f}"]
    if "audiomentations_fast_mp3_augment" in r:
        peer = r["audiomentations_fast_mp3_augment"]
        lines.append(f"  audiomentations Mp3Compression (fast-mp3-augment): {peer:8.1f}   -> cold / peer = "
                     f"{result['cold_vs_peer']:.2f}x")
    else:
        lines.append(f"  peer: {result['peer_missing']}")
    lines += [f"  pool, warm, audio decoded from cached bitstreams: {r['pool_warm_audio_decoding']:7.1f}   -> "
              f"{result['warm_audio_decoding_vs_cold']:.1f}x cold",
              f"  pool, warm, decoded audio kept in memory:        {r['pool_warm_audio']:8.1f}   -> "
              f"{result['warm_audio_vs_cold']:.1f}x cold ({result['pool_memory_used_bytes'] / 1e6:.0f} MB of its "
              f"{result['pool_memory_bytes'] / 2**30:g} GiB budget)",
              f"  pool, warm, log-mel features from the cache:     {r['pool_warm_features']:8.1f}   -> "
              f"{result['warm_features_vs_cold']:.1f}x cold",
              "targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items())]
    return "\n".join(lines)
