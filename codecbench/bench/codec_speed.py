"""``codecbench bench codecs``: in-process round trips against command-line and peer encoders."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from codecbench import codecs
from codecbench.bench.timing import median_time
from codecbench.codecs import BACKENDS, codec_rate, decode, lame, resample
from codecbench.codecs.matrix import load_matrix
from codecbench.core.cache import Cache
from codecbench.datasets import synth_scene
from codecbench.store.fill import fill


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

    def libavcodec_route():
        rate = codec_rate(cond, sr)
        decode(BACKENDS["pyav"].encode(resample(signal, sr, rate), rate, cond, sr, len(signal)))

    try:
        import fast_mp3_augment
    except ImportError:
        fast_mp3_augment = None
    ours, via_libavcodec, peer, encode_only, decode_only = [], [], [], [], []
    bitstream = codecs.encode(signal, sr, cond)
    for _ in range(repeats):
        encode_only.append(median_time(lambda: codecs.encode(signal, sr, cond), 1))
        decode_only.append(median_time(lambda: decode(bitstream), 1))
        ours.append(median_time(lambda: codecs.roundtrip(signal, sr, cond), 1))
        via_libavcodec.append(median_time(libavcodec_route, 1))
        if fast_mp3_augment is not None:
            peer.append(median_time(lambda: fast_mp3_augment.compress_roundtrip(signal, sr, cond.kbps, quality=3), 1))
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


def bench_codecs(conditions: list[codecs.Condition] | None = None, *, clips: int = 24,
                 duration: float = 10.0, repeats: int = 7) -> dict:
    """Round-trip time per condition (in-process vs a CLI encoder + ffmpeg decoder pair), fill scaling and
    warm-cache speed-up."""

    conds = list(conditions) if conditions else list(dict.fromkeys(
        [c for c in load_matrix().all_conditions() if not c.is_original] +
        [codecs.Condition("aac-ld", 64), codecs.Condition("aac-eld", 32)] +
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
                inproc_times.append(median_time(lambda: codecs.roundtrip(signal, sr, cond), 1))
                if _has_cli(cond):
                    cli_times.append(median_time(lambda: _cli_pair(src, cond, tmp), 1))
            row: dict[str, Any] = {"in_process_s": statistics.median(inproc_times),
                                   "library": codecs.codec_library(cond)}
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
