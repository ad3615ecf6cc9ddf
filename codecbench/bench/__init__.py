"""Performance benchmarks that print figures (``codecbench bench codecs|fill|feed|model|...``); never timed tests.

Ratios are measured side by side in one run, because shared machines are noisy.
"""
from __future__ import annotations

import importlib
from typing import Callable

#: ``codecbench bench <what>``: the module of ``codecbench.bench`` that measures it, its measuring function and the
#: function that formats its result as text. Imported when asked for: a benchmark that times codecs must not pay
#: for importing Keras, nor make the worker processes it starts (which import the module their work comes from)
#: pay for it.
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "codecs": ("codec_speed", "bench_codecs", "format_codec_bench"),
    "model": ("model_speed", "bench_model", "format_model_bench"),
    "finetune": ("model_speed", "bench_finetune", "format_finetune_bench"),
    "scale": ("scale", "bench_scale", "format_scale_bench"),
    "pipeline": ("pipeline", "bench_pipeline", "format_pipeline_bench"),
    "prefix": ("prefix", "bench_prefix", "format_prefix_bench"),
    "precision": ("precision", "bench_precision", "format_precision_bench"),
    "memory": ("memory", "bench_memory", "format_memory_bench"),
    "augment": ("augment", "bench_augment", "format_augment_bench"),
    "feed": ("feed", "bench_feed", "format_feed_bench"),
    "fill": ("fill", "bench_fill", "format_fill_bench"),
    "plan": ("plan_check", "bench_plan", "format_plan_bench"),
    "shared": ("shared_pass", "bench_shared_pass", "format_shared_pass_bench")}


def benchmark(what: str) -> tuple[Callable[..., dict], Callable[[dict], str]]:
    """The measuring function of ``codecbench bench <what>`` and its text form (a key of :data:`BENCHMARKS`)."""
    module, run, show = BENCHMARKS[what]
    loaded = importlib.import_module(f"{__name__}.{module}")
    return getattr(loaded, run), getattr(loaded, show)
