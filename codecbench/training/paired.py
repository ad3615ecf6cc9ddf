"""Codec-invariant training: a classifier fine-tuned on pairs of a clip's uncoded and coded versions, with a
consistency loss that pulls its prediction on the coded version towards its prediction on the uncoded one.

The loss of a batch of pairs is

    CE(y, p_uncoded) / 2 + CE(y, p_coded) / 2 + weight * T^2 * KL(softened p_uncoded || softened p_coded)

where a prediction is softened by temperature ``T`` (``softmax(log p / T)``, as in distillation) and the uncoded
side of the KL term is held fixed (no gradient flows through it): the coded prediction moves towards the uncoded
one, not the other way. Both versions of a pair get the same crop, masks and mixup, so the only difference the
network sees is the codec's. Written in ``keras.ops``, so it runs on every Keras backend.
"""
from __future__ import annotations

import math
import sys
from typing import Callable

import numpy as np

from codecbench.core.backend import keras
from codecbench.store.devices import default_device
from codecbench.training.loop import FiniteLossGuard, _EpochLog
from codecbench.training.schedule import TrainConfig

ops = keras.ops

#: Probabilities are clipped to this before their logarithm (a softmax never reaches 0, a float32 one can).
EPSILON = 1e-7


def consistency_loss(p_uncoded, p_coded, temperature: float = 2.0):
    """Per example: ``T^2 * KL(softened p_uncoded || softened p_coded)``, the uncoded side held fixed; zero when
    the two predictions are equal."""
    log_u = ops.log(ops.clip(ops.stop_gradient(p_uncoded), EPSILON, 1.0)) / temperature
    log_c = ops.log(ops.clip(p_coded, EPSILON, 1.0)) / temperature
    log_su = log_u - ops.logsumexp(log_u, axis=-1, keepdims=True)
    log_sc = log_c - ops.logsumexp(log_c, axis=-1, keepdims=True)
    return temperature ** 2 * ops.sum(ops.exp(log_su) * (log_su - log_sc), axis=-1)


class ConsistencyModel(keras.Model):
    """Trains ``classifier`` on ``(uncoded, coded)`` pairs with :func:`consistency_loss` (module docstring); both
    halves go through the classifier as one batch, so batch normalisation sees both."""

    def __init__(self, classifier: keras.Model, *, weight: float = 1.0, temperature: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.classifier, self.weight, self.temperature = classifier, float(weight), float(temperature)

    def call(self, inputs, training=False):
        uncoded, coded = inputs
        return self.classifier(ops.concatenate([uncoded, coded], axis=0), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        n = ops.shape(y)[0]
        p_uncoded, p_coded = y_pred[:n], y_pred[n:]
        ce = (keras.losses.categorical_crossentropy(y, p_uncoded)
              + keras.losses.categorical_crossentropy(y, p_coded)) / 2
        loss = ops.mean(ce + self.weight * consistency_loss(p_uncoded, p_coded, self.temperature))
        # the classifier's own regularisation (none in the FCNN; a user's model may have some)
        return loss + sum(self.losses) if self.losses else loss


class PairedBatches(keras.utils.PyDataset):
    """Batches of (uncoded, coded) pairs from a stacked training set: item ``i`` is clip ``i`` uncoded, item
    ``k * clips + i`` clip ``i`` under the ``k``-th coded condition. An epoch visits every coded item once, in an
    order drawn from ``(seed, epoch)``; a pair shares its crop, masks and mixup, drawn from ``(seed, epoch, batch)``."""

    def __init__(self, get: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, n_clips: int, n_coded: int,
                 n_classes: int, config: TrainConfig):
        super().__init__(workers=1, use_multiprocessing=False)
        self.get, self.labels, self.n_clips, self.n_coded = get, np.asarray(labels), n_clips, n_coded
        self.n_classes, self.config, self.epoch = n_classes, config, 0
        self._order = self._shuffle()

    def _shuffle(self) -> np.ndarray:
        return np.random.default_rng([self.config.seed, self.epoch]).permutation(self.n_clips * self.n_coded)

    def __len__(self) -> int:
        return math.ceil(self.n_clips * self.n_coded / self.config.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self._order = self._shuffle()

    def __getitem__(self, index: int):
        cfg = self.config
        coded_items = self._order[index * cfg.batch_size:(index + 1) * cfg.batch_size]
        clips = coded_items % self.n_clips
        uncoded = np.asarray(self.get(clips), dtype=np.float32)
        coded = np.asarray(self.get(coded_items + self.n_clips), dtype=np.float32)
        y = keras.utils.to_categorical(self.labels[clips], self.n_classes).astype(np.float32)
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        frames = uncoded.shape[2]
        if cfg.crop_frames and cfg.crop_frames < frames:
            starts = rng.integers(0, frames - cfg.crop_frames + 1, size=len(clips))
            uncoded = np.stack([x[:, s:s + cfg.crop_frames] for x, s in zip(uncoded, starts)])
            coded = np.stack([x[:, s:s + cfg.crop_frames] for x, s in zip(coded, starts)])
        uncoded, coded = uncoded.copy(), coded.copy()
        for xu, xc in zip(uncoded, coded):
            if cfg.freq_mask_bins:
                w = int(rng.integers(0, cfg.freq_mask_bins + 1))
                f0 = int(rng.integers(0, xu.shape[0] - w + 1))
                xu[f0:f0 + w] = xc[f0:f0 + w] = 0.0
            if cfg.time_mask_frames:
                w = int(rng.integers(0, min(cfg.time_mask_frames, xu.shape[1] // 4) + 1))
                t0 = int(rng.integers(0, xu.shape[1] - w + 1))
                xu[:, t0:t0 + w] = xc[:, t0:t0 + w] = 0.0
        if cfg.mixup_alpha > 0 and len(clips) > 1:
            lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, size=len(clips)).astype(np.float32)
            perm = rng.permutation(len(clips))
            mix = lam[:, None, None, None]
            uncoded = mix * uncoded + (1 - mix) * uncoded[perm]
            coded = mix * coded + (1 - mix) * coded[perm]
            y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
        return (uncoded, coded), y


def fit_consistency(model: keras.Model, get: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, n_clips: int,
                    n_coded: int, config: TrainConfig, *, weight: float = 1.0, temperature: float = 2.0,
                    on_epoch: Callable[[int, dict], None] | None = None, verbose: int | str = "auto") -> list[dict]:
    """Fine-tune every parameter of ``model`` in place on the pairs of a stacked training set (``get``: item
    ``k * n_clips + i``, the original first; ``labels``: per clip) and return one row of figures per epoch. One
    device, the model's own precision."""

    keras.utils.set_random_seed(config.seed)
    for layer in model.layers:
        layer.trainable = True
    batches = PairedBatches(get, labels, n_clips, n_coded, int(model.output_shape[-1]), config)
    trainer = ConsistencyModel(model, weight=weight, temperature=temperature)
    log = _EpochLog(n_clips * n_coded, on_epoch, [default_device()], batches)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    optimizer = keras.optimizers.SGD(learning_rate=config.schedule(len(batches)), momentum=config.momentum)
    trainer.compile(optimizer=optimizer, jit_compile=False)
    trainer.fit(batches, epochs=config.epochs, callbacks=[log, FiniteLossGuard("consistency fine-tuning")],
                verbose=verbose, shuffle=False)
    return log.rows


def disagreement(predict: Callable[[np.ndarray], np.ndarray], get: Callable[[np.ndarray], np.ndarray], n_clips: int,
                 n_coded: int, batch_size: int = 64) -> float:
    """The share of (clip, coded condition) pairs whose predicted class differs from the uncoded clip's."""
    uncoded = _classes(predict, get, np.arange(n_clips), batch_size)
    coded = _classes(predict, get, np.arange(n_clips, n_clips * (n_coded + 1)), batch_size)
    return float(np.mean(coded != np.tile(uncoded, n_coded)))


def _classes(predict, get, items: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([np.argmax(predict(np.asarray(get(items[s:s + batch_size]), dtype=np.float32)), axis=1)
                           for s in range(0, len(items), batch_size)])
