"""Training loops: base training from scratch and fine-tuning (all of a model or some segments).

The baseline's recipe is the default: SGD with momentum 0.9, batch 32, learning rate 0.1 with
warm restarts (cosine decay, first restart after 3 epochs, period doubling, minimum 1e-4 of the
initial rate), mixup with alpha 0.4, random crops of 400 frames, and one time and one frequency
mask per example. Data augmentation runs in NumPy on a seeded generator, and the model in
``keras`` only, so the loop is deterministic for a seed and backend-agnostic.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from codecbench.core.backend import keras
from codecbench.errors import ModelError, UsageError
from codecbench.models.segments import freeze_except
from codecbench.store.devices import default_device, reader_threads, resolve_devices
from codecbench.store.feed import feeding
from codecbench.training.precision import resolve_precision, with_precision
from codecbench.training.schedule import FINETUNE_DEFAULTS, TrainConfig  # noqa: F401  (re-exported)


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, cropped, masked and mixed batches from a feature getter; one seeded RNG per epoch."""

    def __init__(self, get: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, n_classes: int,
                 config: TrainConfig, augment: bool = True, workers: int | None = None):
        # threads that build batches ahead of the model (a batch is a pure function of (seed, epoch, index), so
        # their order cannot change what is trained): one on a CPU, more to keep an accelerator fed
        super().__init__(workers=workers or reader_threads(), use_multiprocessing=False)
        self.get, self.labels, self.n_classes, self.config, self.augment = get, labels, n_classes, config, augment
        self.epoch = 0
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        """The shuffled clip order of ``epoch`` (the last two epochs' kept: readers cross an epoch's end together)."""
        order = self._orders.get(epoch)
        if order is None:  # (reader threads may race here: each makes the same order)
            order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.labels))
            self._orders[epoch] = order
            for old in sorted(self._orders)[:-2]:
                self._orders.pop(old, None)
        return order

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.config.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Batches of ``epoch`` from now on. Set by the training loop's own callback at the start of each epoch
        rather than counted in ``on_epoch_end``: how often Keras calls that (and whether it reads batches ahead,
        for a shape probe or a distributed iterator) depends on the backend and strategy, the epoch number does
        not, so a batch's content is a function of (seed, epoch, index) alone."""
        self.epoch = epoch

    def __getitem__(self, index: int):
        return self.batch_of(self.epoch, index)

    def batch_of(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of ``epoch``: a pure function of (seed, epoch, index), whoever asks and when."""
        cfg = self.config
        idx = self.order(epoch)[index * cfg.batch_size:(index + 1) * cfg.batch_size]
        x = np.asarray(self.get(idx), dtype=np.float32)
        y = keras.utils.to_categorical(self.labels[idx], self.n_classes).astype(np.float32)
        if not self.augment:
            return x, y
        rng = np.random.default_rng([cfg.seed, epoch, index])
        frames = x.shape[2]
        if cfg.crop_frames and cfg.crop_frames < frames:
            starts = rng.integers(0, frames - cfg.crop_frames + 1, size=len(x))
            x = np.stack([xi[:, s:s + cfg.crop_frames] for xi, s in zip(x, starts)])
        x = x.copy()
        for xi in x:
            if cfg.freq_mask_bins:
                w = int(rng.integers(0, cfg.freq_mask_bins + 1))
                f0 = int(rng.integers(0, xi.shape[0] - w + 1))
                xi[f0:f0 + w] = 0.0
            if cfg.time_mask_frames:
                w = int(rng.integers(0, min(cfg.time_mask_frames, xi.shape[1] // 4) + 1))
                t0 = int(rng.integers(0, xi.shape[1] - w + 1))
                xi[:, t0:t0 + w] = 0.0
        if cfg.mixup_alpha > 0 and len(x) > 1:
            lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, size=len(x)).astype(np.float32)
            perm = rng.permutation(len(x))
            x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
            y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
        return x, y


class NonFiniteLoss(ModelError):
    """Training made the loss NaN or infinite (a learning rate too high, or inputs that are not numbers): stopped,
    and nothing of it is saved."""


class FiniteLossGuard(keras.callbacks.Callback):
    """Stops training with :class:`NonFiniteLoss` at the end of the first epoch whose loss is not finite (checked per
    epoch, not per batch, so an accelerator is not made to wait on the host every batch)."""

    def __init__(self, what: str = "training"):
        super().__init__()
        self.what = what

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if "loss" in key and not math.isfinite(float(value)):
                raise NonFiniteLoss(f"{self.what} stopped at epoch {epoch + 1}: {key} is {float(value)} (a learning "
                                    "rate too high, or inputs that are not finite); nothing was saved")


class _EpochLog(keras.callbacks.Callback):
    def __init__(self, n_samples: int, on_epoch: Callable[[int, dict], None] | None, devices: list[str],
                 batches: AugmentedBatches | None = None):
        super().__init__()
        self.n_samples, self.on_epoch, self.devices = n_samples, on_epoch, devices
        self.rows: list[dict] = []
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        if self.batches is not None:
            self.batches.set_epoch(epoch)
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        row = {"epoch": epoch + 1, "seconds": seconds, "samples_per_s": self.n_samples / seconds,
               "devices": list(self.devices),
               **{k: float(v) for k, v in (logs or {}).items()}}
        self.rows.append(row)
        if self.on_epoch:
            self.on_epoch(epoch + 1, row)


def fit(model: keras.Model, get: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, config: TrainConfig,
        segments: Sequence[int] | None = None, on_epoch: Callable[[int, dict], None] | None = None,
        initial_epoch: int = 0, verbose: int | str = "auto", devices: Sequence[str] | None = None, *,
        batches: keras.utils.PyDataset | None = None, setup_lock: Any = None) -> list[dict]:
    """Train ``model`` in place (only ``segments`` if given) and return one row of figures per epoch.

    ``on_epoch(epoch, row)`` runs after every epoch, e.g. to save a checkpoint; a
    ``KeyboardInterrupt`` propagates after the last completed epoch's callback has run. ``devices``: train
    data-parallel over these (default: as ``config.devices`` says; :func:`training_twin`; the global
    batch is ``config.batch_size``). ``batches``: this run's view of batches read once for several runs
    (:class:`codecbench.training.shared.SharedBatches`), instead of its own reading of ``get``; ``setup_lock``: held
    from seeding to compiling, so runs in threads set up one after another as they would in turn.
    """

    # ``setup_lock``: from seeding to compiling (what draws on the global random state), runs in threads one at a time
    lock = setup_lock if setup_lock is not None else contextlib.nullcontext()
    with contextlib.ExitStack() as setting_up:
        setting_up.enter_context(lock)
        keras.utils.set_random_seed(config.seed)
        freeze_except(model, list(segments) if segments is not None else None)
        target = model
        # a mixed-precision or distributed twin trains; ``model`` (float32, as saved) gets its weights before every
        # epoch callback
        devices = list(devices) if devices is not None else resolve_devices(config.devices)
        model, scope = training_twin(target, precision=config.precision, devices=devices or None)
        n_classes = int(model.output_shape[-1])
        if batches is None:
            if callable(getattr(get, "take", None)):  # a cache reader: read by worker processes where an
                reader: Any = get  # accelerator waits (a reader of codecbench.store.inputs: it has take and __len__)
                get = feeding(reader)
            batches = AugmentedBatches(get, np.asarray(labels), n_classes, config)
        batches.set_epoch(initial_epoch)
        if model is not target:
            def sync_then(epoch, row, _then=on_epoch):
                target.set_weights(model.get_weights())
                if _then:
                    _then(epoch, row)
            on_epoch = sync_then
        log = _EpochLog(len(labels), on_epoch, devices or [default_device()], batches)
        if verbose == "auto":  # a progress bar on a terminal, one line per epoch in logs
            verbose = 1 if sys.stdout.isatty() else 2
        with scope:  # (a distribution strategy's: the optimizer's variables must be created in it)
            optimizer = keras.optimizers.SGD(learning_rate=config.schedule(len(batches)), momentum=config.momentum)
            model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"],
                          jit_compile=False)
            if initial_epoch:
                optimizer.iterations.assign(initial_epoch * len(batches))
            setting_up.close()  # set up: the lock goes to the next run
            # shuffle=False: the batches are already shuffled per epoch, from the seed; Keras would reorder them
            # with Python's global random state, which depends on how many iterators the backend and strategy create
            model.fit(batches, epochs=config.epochs, initial_epoch=initial_epoch, callbacks=[log, FiniteLossGuard()],
                      verbose=verbose, shuffle=False)
    if model is not target:
        target.set_weights(model.get_weights())
    return log.rows


def array_getter(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A getter over an in-memory feature array."""
    return lambda idx: x[idx]


def training_twin(model, *, precision: str = "float32", devices: list[str] | None = None):
    """``(twin, scope)``: the model to train (``model`` itself when nothing changes) and the context its
    compile and fit must run in.

    Data-parallel training over ``devices`` (``--devices``; ``auto``: every local accelerator when there is more
    than one; :func:`codecbench.store.devices.resolve_devices`):

    - TensorFlow backend: ``tf.distribute.MirroredStrategy``; batch normalisation is made ``synchronized``, so its
      batch statistics are those of the whole global batch, as on one device.
    - JAX backend: Keras 3's ``keras.distribution.DataParallel`` over the JAX devices (one jitted program on the
      sharded global batch, so batch statistics are global too).
    - PyTorch backend: one device (Keras 3 has no multi-device distribution for it; a named error).

    Scaling: ``--batch-size`` stays the *global* batch (the recipe's 32 by default), split evenly across devices,
    and the learning rate is unchanged: each step's gradient is the mean over the same 32 examples as on one
    device, so the recipe and its results carry over. To use more devices for throughput, raise ``--batch-size``
    (e.g. 32 x devices) and scale ``--lr`` with it (the linear scaling rule); that is a different recipe.

    The model a caller holds stays float32 on the default device; training runs on a *twin* (same weights, the
    run's dtype policy, created under the strategy), whose weights are copied back before every epoch callback.
    """

    precision = resolve_precision(precision)
    if not devices:
        return with_precision(model, precision), contextlib.nullcontext()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            twin = with_precision(model, precision, synchronized_batchnorm=True)
        return twin, strategy.scope()
    if backend == "jax":
        import jax

        by_name = {str(d): d for d in jax.devices()}
        missing = [d for d in devices if d not in by_name]
        if missing:
            raise UsageError(f"--devices: JAX has no device {', '.join(missing)} (it has {', '.join(by_name)})")
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=[by_name[d] for d in devices]))
        # a clone made now places its variables by the distribution
        twin = keras.models.clone_model(model)
        twin.set_weights(model.get_weights())
        for source, target in zip(model.layers, twin.layers):
            target.trainable = source.trainable
        return with_precision(twin, precision), _distribution_scope()
    raise UsageError(f"data-parallel training needs the TensorFlow or JAX backend, not {backend} "
                     f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND', '')!r})")


@contextlib.contextmanager
def _distribution_scope():
    try:
        yield
    finally:
        keras.distribution.set_distribution(None)
