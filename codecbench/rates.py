"""Measured rates a plan prices a run with, and which stage bounds it.

:class:`Rates` holds the rates of one machine: the model's (training examples/s, inference clips/s, from
``codecbench bench model --json``), the feed's (clips/s per worker process, from ``bench feed --json``) and coding's
(core-seconds per pair). They come from files written on another machine (``--rates``) or are measured here
(:func:`local_rates`). :func:`bottleneck` says whether the model or the feed bounds a stage that needs both.
"""
from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from . import features
from .errors import CodecbenchError


def median_time(func, repeats: int = 3, warmup: bool = True) -> float:
    """Median seconds of ``repeats`` calls, after one warm-up call (first-call imports, codec init, tracing)."""
    if warmup:
        func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclasses.dataclass(frozen=True)
class Rates:
    """The measured rates a plan prices a run with, on this machine or another one.

    ``codecbench bench model --json`` (the paper FCNN: training examples/s at batch x 400 frames, inference
    clips/s of 10-s clips, at the precision ``auto`` picked there) and ``codecbench bench feed --json`` (cached
    features read and finished per feed worker, and coding + features per core) written on a machine give its rates:
    :meth:`from_files` (``--rates FILE[,FILE]``). A field left None is measured here (:func:`local_rates`).
    """

    source: str
    cores: int | None = None
    device: str | None = None
    precision: str | None = None
    train_examples_per_s: float | None = None
    inference_clips_per_s: float | None = None
    #: paper-size clips/s one feed worker reads and finishes (features), and the workers that feed the model
    feed_clips_per_s_per_worker: float | None = None
    feed_workers: int | None = None
    #: seconds of one core to code and featurise one 10-s clip under one condition
    fill_seconds_per_pair: float | None = None

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> "Rates":
        """Rates from the JSON files of ``bench model --json`` and ``bench feed --json`` (either or both)."""
        import json

        fields: dict = {"source": ", ".join(str(p) for p in paths)}
        for path in paths:
            path = Path(path)
            try:
                doc = json.loads(path.read_text())
            except OSError as exc:
                raise RatesError(f"--rates {path}: cannot read it ({exc.strerror or exc})") from None
            except ValueError as exc:
                raise RatesError(f"--rates {path}: not JSON ({exc})") from None
            if isinstance(doc, dict) and isinstance(doc.get("rates"), dict):  # bench model --json
                r = doc["rates"]
                fields.update(train_examples_per_s=_positive(r, "train_examples_per_s", path),
                              inference_clips_per_s=_positive(r, "inference_clips_per_s", path),
                              precision=str(r.get("precision", "")), device=str(r.get("device", "")))
            elif isinstance(doc, dict) and isinstance(doc.get("modes"), dict):  # bench feed --json
                per_worker = doc.get("feed_clips_per_s_per_worker") or {}
                fields.update(feed_clips_per_s_per_worker=_positive(per_worker, "features", path),
                              cores=int(_positive(doc, "cores", path)),
                              fill_seconds_per_pair=1.0 / _positive(doc, "fill_clips_per_s_per_core", path))
                fields["feed_workers"] = max(1, fields["cores"] - 1)
            else:
                raise RatesError(f"--rates {path}: neither `codecbench bench model --json` nor `bench feed --json` "
                                 "output (no 'rates' or 'modes' key)")
        return cls(**fields)


class RatesError(CodecbenchError, ValueError):
    """A rates file that cannot be used; the message names the file and the key."""


def _positive(doc: dict, key: str, path: Path) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise RatesError(f"--rates {path}: {key} is {value!r}, expected a positive number")
    return float(value)


def bottleneck(model_per_s: float, feed_per_s: float | None, workers: int | None, device: str) -> tuple[float, str]:
    """The rate of a stage that needs the model and the feed at once (they overlap), and which of them bounds it."""
    if feed_per_s is None or not workers:
        return model_per_s, f"the model ({device})"
    feed = feed_per_s * workers
    return (model_per_s, f"the model ({device})") if model_per_s <= feed else \
        (feed, f"the feed ({workers} worker{'s' if workers > 1 else ''})")



@functools.lru_cache(maxsize=None)
def feed_seconds(clip_seconds: float = 10.0) -> float:
    """Seconds one core takes to read one cached feature entry and finish it (checksum, deltas): the feed's work."""
    from .cache import decode_entry, encode_entry

    frames = 1 + int(clip_seconds * features.RECIPE["sample_rate"]) // features.RECIPE["hop_length"]
    blob = encode_entry(np.random.default_rng(0).random((features.RECIPE["n_mels"], frames), dtype=np.float32), {})
    return median_time(lambda: features.with_deltas(decode_entry(blob)[0]), 3)


def local_rates(rates: Rates | None = None) -> Rates:
    """``rates`` with what it leaves out (or everything) filled in for this machine: its cores, its feed workers
    (:func:`codecbench.devices.feed_workers`) and the feed's per-core rate; the model's are timed per config."""
    from .devices import _cores, feed_workers

    rates = rates or Rates("this machine")
    workers = rates.feed_workers if rates.feed_workers is not None else feed_workers()
    per_worker = rates.feed_clips_per_s_per_worker or 1.0 / feed_seconds()
    return dataclasses.replace(rates, cores=rates.cores or _cores(), feed_workers=workers,
                               feed_clips_per_s_per_worker=per_worker)


