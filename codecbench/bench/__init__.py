"""Performance benchmarks that print figures (``codecbench bench codecs|fill|feed|model|...``); never timed tests.

Ratios are measured side by side in one run, because shared machines are noisy.
"""
from __future__ import annotations

from typing import Callable

from codecbench.bench.augment import bench_augment, format_augment_bench
from codecbench.bench.codec_speed import bench_codecs, format_codec_bench
from codecbench.bench.feed import bench_feed, format_feed_bench
from codecbench.bench.fill import bench_fill, format_fill_bench
from codecbench.bench.memory import bench_memory, format_memory_bench
from codecbench.bench.model_speed import bench_finetune, bench_model, format_finetune_bench, format_model_bench
from codecbench.bench.pipeline import bench_pipeline, format_pipeline_bench
from codecbench.bench.plan_check import bench_plan, format_plan_bench
from codecbench.bench.precision import bench_precision, format_precision_bench
from codecbench.bench.prefix import bench_prefix, format_prefix_bench
from codecbench.bench.scale import bench_scale, format_scale_bench
from codecbench.bench.shared_pass import bench_shared_pass, format_shared_pass_bench

#: ``codecbench bench <what>``: the measurement and its text form
BENCHMARKS: dict[str, tuple[Callable[..., dict], Callable[[dict], str]]] = {
    "codecs": (bench_codecs, format_codec_bench), "model": (bench_model, format_model_bench),
    "finetune": (bench_finetune, format_finetune_bench), "scale": (bench_scale, format_scale_bench),
    "pipeline": (bench_pipeline, format_pipeline_bench), "prefix": (bench_prefix, format_prefix_bench),
    "precision": (bench_precision, format_precision_bench), "memory": (bench_memory, format_memory_bench),
    "augment": (bench_augment, format_augment_bench), "feed": (bench_feed, format_feed_bench),
    "fill": (bench_fill, format_fill_bench), "plan": (bench_plan, format_plan_bench),
    "shared": (bench_shared_pass, format_shared_pass_bench)}
