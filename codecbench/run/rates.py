"""Measured rates a plan prices a run with, and which stage bounds it.

:class:`Rates` holds the rates of one machine: the model's (training examples/s, inference clips/s, from
``codecbench bench model --json``), the feed's (clips/s per worker process, from ``bench feed --json``) and coding's
(core-seconds per pair). They come from files written on another machine (``--rates``) or are measured here
(:func:`local_rates`); coding is calibrated here on a few synthetic scenes (:func:`codec_seconds`,
:func:`decode_seconds`, :func:`feature_seconds`, :func:`fill_overhead_seconds`). :func:`bottleneck` says whether the
model or the feed bounds a stage that needs both.
"""
from __future__ import annotations

import dataclasses
import dataclasses as _dc
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from codecbench import codecs
from codecbench.codecs import Condition
from codecbench.core.cache import Cache, decode_entry, encode_entry
from codecbench.core.parallel import usable_cores
from codecbench.errors import DataError
from codecbench.models.io import save_model
from codecbench.signal import features
from codecbench.store.devices import default_device, feed_workers
from codecbench.store.fill import fill
from codecbench.store.inputs import INPUT_BUDGET_BYTES
from codecbench.training.schedule import TrainConfig


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
    #: training examples/s with one segment fine-tuned alone, per segment (``bench model --segments``; pairs, so the
    #: rates stay hashable and frozen)
    segment_train_examples_per_s: tuple[tuple[int, float], ...] = ()
    #: paper-size clips/s one feed worker reads and finishes (features), and the workers that feed the model
    feed_clips_per_s_per_worker: float | None = None
    feed_workers: int | None = None
    #: seconds of one core to code and featurise one 10-s clip under one condition, workers warm (steady state)
    fill_seconds_per_pair: float | None = None
    #: seconds a fresh fill worker takes before its first clip (imports, codec libraries): once per run, not per pair
    worker_startup_seconds: float | None = None
    #: seconds of one core to featurise one 10-s clip of the original (no codec: read, hash, log-mel, write), workers
    #: warm; None (an older file): such a pair is priced as a coded one
    fill_seconds_per_original: float | None = None

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> "Rates":
        """Rates from the JSON files of ``bench model --json`` and ``bench feed --json`` (either or both)."""

        fields: dict = {"source": ", ".join(str(p) for p in paths)}
        for path in paths:
            path = Path(path)
            try:
                doc = json.loads(path.read_text())
            except OSError as exc:
                raise RatesError(f"{path}: cannot read it ({exc.strerror or exc})") from None
            except ValueError as exc:
                raise RatesError(f"{path}: not JSON ({exc})") from None
            if isinstance(doc, dict) and isinstance(doc.get("rates"), dict):  # bench model --json
                r = doc["rates"]
                fields.update(train_examples_per_s=_positive(r, "train_examples_per_s", path),
                              inference_clips_per_s=_positive(r, "inference_clips_per_s", path),
                              precision=str(r.get("precision", "")), device=str(r.get("device", "")))
                if "segment_train_examples_per_s" in r:
                    fields["segment_train_examples_per_s"] = _segment_rates(r["segment_train_examples_per_s"], path)
            elif isinstance(doc, dict) and isinstance(doc.get("modes"), dict):  # bench feed --json
                per_worker = doc.get("feed_clips_per_s_per_worker") or {}
                fields.update(feed_clips_per_s_per_worker=_positive(per_worker, "features", path),
                              cores=int(_positive(doc, "cores", path)),
                              fill_seconds_per_pair=1.0 / _positive(doc, "fill_clips_per_s_per_core", path))
                # files written before start-up was measured apart have none: their fill rate includes it
                if "worker_startup_s" in doc:
                    fields["worker_startup_seconds"] = _non_negative(doc, "worker_startup_s", path)
                if "fill_original_clips_per_s_per_core" in doc:
                    fields["fill_seconds_per_original"] = \
                        1.0 / _positive(doc, "fill_original_clips_per_s_per_core", path)
                fields["feed_workers"] = max(1, fields["cores"] - 1)
            else:
                raise RatesError(f"{path}: neither `codecbench bench model --json` nor `bench feed --json` "
                                 "output (no 'rates' or 'modes' key)")
        return cls(**fields)


class RatesError(DataError, ValueError):
    """A rates file that cannot be used; the message names the file and the key."""


def _positive(doc: dict, key: str, path: Path) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise RatesError(f"{path}: {key} is {value!r}, expected a positive, finite number")
    return float(value)


def _segment_rates(value, path: Path) -> tuple[tuple[int, float], ...]:
    """``{"1": rate, ...}`` of a rates file: every key a segment number from 1, every rate positive."""
    key = "rates.segment_train_examples_per_s"
    if not isinstance(value, dict) or not value:
        raise RatesError(f"{path}: {key} is {value!r}, expected an object of segment numbers and examples/s")
    pairs = []
    for segment, rate in value.items():
        if not str(segment).isdigit() or int(segment) < 1:
            raise RatesError(f"{path}: {key} has the key {segment!r}, expected a segment number (1, 2, ...)")
        name = f"{key}[{segment}]"
        pairs.append((int(segment), _positive({name: rate}, name, path)))
    return tuple(sorted(pairs))


def _non_negative(doc: dict, key: str, path: Path) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise RatesError(f"{path}: {key} is {value!r}, expected a number >= 0 (seconds)")
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

    frames = 1 + int(clip_seconds * features.RECIPE["sample_rate"]) // features.RECIPE["hop_length"]
    blob = encode_entry(np.random.default_rng(0).random((features.RECIPE["n_mels"], frames), dtype=np.float32), {})
    return median_time(lambda: features.with_deltas(decode_entry(blob)[0]), 3)


#: What a fresh fill worker does before its first clip: the imports of a fill task and a first feature extraction
#: (librosa's first call builds its filters and caches).
_WORKER_START = ("import numpy as np, codecbench.store.fill, codecbench.signal.frontends as f; "
                 "f.BASELINE.stored(np.zeros(44100, np.float32), 44100)")


@functools.lru_cache(maxsize=None)
def worker_startup_seconds() -> float:
    """Seconds a fresh fill worker takes on this machine before its first clip: a new interpreter doing what a fill
    task does first (timed once per process; ``bench feed`` and ``bench fill`` measure it through real workers)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WORKER_START], capture_output=True, timeout=300, check=False)
    seconds = time.perf_counter() - start
    return seconds if done.returncode == 0 else 0.0


def local_rates(rates: Rates | None = None) -> Rates:
    """``rates`` with what it leaves out (or everything) filled in for this machine: its cores, its feed workers
    (:func:`codecbench.store.devices.feed_workers`) and the feed's per-core rate; the model's are timed per config."""

    rates = rates or Rates("this machine")
    workers = rates.feed_workers if rates.feed_workers is not None else feed_workers()
    per_worker = rates.feed_clips_per_s_per_worker or 1.0 / feed_seconds()
    return dataclasses.replace(rates, cores=rates.cores or usable_cores(), feed_workers=workers,
                               feed_clips_per_s_per_worker=per_worker)


def model_rates(config, *, batch_size: int, crop_frames: int | None, full_frames: int, train: bool = True,
                rates: Rates | None = None, train_config=None) -> dict:
    """Training examples/s (at ``batch_size`` x ``crop_frames``) and inference clips/s (full length) of the FCNN
    of ``config`` (an :class:`~codecbench.models.FCNNConfig`): from ``rates`` when they hold them (measured on
    another machine with ``bench model``), else on the device Keras sees here, from a few steps on random input
    (once per process for the same model, shapes, schedule and precision policy)."""
    if rates is not None and rates.inference_clips_per_s and (rates.train_examples_per_s or not train):
        return {"backend": rates.device or "", "inference_clips_per_s": rates.inference_clips_per_s,
                "train_examples_per_s": rates.train_examples_per_s, "device": rates.device or "another machine"}
    # measured once per process, model, shapes and schedule, as the codecs' calibration is: a command that plans
    # twice (reproduce's plan, then a resumed run's in the same process) trained the same two short epochs again
    from codecbench.core.backend import keras

    key = json.dumps([dataclasses.asdict(config), batch_size, crop_frames, full_frames, train,
                      dataclasses.asdict(train_config) if train_config is not None else None,
                      keras.config.dtype_policy().name], sort_keys=True, default=str)
    if key not in _MEASURED:
        _MEASURED[key] = _measure_model(config, batch_size=batch_size, crop_frames=crop_frames,
                                        full_frames=full_frames, train=train, train_config=train_config)
    return dict(_MEASURED[key])


#: :func:`model_rates` measured in this process, by model, shapes and schedule
_MEASURED: dict[str, dict] = {}


def _measure_model(config, *, batch_size: int, crop_frames: int | None, full_frames: int, train: bool,
                   train_config) -> dict:
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn

    model = build_fcnn(config)
    channels = config.input_shape[-1]
    rng = np.random.default_rng(0)
    out = {"backend": keras.backend.backend(), "device": default_device()}
    # the evaluator's batch: as many clips as fit its input budget (capped, to keep the calibration short)
    eval_batch = max(1, min(64, INPUT_BUDGET_BYTES // (config.input_shape[0] * full_frames * channels * 4)))
    x_eval = rng.random((eval_batch, config.input_shape[0], full_frames, channels), dtype=np.float32)
    out["inference_clips_per_s"] = eval_batch / median_time(lambda: model.predict_on_batch(x_eval), 1)
    if train:

        out.update(calibrate_training(model, train_config or TrainConfig(batch_size=batch_size,
                                                                         crop_frames=crop_frames), full_frames))
    return out


def calibrate_training(model, train_config, full_frames: int, batches: int = 2) -> dict:
    """Training examples/s through the real training loop, and the seconds one checkpoint save takes.

    A short measured run: :func:`~codecbench.training.loop.fit` for two epochs of ``batches`` batches of random
    features at the clips' length (augmentation, crops, mixup, the learning-rate schedule, the epoch callback), the
    second epoch timed (the first compiles); then the model saved once as a checkpoint is. Timing
    ``train_on_batch`` alone missed the loop's own work and the save after every epoch (``train --dry-run`` said
    48 s per epoch where epochs took 79-133 s).
    """

    from codecbench.training.loop import fit

    n_classes = int(model.output_shape[-1])
    n = batches * train_config.batch_size
    rng = np.random.default_rng(0)
    x = rng.random((n, model.input_shape[1], full_frames, model.input_shape[-1]), dtype=np.float32)
    labels = np.arange(n) % n_classes
    marks: list[float] = []
    config = _dc.replace(train_config, epochs=2, devices=None) if hasattr(train_config, "devices") else \
        _dc.replace(train_config, epochs=2)
    fit(model, lambda idx: x[np.sort(idx)], labels, config, verbose=0,
        on_epoch=lambda epoch, row: marks.append(time.perf_counter()))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        save_model(model, Path(folder) / "calibration.keras", {"strategy": "calibration"})
    save_seconds = time.perf_counter() - start
    return {"train_examples_per_s": n / max(marks[1] - marks[0], 1e-9), "save_seconds": save_seconds}


# --------------------------------------------------------------------------- coding, calibrated here

#: The scenes a calibration codes (classes spread over the ten: an encoder's time depends on what it codes, and one
#: scene read 15 % fast for MP3).
CALIBRATION_SCENES = (0, 3, 6, 9)


@functools.lru_cache(maxsize=None)
def calibration_clips(clip_seconds: float = 10.0) -> tuple[np.ndarray, ...]:
    """The synthetic scenes every calibration codes and featurises (made once: a 10-s scene takes longer to make
    than to code)."""
    from codecbench.datasets import synth_scene

    clips = tuple(synth_scene(c, np.random.default_rng(c), clip_seconds, 44100) for c in CALIBRATION_SCENES)
    for clip in clips:
        clip.setflags(write=False)  # shared by every calibration
    return clips


def _mean_time(func, clips) -> float:
    func(clips[0])  # first-call costs (a codec library's set-up) are start-up, not a rate
    return statistics.mean(median_time(lambda: func(x), 1, warmup=False) for x in clips)


@functools.lru_cache(maxsize=None)
def codec_seconds(cond: Condition, clip_seconds: float = 10.0) -> float:
    """Seconds to code one clip of ``clip_seconds`` under ``cond`` on one core (the mean over the calibration
    scenes)."""
    if cond.is_original:
        return 0.0
    return _mean_time(lambda x: codecs.encode(x, 44100, cond), calibration_clips(clip_seconds))


@functools.lru_cache(maxsize=None)
def decode_seconds(cond: Condition, clip_seconds: float = 10.0) -> float:
    """Seconds to decode one clip coded under ``cond`` (the fill decodes what it featurises)."""
    if cond.is_original:
        return 0.0
    bitstreams = [codecs.encode(x, 44100, cond) for x in calibration_clips(clip_seconds)]
    return _mean_time(codecs.decode, bitstreams)


@functools.lru_cache(maxsize=None)
def feature_seconds(clip_seconds: float = 10.0) -> float:
    return _mean_time(features.static, calibration_clips(clip_seconds))


@functools.lru_cache(maxsize=None)
def fill_overhead_seconds(clip_seconds: float = 10.0) -> float:
    """Seconds per (clip, condition) that a fill spends besides coding and featurising: reading and hashing the
    source, and writing the bitstream and the features to the cache (each synced to disk), timed by filling the
    calibration scenes uncoded into a temporary cache less their features' own time."""

    clips = calibration_clips(clip_seconds)
    with tempfile.TemporaryDirectory(prefix="codecbench-calibration-") as tmp:
        paths = []
        for i, x in enumerate(clips):
            paths.append(str(Path(tmp) / f"scene{i}.wav"))
            sf.write(paths[-1], x, 44100, subtype="PCM_16")
        featurising = feature_seconds(clip_seconds)
        fill(paths[:1], [codecs.ORIGINAL], Cache(Path(tmp) / "warm-up"), with_features=True, jobs=1, progress=False)
        cache = Cache(Path(tmp) / "cache")
        start = time.perf_counter()
        fill(paths, [codecs.ORIGINAL], cache, with_features=True, jobs=1, progress=False)
        per_clip = (time.perf_counter() - start) / len(paths)
        # the original's fill reads, hashes, featurises and writes once; a coded pair also writes its bitstream
        # (about 10 kB per second of audio at 64 kbps)
        payload = np.zeros(int(8000 * clip_seconds), dtype=np.uint8)
        keys = iter(range(10))
        write = median_time(lambda: cache.store("coded", f"{next(keys):064x}", payload), 3)
    return max(0.0, per_clip - featurising) + write
