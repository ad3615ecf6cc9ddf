"""The post-filter strategy (the paper's second option, which it did not test): enhance the coded input, keep the
classifier unchanged.

A small residual convolutional network maps the features of coded audio (the log-mel with its deltas, as the
classifier sees them) towards the features of the same clip uncoded. It is trained on the fine-tuning set
(every fine-tuning condition, paired clip by clip with the original; original -> original pairs too, so uncoded
audio passes through unharmed) with a mean squared error, then placed in front of the frozen parent as one zoo
model, ``<parent>+postfilter``. Its parameter count and the inference time it adds per clip are measured and kept
in the model's sidecar; benchmark runs copy them into their metadata and the report shows them beside the
accuracies.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from typing import Sequence

import numpy as np

from codecbench.codecs import ORIGINAL, Condition
from codecbench.codecs.matrix import Matrix
from codecbench.core.backend import keras
from codecbench.core.cache import Cache
from codecbench.core.vocabulary import ParallelBackend
from codecbench.datasets import Dataset
from codecbench.errors import ModelError
from codecbench.remedies.recipe import Work, prepare, sidecar
from codecbench.training.loop import FiniteLossGuard
from codecbench.training.schedule import TrainConfig
from codecbench.zoo import Parent, Zoo, check_name


class PostFilterError(ModelError):
    """A post-filter that cannot be trained for this parent or data; the message says why."""


@dataclasses.dataclass(frozen=True)
class PostFilterConfig:
    filters: int = 32
    layers: int = 4
    kernel: int = 3
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    crop_frames: int | None = 64
    seed: int = 0


def build_postfilter(channels: int, config: PostFilterConfig, name: str = "postfilter") -> keras.Model:
    """(bins, frames, channels) -> the same shape: the input plus a learnt correction (initially ~0)."""
    inputs = keras.Input(shape=(None, None, channels), name=f"{name}_in")
    x = inputs
    for i in range(config.layers - 1):
        x = keras.layers.Conv2D(config.filters, config.kernel, padding="same", activation="relu",
                                name=f"{name}_conv{i + 1}")(x)
    correction = keras.layers.Conv2D(channels, config.kernel, padding="same", kernel_initializer="zeros",
                                     name=f"{name}_out")(x)
    outputs = keras.layers.Add(name=f"{name}_residual")([inputs, correction])
    return keras.Model(inputs, outputs, name=name)


class _Pairs(keras.utils.PyDataset):
    """Batches of (coded features, original features) of the same clips, the same random crop for both."""

    def __init__(self, reader, sources: np.ndarray, targets: np.ndarray, config: PostFilterConfig):
        super().__init__(workers=1, use_multiprocessing=False)
        self.reader, self.sources, self.targets, self.config = reader, sources, targets, config
        self.epoch = 0

    def __len__(self):
        return math.ceil(len(self.sources) / self.config.batch_size)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __getitem__(self, index):
        cfg = self.config
        order = np.random.default_rng([cfg.seed, self.epoch]).permutation(len(self.sources))
        idx = order[index * cfg.batch_size:(index + 1) * cfg.batch_size]
        x, y = self.reader(self.sources[idx]), self.reader(self.targets[idx])
        frames = x.shape[2]
        if cfg.crop_frames and cfg.crop_frames < frames:
            rng = np.random.default_rng([cfg.seed, self.epoch, index])
            starts = rng.integers(0, frames - cfg.crop_frames + 1, size=len(x))
            x = np.stack([xi[:, s:s + cfg.crop_frames] for xi, s in zip(x, starts)])
            y = np.stack([yi[:, s:s + cfg.crop_frames] for yi, s in zip(y, starts)])
        return x.astype(np.float32), y.astype(np.float32)


class _SetEpoch(keras.callbacks.Callback):
    def __init__(self, data: _Pairs):
        super().__init__()
        self.data = data
        self.rows: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.data.set_epoch(epoch)
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch + 1, "seconds": time.perf_counter() - self._start,
                          **{k: float(v) for k, v in (logs or {}).items()}})


def pair_indices(paths: Sequence[str], conditions: Sequence[Condition]) -> tuple[np.ndarray, np.ndarray]:
    """For every training entry, the index of the same clip's original ("wav") entry: (sources, targets)."""
    original = {p: i for i, (p, c) in enumerate(zip(paths, conditions)) if c.is_original}
    sources = [i for i, p in enumerate(paths) if p in original]
    if not original or all(conditions[i].is_original for i in sources):
        raise PostFilterError("the post-filter learns coded -> original: the fine-tuning set needs the original "
                              "audio (finetune.include_original) and at least one coded condition")
    return np.array(sources), np.array([original[paths[i]] for i in sources])


def inference_seconds_per_clip(parent: keras.Model, combined: keras.Model, sample: np.ndarray,
                               repeats: int = 5) -> tuple[float, float]:
    """Median inference time per clip of ``combined`` and of ``parent``, measured interleaved on ``sample``."""
    parent.predict_on_batch(sample), combined.predict_on_batch(sample)  # trace
    with_pf, without = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(combined.predict_on_batch(sample))
        with_pf.append(time.perf_counter() - start)
        start = time.perf_counter()
        np.asarray(parent.predict_on_batch(sample))
        without.append(time.perf_counter() - start)
    return statistics.median(with_pf) / len(sample), statistics.median(without) / len(sample)


def train_postfilter(zoo: Zoo, parent: Parent, dataset: Dataset, matrix: Matrix, cache: Cache, *,
                     config: PostFilterConfig | None = None, name: str | None = None,
                     jobs: int | None = None, backend: ParallelBackend = "loky", scheduler: str | None = None,
                     overwrite: bool = False, verbose="auto") -> str:
    """Train a post-filter for ``parent`` (:meth:`Zoo.parent`) on the matrix's fine-tuning set and save
    ``<parent>+postfilter`` (or ``name``) into ``zoo``. Returns the name saved."""
    config = config or PostFilterConfig()
    parent_name = parent.name
    name = check_name(name or f"{parent_name}+postfilter")   # before training, not at the save after it
    # the original is always in: its features are the targets; the post-filter's schedule has no precision to
    # resolve (it trains in float32)
    schedule = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
                           crop_frames=config.crop_frames, seed=config.seed, mixup_alpha=0.0)
    set_up = prepare(parent, zoo, [name], dataset, [ORIGINAL] + [c for c in matrix.finetune if not c.is_original],
                     cache, schedule, overwrite=overwrite, work=Work(jobs, backend, scheduler),
                     resolve_precision=False)
    data, classifier, parent_meta = set_up.data, set_up.model, set_up.parent_meta
    sources, targets = pair_indices(data.features.paths, data.features.conditions)
    sample = data.features.get(0)
    postfilter = build_postfilter(sample.shape[-1], config)
    postfilter.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse", jit_compile=False)
    pairs = _Pairs(data.features, sources, targets, config)
    log = _SetEpoch(pairs)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.perf_counter()
    postfilter.fit(pairs, epochs=config.epochs, callbacks=[log, FiniteLossGuard("post-filter training")],
                   verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - start
    classifier.trainable = False
    inputs = keras.Input(shape=classifier.input_shape[1:], name="logmel")
    combined = keras.Model(inputs, classifier(postfilter(inputs)), name=name.replace("+", "_"))
    probe = data.features(range(min(8, len(data.features))))
    with_pf, without = inference_seconds_per_clip(classifier, combined, probe)
    # timing noise can make the difference negative on a tiny post-filter: the cost shown is never below 0
    added = max(0.0, with_pf - without)
    # the sidecar: the parent's facts (classes, front-end, network) plus the post-filter's own
    meta = sidecar(schedule, data, "postfilter", config.epochs, seconds, log.rows, parent_meta.get("config", {}),
                   parent_name, parent.sha256)
    meta.update(frontend=parent_meta.get("frontend"), class_map=parent_meta.get("class_map"),
                postfilter={"params": int(postfilter.count_params()), "architecture": dataclasses.asdict(config),
                            "classifier_params": int(classifier.count_params()),
                            "added_ms_per_clip": added * 1000, "ms_per_clip": with_pf * 1000,
                            "parent_ms_per_clip": without * 1000, "clip_shape": list(probe.shape[1:]),
                            "pairs": int(len(sources)), "final_loss": log.rows[-1].get("loss") if log.rows else None})
    zoo.save(name, combined, meta, overwrite=overwrite)
    return name
