"""``CodecAugmentedDataset``: codec augmentation of a fixed training set, epoch by epoch, from the cache.

Every clip gets a condition per epoch, drawn from ``(seed, epoch, clip index)`` alone, so the draw does not depend
on the order clips are asked for, on the number of data-loader workers or on the machine. What an epoch needs is
coded in one parallel fill (:func:`codecbench.store.fill.fill`), and only what the cache lacks: a (clip, condition)
met again in a later epoch is read back, never coded twice. Items are the decoded audio or a front-end's inputs
(log-mel features come from the feature cache). Adaptors hand the pool to PyTorch (``torch_dataset``), tf.data
(``tf_dataset``) and Keras (``keras_sequence``); the frameworks are imported only when asked for.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np

from codecbench.augment.draw import ConditionDraw
from codecbench.codecs import ORIGINAL, Condition
from codecbench.core.cache import Cache
from codecbench.core.vocabulary import ParallelBackend
from codecbench.errors import ArgumentError
from codecbench.signal.frontends import parse_frontend
from codecbench.store.fill import clip_identity, coded_signal, feature_key, fill
from codecbench.store.inputs import CachedFeatures, stack_to_longest

#: Decoded audio a pool keeps in memory by default (bytes).
DEFAULT_MEMORY_BYTES = 1 << 30


class _Recent:
    """Arrays kept up to a byte budget, the least recently used dropped first (thread-safe)."""

    def __init__(self, budget: int):
        self._start(budget)

    def _start(self, budget: int) -> None:
        self.budget, self.used = int(budget), 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # a data-loader worker gets the budget, not the arrays (nor the lock)
        return {"budget": self.budget}

    def __setstate__(self, state: dict) -> None:
        self._start(state["budget"])

    def get(self, key):
        with self._lock:
            x = self._items.get(key)
            if x is not None:
                self._items.move_to_end(key)
            return x

    def put(self, key, x: np.ndarray) -> None:
        if x.nbytes > self.budget:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = x
            self.used += x.nbytes
            while self.used > self.budget:
                _, dropped = self._items.popitem(last=False)
                self.used -= dropped.nbytes


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
    jobs, backend, scheduler
        Workers for coding an epoch's missing pairs (as :func:`codecbench.store.fill.fill`).
    every : bool
        Serve every clip under every one of ``conditions``, the same each epoch (item ``k * clips + i`` is clip
        ``i`` under condition ``k``): the paper's fixed fine-tuning set, which codecbench's own Keras training reads
        through :meth:`reader`.
    memory_bytes : int
        Decoded audio (or waveform front-end inputs) kept in this process's memory, the least recently used dropped
        first (default 1 GiB, about 600 clips of 10 s at 44.1 kHz; 0: none). A (clip, condition) served again from
        memory costs a copy, not a decode. Each data-loader worker process keeps its own. Log-mel features are read
        from the feature cache and not kept.
    """

    def __init__(self, source, *, conditions: Sequence | Mapping | None = None,
                 codecs: Sequence[str] | Mapping | None = None, bitrates: Mapping | None = None, p: float = 1.0,
                 seed: int = 0, cache: Cache | None = None, frontend=None, split: str = "train",
                 labels: Sequence | None = None, jobs: int | None = None, backend: ParallelBackend = "loky",
                 scheduler: str | None = None, every: bool = False, memory_bytes: int = DEFAULT_MEMORY_BYTES):

        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ArgumentError(f"p: a probability in [0, 1], got {p!r}")
        if isinstance(memory_bytes, bool) or not isinstance(memory_bytes, int) or memory_bytes < 0:
            raise ArgumentError(f"memory_bytes: a number of bytes >= 0, got {memory_bytes!r}")
        self.draw = ConditionDraw(conditions, codecs=codecs, bitrates=bitrates)
        if every and (conditions is None or p != 1.0):
            raise ArgumentError("every=True serves fixed conditions, each to every clip: give conditions, and p=1")
        self.every = [cond for cond, _ in self.draw.choices] if every else None
        self.p, self.seed, self.jobs, self.backend, self.scheduler = float(p), int(seed), jobs, backend, scheduler
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
        self._digests: dict[int, tuple[str, int]] = {}
        #: pairs coded by this pool's fills, and pairs found in the cache
        self.counts = {"coded": 0, "cached": 0}
        self._kept = _Recent(memory_bytes)

    def __len__(self) -> int:
        return len(self.paths) * (len(self.every) if self.every else 1)

    def path(self, index: int) -> str:
        return self.paths[int(index) % len(self.paths)]

    def label(self, index: int):
        return self.labels[int(index) % len(self.paths)] if self.labels is not None else None

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch``'s conditions from now on (call it before each epoch, as with a sampler)."""
        self.epoch = int(epoch)

    def condition(self, index: int, epoch: int | None = None) -> Condition:
        """The condition of clip ``index`` in ``epoch`` (default: the current one); uncoded with ``1 - p``."""
        if self.every:
            return self.every[int(index) // len(self.paths)]
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index)])
        return self.draw.draw(rng) if rng.random() < self.p else ORIGINAL

    def conditions(self, epoch: int | None = None) -> list[Condition]:
        return [self.condition(i, epoch) for i in range(len(self))]

    def prepare(self, epoch: int | None = None, *, progress: bool | None = False) -> dict:
        """Code (and featurise) what ``epoch`` needs and the cache lacks, in parallel; returns the counts."""

        groups: dict[Condition, list[str]] = {}
        for index, cond in enumerate(self.conditions(epoch)):
            groups.setdefault(cond, []).append(self.path(index))
        features = [self.frontend] if self.frontend is not None and self.frontend.cached else False
        for cond, paths in groups.items():
            if cond.is_original and not features:
                continue  # the source itself: nothing to code or featurise
            # one condition per fill, so its progress line names what is being coded
            summary = fill(paths, [cond], self.cache, with_features=features, jobs=self.jobs, backend=self.backend,
                           scheduler=self.scheduler, progress=progress)
            self.counts["coded"] += summary.misses
            self.counts["cached"] += summary.hits
        return dict(self.counts)

    def reader(self, epoch: int | None = None):
        """The cached model inputs of ``epoch`` (default: the current one) as a
        :class:`~codecbench.store.inputs.CachedFeatures` (lazy, batch by batch; a missing entry is recomputed), for a
        cached (log-mel) front-end. What codecbench's own Keras training reads."""

        if self.frontend is None or not self.frontend.cached:
            raise ArgumentError("reader() serves cached (log-mel) features: give the pool such a frontend")
        conds = self.conditions(epoch)
        keys = [self._key(i % len(self.paths), c) for i, c in enumerate(conds)]
        return CachedFeatures(self.cache, keys, [self.path(i) for i in range(len(conds))], conds, self.frontend)

    def item(self, index: int) -> np.ndarray:
        """Item ``index`` of the current epoch: decoded audio (float32, mono, its own rate) or model inputs."""

        cond, path = self.condition(index), self.path(index)
        if self.frontend is not None and self.frontend.cached:
            key = self._key(int(index) % len(self.paths), cond)
            return CachedFeatures(self.cache, [key], [path], [cond], self.frontend).get(0)
        kept = (int(index) % len(self.paths), cond)
        x = self._kept.get(kept)
        if x is None:
            signal, rate = coded_signal(path, cond, self.cache)
            x = self.frontend(signal, rate) if self.frontend is not None else signal
            self._kept.put(kept, x)
        return x.copy()  # the caller may change it in place; what is kept stays as decoded

    def __getitem__(self, index: int):
        x = self.item(int(index))
        return (x, self.label(index)) if self.labels is not None else x

    def _key(self, clip: int, condition: Condition) -> str:
        """The feature cache key of one clip under one condition (its digest and rate read once)."""

        if clip not in self._digests:
            self._digests[clip] = clip_identity(self.paths[clip])
        digest, rate = self._digests[clip]
        return feature_key(digest, condition, rate, self.frontend)

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
        from codecbench.core.backend import keras

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
                return x, keras.utils.to_categorical([pool.label(i) for i in idx], n_classes)

            def on_epoch_end(self):
                pool.set_epoch(pool.epoch + 1)
                pool.prepare()
                self.order = self._order()

        pool.prepare()
        return KerasPool()
