"""``CodecAugmentedDataset``: codec augmentation of a fixed training set, epoch by epoch, from the cache.

Every clip gets a condition per epoch, drawn from ``(seed, epoch, clip index)`` alone, so the draw does not depend
on the order clips are asked for, on the number of data-loader workers or on the machine. What an epoch needs is
coded in one parallel fill (:func:`codecbench.encode.fill`), and only what the cache lacks: a (clip, condition)
met again in a later epoch is read back, never coded twice. Items are the decoded audio or a front-end's inputs
(log-mel features come from the feature cache). Adaptors hand the pool to PyTorch (``torch_dataset``), tf.data
(``tf_dataset``) and Keras (``keras_sequence``); the frameworks are imported only when asked for.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..cache import Cache
from ..codecs import ORIGINAL, Condition
from ..errors import ArgumentError
from .draw import ConditionDraw


class CodecAugmentedDataset:
    """A training set whose clips are coded under a condition drawn per clip and epoch.

    Parameters
    ----------
    source : Dataset or sequence of paths
        A codecbench dataset (its ``split`` is used, labels included) or audio files.
    conditions, codecs, bitrates
        What is drawn (:class:`~codecbench.augment.draw.ConditionDraw`).
    p : float
        Probability that a clip is coded in an epoch (else it is served uncoded).
    seed : int
        Seeds the draws, with the epoch and the clip's index.
    cache : Cache, optional
        Where bitstreams and features are kept (default: codecbench's cache folder).
    frontend : str or FrontEnd, optional
        Serve this front-end's model inputs (``"hu2020"``: the baseline's log-mel, ``"waveform:16000"``, ...);
        default: the decoded audio at the clip's own rate.
    split : str
        The split of a dataset (default: ``"train"``).
    labels : sequence, optional
        Labels of plain paths (a dataset has its own).
    jobs : int, optional
        Workers for coding an epoch's missing pairs.
    """

    def __init__(self, source, *, conditions: Sequence | Mapping | None = None,
                 codecs: Sequence[str] | Mapping | None = None, bitrates: Mapping | None = None, p: float = 1.0,
                 seed: int = 0, cache: Cache | None = None, frontend=None, split: str = "train",
                 labels: Sequence | None = None, jobs: int | None = None):
        from ..frontends import parse_frontend

        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ArgumentError(f"p: a probability in [0, 1], got {p!r}")
        self.draw = ConditionDraw(conditions, codecs=codecs, bitrates=bitrates)
        self.p, self.seed, self.jobs = float(p), int(seed), jobs
        self.cache = cache or Cache()
        self.frontend = parse_frontend(frontend) if frontend is not None else None
        if hasattr(source, "clips"):
            self.paths = [str(c.path) for c in source.clips(split)]
            self.labels: np.ndarray | None = source.labels(split)
            self.class_names: list[str] | None = list(source.class_names)
        else:
            self.paths = [str(p) for p in source]
            self.labels = np.asarray(labels) if labels is not None else None
            self.class_names = None
        if not self.paths:
            raise ArgumentError("source: no clips")
        if self.labels is not None and len(self.labels) != len(self.paths):
            raise ArgumentError(f"labels: {len(self.labels)} labels for {len(self.paths)} clips")
        self.epoch = 0
        self._digests: dict[int, str] = {}
        #: pairs coded by this pool's fills, and pairs found in the cache
        self.counts = {"coded": 0, "cached": 0}

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch``'s conditions from now on (call it before each epoch, as with a sampler)."""
        self.epoch = int(epoch)

    def condition(self, index: int, epoch: int | None = None) -> Condition:
        """The condition of clip ``index`` in ``epoch`` (default: the current one); uncoded with ``1 - p``."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index)])
        return self.draw.draw(rng) if rng.random() < self.p else ORIGINAL

    def conditions(self, epoch: int | None = None) -> list[Condition]:
        return [self.condition(i, epoch) for i in range(len(self))]

    def prepare(self, epoch: int | None = None, *, progress: bool | None = False) -> dict:
        """Code (and featurise) what ``epoch`` needs and the cache lacks, in parallel; returns the counts."""
        from ..encode import fill

        groups: dict[Condition, list[str]] = {}
        for path, cond in zip(self.paths, self.conditions(epoch)):
            groups.setdefault(cond, []).append(path)
        features = [self.frontend] if self.frontend is not None and self.frontend.cached else False
        for cond, paths in sorted(groups.items()):
            if cond.is_original and not features:
                continue  # the source itself: nothing to code or featurise
            summary = fill(paths, [cond], self.cache, with_features=features, jobs=self.jobs, progress=progress)
            self.counts["coded"] += summary.misses
            self.counts["cached"] += summary.hits
        return dict(self.counts)

    def item(self, index: int) -> np.ndarray:
        """Clip ``index`` of the current epoch: decoded audio (float32, mono, its own rate) or model inputs."""
        from ..encode import FEATURES_NS, coded_signal, feature_key, fill

        cond = self.condition(index)
        path = self.paths[index]
        if self.frontend is not None and self.frontend.cached:
            key = feature_key(self._digest(index), cond, self.frontend)
            entry = self.cache.load(FEATURES_NS, key)
            if entry is None:
                fill([path], [cond], self.cache, with_features=[self.frontend], jobs=1, progress=False)
                self.counts["coded"] += 1
                entry = self.cache.load(FEATURES_NS, key)
            if entry is None:
                raise ArgumentError(f"{path} [{cond.name}]: its features vanished from the cache")
            return self.frontend.finish(entry[0])
        signal, rate = coded_signal(path, cond, self.cache)
        return self.frontend(signal, rate) if self.frontend is not None else signal

    def __getitem__(self, index: int):
        x = self.item(int(index))
        return (x, self.labels[int(index)]) if self.labels is not None else x

    def _digest(self, index: int) -> str:
        from ..fsutil import file_digest

        if index not in self._digests:
            self._digests[index] = file_digest(self.paths[index])
        return self._digests[index]

    # -- adaptors ------------------------------------------------------------------------------------------------
    def torch_dataset(self):
        """This pool as a ``torch.utils.data.Dataset`` (items as tensors; call ``set_epoch`` on it per epoch)."""
        try:
            import torch
        except ImportError:
            raise ArgumentError("torch_dataset() needs PyTorch: pip install torch (CPU wheels: --index-url "
                                "https://download.pytorch.org/whl/cpu)") from None
        pool = self

        class TorchPool(torch.utils.data.Dataset):
            def __len__(self):
                return len(pool)

            def __getitem__(self, index):
                item = pool[index]
                if isinstance(item, tuple):
                    return torch.from_numpy(np.ascontiguousarray(item[0])), int(item[1])
                return torch.from_numpy(np.ascontiguousarray(item))

            def set_epoch(self, epoch):
                pool.set_epoch(epoch)

        return TorchPool()

    def tf_dataset(self):
        """This pool as a ``tf.data.Dataset`` of the current epoch (items, labels), read through a generator."""
        import tensorflow as tf

        first = self.item(0)
        spec = tf.TensorSpec(shape=(None,) * first.ndim, dtype=tf.float32)

        def items():
            for i in range(len(self)):
                item = self[i]
                yield (item[0].astype(np.float32), int(item[1])) if isinstance(item, tuple) else item

        signature = (spec, tf.TensorSpec(shape=(), dtype=tf.int64)) if self.labels is not None else spec
        return tf.data.Dataset.from_generator(items, output_signature=signature)

    def keras_sequence(self, batch_size: int = 32, *, shuffle: bool = True, **kwargs):
        """This pool as a Keras ``PyDataset`` of (inputs, one-hot labels); each epoch it moves to the next
        epoch's conditions, coding them first."""
        from ..backend import keras
        from ..inputs import stack_to_longest

        pool = self
        if pool.labels is None:
            raise ArgumentError("keras_sequence() needs labels")
        n_classes = len(pool.class_names) if pool.class_names else int(np.max(pool.labels)) + 1

        class KerasPool(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(**kwargs)
                self.order = self._order()

            def _order(self):
                return (np.random.default_rng([pool.seed, pool.epoch]).permutation(len(pool)) if shuffle
                        else np.arange(len(pool)))

            def __len__(self):
                return -(-len(pool) // batch_size)

            def __getitem__(self, b):
                idx = self.order[b * batch_size:(b + 1) * batch_size]
                x = stack_to_longest([pool.item(int(i)) for i in idx])
                return x, keras.utils.to_categorical(pool.labels[idx], n_classes)

            def on_epoch_end(self):
                pool.set_epoch(pool.epoch + 1)
                pool.prepare()
                self.order = self._order()

        pool.prepare()
        return KerasPool()
