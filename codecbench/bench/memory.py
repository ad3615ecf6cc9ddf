"""``codecbench bench memory`` (and part of ``bench scale``): the evaluator's peak memory at the paper's clip shape,
measured in fresh processes, and what it means for the paper's evaluation (2,970 clips x 8 conditions x 15 models).

Each measurement runs :class:`~codecbench.run.evaluation.Evaluator` in a process of its own on a warm cache (coding
runs before, in this process, so only evaluation is measured) and reports that process's peak resident set. The
runs vary one thing at a time (models, conditions, clips), so the growth per condition and per clip is measured,
not assumed; a run at the paper's full size takes about a day on a 2-core CPU, so the paper's figure is the
measured peak plus the measured growth times the rest (``bench memory --clips N`` measures at a larger size where
there is time).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from codecbench import codecs
from codecbench.bench.timing import PAPER_COUNTS, paper_like_zoo
from codecbench.codecs.matrix import load_matrix
from codecbench.core.cache import Cache
from codecbench.datasets import synth_scene
from codecbench.errors import EnvironmentProblem
from codecbench.store.fill import fill
from codecbench.zoo import Zoo


class MeasurementError(EnvironmentProblem):
    """A measurement process that failed; the message carries the end of its error output."""


#: Where the bound lies (the issue's target for the paper's evaluation on a workstation).
BOUND_BYTES = 4 << 30

_CHILD = """
import json, resource, sys
from codecbench.core.cache import Cache
from codecbench.codecs import parse_condition
from codecbench.datasets import load_dataset
from codecbench.run.evaluation import Evaluator
from codecbench.store.split_inputs import SplitInputs
from codecbench.codecs.matrix import load_matrix
from codecbench.zoo import Zoo
args = json.loads(sys.argv[1])
cache = Cache(args["cache"])
dataset = load_dataset(args["dataset"], cache_dir=cache.root)
zoo = Zoo(args["zoo"])
# the paper's regime: a condition's inputs (1.9 GB) exceed what is kept in memory, so they stream from the cache
# float32: the figure holds on every machine (mixed bfloat16 keeps the same weights, half-size activations)
store = SplitInputs(dataset, args["split"], cache, jobs=1, log=lambda m: None, keep_inputs_bytes=0)
ev = Evaluator(store, load_matrix(), zoo, precision="float32")
models = [zoo.entry(m) for m in zoo.names()]
for m in models:
    ev.model(m)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name in args["conditions"]:
    ev.evaluate_many(models, parse_condition(name))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024   # ru_maxrss: bytes on macOS, KiB elsewhere
print(json.dumps({"peak_bytes": peak * scale, "after_loading_bytes": loaded * scale, "evaluations": ev.counts}))
"""


def _write_dataset(root: Path, n_clips: int, n_small: int, seconds: float) -> list[Path]:
    """A TAU-layout folder of synthetic 10-s, 44.1 kHz, 24-bit clips: ``evaluate`` lists all, ``train`` the first
    ``n_small`` (the two clip counts measured)."""
    from codecbench.datasets.synth import SCENES

    rows = []
    for i in range(n_clips):
        scene = SCENES[i % len(SCENES)]
        rel = f"audio/{scene}-memory-{i:04d}-a.wav"
        (root / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, synth_scene(i % len(SCENES), np.random.default_rng(i), seconds, 44100), 44100,
                 subtype="PCM_24")
        rows.append(f"{rel}\t{scene}")
    setup = root / "evaluation_setup"
    setup.mkdir(parents=True, exist_ok=True)
    header = "filename\tscene_label\n"
    (setup / "fold1_evaluate.csv").write_text(header + "\n".join(rows) + "\n")
    (setup / "fold1_train.csv").write_text(header + "\n".join(rows[:n_small]) + "\n")
    return [root / row.split("\t")[0] for row in rows]


def _measure(dataset: Path, cache: Path, zoo: Path, split: str, conditions: list[str]) -> dict:
    args = json.dumps({"dataset": str(dataset), "cache": str(cache), "zoo": str(zoo), "split": split,
                       "conditions": conditions})
    done = subprocess.run([sys.executable, "-c", _CHILD, args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise MeasurementError(f"memory measurement failed ({split}, {conditions}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_memory(clips: int = 40, more_clips: int = 120, seconds: float = 10.0) -> dict:
    """Peak RSS of evaluation at TAU's clip shape: the paper-size 15-model zoo on ``clips`` clips and one condition,
    and base alone on ``clips`` clips x 1 and x all 8 conditions and on ``more_clips`` clips; the growth per
    condition and per clip, and the paper's evaluation extrapolated from them."""
    from codecbench.datasets.synth import SCENES
    from codecbench.models import preset_config

    conds = [c for c in load_matrix().validation if codecs.availability(c)[0]]
    with tempfile.TemporaryDirectory(prefix="codecbench-memory-") as tmp:
        root, cache = Path(tmp) / "data", Cache(Path(tmp) / "cache")
        paths = _write_dataset(root, more_clips, clips, seconds)
        fill(paths[:clips], conds, cache, with_features=True, progress=False)
        fill(paths[clips:], conds[:1], cache, with_features=True, progress=False)
        frames = 1 + int(seconds * 44100) // 1024 - 8
        meta = {"config": preset_config("paper", (128, frames, 3), len(SCENES)).to_dict(),
                "class_names": list(SCENES), "strategy": "benchmark stand-in (random weights)"}
        full, alone = Zoo(Path(tmp) / "zoo15"), Zoo(Path(tmp) / "zoo1")
        for name, model in paper_like_zoo((128, frames, 3)).items():
            full.save(name, model, meta)
            if name == "base":
                alone.save(name, model, meta)
        one = [conds[0].name]
        runs = {"zoo": _measure(root, cache.root, full.root, "train", one),
                "base": _measure(root, cache.root, alone.root, "train", one),
                "base_all_conditions": _measure(root, cache.root, alone.root, "train", [c.name for c in conds]),
                "base_more_clips": _measure(root, cache.root, alone.root, "evaluate", one)}
    per_condition = max(0.0, (runs["base_all_conditions"]["peak_bytes"] - runs["base"]["peak_bytes"])
                        / max(1, len(conds) - 1))
    per_clip = max(0.0, (runs["base_more_clips"]["peak_bytes"] - runs["base"]["peak_bytes"]) / (more_clips - clips))
    n_eval = PAPER_COUNTS["evaluate_clips"]
    paper = runs["zoo"]["peak_bytes"] + per_clip * (n_eval - clips) + per_condition * (8 - 1)
    return {"clips": clips, "more_clips": more_clips, "conditions": [c.name for c in conds], "runs": runs,
            "per_condition_bytes": per_condition, "per_clip_bytes": per_clip,
            "paper": {"clips": n_eval, "conditions": 8, "models": PAPER_COUNTS["models"], "peak_bytes": paper},
            "bound_bytes": BOUND_BYTES, "within_bound": paper <= BOUND_BYTES}


def format_memory_bench(result: dict) -> str:
    gib, mib = float(1 << 30), float(1 << 20)
    r, n, m = result["runs"], result["clips"], len(result["conditions"])
    rows = ["peak memory of evaluation (fresh processes, warm cache, inputs streamed from the cache as at the "
            "paper's size; 10-s clips, paper FCNN):",
            f"  15 paper-size models, {n} clips x 1 condition: {r['zoo']['peak_bytes'] / gib:.2f} GiB "
            f"({r['zoo']['after_loading_bytes'] / gib:.2f} GiB after loading the models)",
            f"  base alone, {n} clips x 1 condition: {r['base']['peak_bytes'] / mib:,.0f} MiB; x {m} conditions: "
            f"{r['base_all_conditions']['peak_bytes'] / mib:,.0f} MiB; {result['more_clips']} clips x 1: "
            f"{r['base_more_clips']['peak_bytes'] / mib:,.0f} MiB",
            f"  growth: {result['per_condition_bytes'] / 2**20:.1f} MiB per condition, "
            f"{result['per_clip_bytes'] / 2**10:.1f} KiB per clip",
            f"  the paper's evaluation ({result['paper']['clips']:,} clips x {result['paper']['conditions']} "
            f"conditions x {result['paper']['models']} models), from these: "
            f"{result['paper']['peak_bytes'] / gib:.2f} GiB peak; bound {result['bound_bytes'] / gib:.0f} GiB: "
            f"{'met' if result['within_bound'] else 'MISSED'}"]
    return "\n".join(rows)
