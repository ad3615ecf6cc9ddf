"""``codecbench bench shared``: Experiment B's segments trained in turn, then together on one pass of the data.

The demo's small FCNN (the packaged ``base``) fine-tuned segment by segment on a synthetic training set under the
original and mp3@64, the feed in worker processes as on an accelerator (``CODECBENCH_FEED_WORKERS``): wall time and
batches read both ways, and whether the two ways saved the same weights. On a CPU the model bounds both, so the
figure to read here is the batches read; the time it saves is an accelerator's, where the feed bounds the segments.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from codecbench.codecs.matrix import parse_matrix
from codecbench.core.cache import Cache
from codecbench.datasets import load_dataset
from codecbench.remedies.finetune import finetune
from codecbench.training.schedule import TrainConfig
from codecbench.zoo import Zoo, packaged_model_dir, segment_name


def bench_shared_pass(clips: int = 10, seconds: float = 2.0, epochs: int = 1, feed_workers: int = 1) -> dict:
    """Segments 1-10 of the packaged demo ``base`` fine-tuned for ``epochs`` on ``clips`` synthetic clips per class
    of ``seconds`` (original and mp3@64), in turn and then together, the feed in ``feed_workers`` processes."""
    matrix = parse_matrix({"finetune": {"conditions": ["mp3@64"]},
                           "categories": {"cat1": {"conditions": ["wav", "mp3@64"]}}}, "bench-shared.toml")
    config = TrainConfig(epochs=epochs, batch_size=32, crop_frames=64, seed=0)
    segments = list(range(1, 11))
    parent = Zoo(packaged_model_dir()).parent("base", "fine-tuning")
    result: dict = {"clips_per_class": clips, "clip_seconds": seconds, "epochs": epochs, "segments": segments,
                    "feed_workers": feed_workers, "modes": {}}
    before = os.environ.get("CODECBENCH_FEED_WORKERS")
    os.environ["CODECBENCH_FEED_WORKERS"] = str(feed_workers)
    try:
        with tempfile.TemporaryDirectory(prefix="codecbench-bench-shared-") as tmp:
            cache = Cache(Path(tmp) / "cache")
            dataset = load_dataset(f"synthetic:train={clips},evaluate=1,duration={seconds},seed=11",
                                   cache_dir=cache.root)
            zoos = {}
            for together in (False, True):
                zoos[together] = Zoo(Path(tmp) / f"together-{together}")
                start = time.perf_counter()
                finetune(zoos[together], parent, dataset, matrix, cache, segments=segments, epochs=epochs,
                         config=config, jobs=1, verbose=0, shared_pass=together, progress=lambda line: None)
                wall = time.perf_counter() - start
                meta = zoos[together].metadata(segment_name(1))
                per_training = -(-len(dataset.clips("train")) * 2 // config.batch_size) * epochs
                result["modes"]["together" if together else "in turn"] = {
                    "seconds": wall,
                    "batches_read": meta["shared_pass"]["batches_read"] if together else None,
                    "batches_per_training": per_training}
            result["identical_weights"] = all(
                all(np.array_equal(a, b) for a, b in zip(zoos[False].load(segment_name(k))[0].get_weights(),
                                                         zoos[True].load(segment_name(k))[0].get_weights()))
                for k in segments)
    finally:
        if before is None:
            os.environ.pop("CODECBENCH_FEED_WORKERS", None)
        else:
            os.environ["CODECBENCH_FEED_WORKERS"] = before
    turn, together = result["modes"]["in turn"], result["modes"]["together"]
    turn["batches_read"] = len(segments) * turn["batches_per_training"]  # at least: Keras may read one more
    result["speedup"] = turn["seconds"] / together["seconds"]
    return result


def format_shared_pass_bench(result: dict) -> str:
    turn, together = result["modes"]["in turn"], result["modes"]["together"]
    return "\n".join([
        f"Experiment B, segments 1-10 of the demo base, {result['epochs']} epoch(s) on {result['clips_per_class']} "
        f"clips per class of {result['clip_seconds']:g} s (wav + mp3@64), feed in {result['feed_workers']} "
        "worker process(es):",
        f"  in turn:  {turn['seconds']:7.1f} s, at least {turn['batches_read']} batches read "
        f"({turn['batches_per_training']} per segment)",
        f"  together: {together['seconds']:7.1f} s, {together['batches_read']} batches read for all ten "
        f"= {result['speedup']:.2f}x the time in turn",
        f"  the same weights both ways: {'yes' if result['identical_weights'] else 'NO'}"])
