"""What every remedy shares: the training set of its conditions, the parent set up in one order (the names it will
save checked, the set coded, the precision resolved, the seed set, the parent loaded and checked to fit), the sidecar
facts of what it trains and its per-epoch line. Each remedy module is only what differs."""
from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from codecbench import codecs
from codecbench.augment import CodecAugmentedDataset
from codecbench.codecs import Condition
from codecbench.core.backend import keras
from codecbench.core.cache import Cache
from codecbench.core.provenance import library_versions, now
from codecbench.core.vocabulary import ParallelBackend
from codecbench.datasets import Dataset
from codecbench.errors import ModelError, UsageError
from codecbench.signal.features import RECIPE
from codecbench.signal.frontends import BASELINE
from codecbench.store.devices import choose_precision
from codecbench.store.inputs import CachedFeatures
from codecbench.training.schedule import TrainConfig
from codecbench.zoo import Parent, Zoo

log = logging.getLogger("codecbench")


@dataclasses.dataclass(frozen=True)
class Work:
    """Where a remedy's training set is coded: the pool's size, its backend and a dask scheduler (or none)."""

    jobs: int | None = None
    backend: ParallelBackend = "loky"
    scheduler: str | None = None


class ModelMismatch(ModelError):
    """A model that does not fit the dataset's features or classes."""


@dataclasses.dataclass
class TrainingSet:
    features: CachedFeatures
    labels: np.ndarray
    used: list[Condition]
    skipped: list[str]
    dataset: dict
    #: why the run trains at ``config.precision`` (:func:`resolved_config`)
    precision_reason: str = "asked for"


def resolved_config(config: TrainConfig, data: TrainingSet, dataset: Dataset) -> TrainConfig:
    """``config`` with its precision resolved for this machine and ``dataset`` (``auto``: float32 on a generated
    dataset, mixed bfloat16 where the hardware computes it natively); the reason is kept on ``data``."""
    choice = choose_precision(config.precision, reproducible=dataset.recipe is not None)
    data.precision_reason = choice.reason
    return dataclasses.replace(config, precision=choice.policy)


def training_set(dataset: Dataset, conditions: Sequence[Condition], cache: Cache, split: str = "train", *,
                 jobs: int | None = None, backend: ParallelBackend = "loky", scheduler: str | None = None,
                 progress: bool | None = None) -> TrainingSet:
    """The split under each usable condition, stacked (condition by condition); unavailable conditions are skipped
    with a warning. It is the codec-augmentation pool (:class:`~codecbench.augment.CodecAugmentedDataset`) in its
    fixed mode, every clip under every condition, read as cached features."""

    clips = dataset.clips(split)
    used, skipped = [], []
    for cond in conditions:
        ok, why = codecs.availability(cond)
        if not ok:
            warnings.warn(f"fine-tuning condition {cond.name} skipped: {why}", stacklevel=2)
            skipped.append(cond.name)
            continue
        used.append(cond)
    if not used:
        raise UsageError("no usable training condition: " + ", ".join(skipped))
    pool = CodecAugmentedDataset(dataset, conditions=used, every=True, frontend=BASELINE, split=split, cache=cache,
                                 jobs=jobs, backend=backend, scheduler=scheduler)
    pool.prepare(progress=progress)
    return TrainingSet(pool.reader(), np.tile(dataset.labels(split), len(used)), used, skipped,
                       {"name": dataset.name, "split": split, "fingerprint": dataset.fingerprint(split),
                        "clips": len(clips), "class_names": dataset.class_names})


def check_fits(model, dataset: Dataset, sample: np.ndarray, model_name: str, metadata: dict | None = None) -> None:
    """Refuse a model whose input or classes do not fit the dataset, naming both sides."""
    shape = tuple(model.input_shape[1:])
    if shape[0] != sample.shape[0] or shape[-1] != sample.shape[-1]:
        raise ModelMismatch(f"model {model_name!r} takes input {shape} (bins, frames, channels), but the features "
                            f"of {dataset.name} are {sample.shape}")
    n_out = int(model.output_shape[-1])
    if n_out != len(dataset.class_names):
        raise ModelMismatch(f"model {model_name!r} predicts {n_out} classes, dataset {dataset.name} has "
                            f"{len(dataset.class_names)} ({', '.join(dataset.class_names)})")
    names = (metadata or {}).get("class_names")
    if names and list(names) != list(dataset.class_names):
        raise ModelMismatch(f"model {model_name!r} was trained on classes {names}, dataset {dataset.name} has "
                            f"{dataset.class_names}")


def settle_batchnorm(model, data: TrainingSet, name: str, progress: Callable[[str], None] | None = None) -> dict:
    """Before a save: the trainable batch-normalisation layers' statistics re-estimated from the training set, then
    inference-mode against training-mode accuracy on training clips (:mod:`codecbench.training.batchnorm`); a gap
    is warned about, naming the model. Returns the sidecar's ``batchnorm`` entry. Both passes read training clips
    (a minute for the paper FCNN on a CPU), so each is announced on ``progress``."""
    from codecbench.training import batchnorm

    say = progress or (lambda line: None)
    say(f"{name}: saving: re-estimating batch-norm statistics from the training set")
    done = batchnorm.reestimate(model, data.features, len(data.labels))
    say(f"{name}: saving: checking inference mode against training mode on training clips")
    checked = batchnorm.check(model, data.features, data.labels)
    if "flag" in checked:
        log.warning("model %s: %s", name, checked["flag"])
    return {"reestimated": done, "check": checked}


def sidecar(config: TrainConfig, data: TrainingSet, strategy: str, epochs: int, seconds: float, rows: list[dict],
            model_config: dict, parent: str | None = None, parent_sha: str | None = None,
            segments: list[int] | None = None) -> dict:
    """The sidecar facts every trained model carries: how it was trained, on what, from which parent."""
    return {"strategy": strategy, "parent": parent, "parent_sha256": parent_sha, "segments": segments,
            "epochs": epochs, "schedule": dataclasses.asdict(config), "seed": config.seed,
            "finetune_conditions": [c.name for c in data.used], "finetune_conditions_skipped": data.skipped,
            "codec_libraries": {c.name: codecs.codec_library(c) for c in data.used if not c.is_original},
            "dataset": data.dataset, "class_names": data.dataset["class_names"], "feature_recipe": RECIPE,
            "config": model_config, "training_seconds": seconds, "epoch_log": rows,
            "precision": config.precision, "precision_reason": data.precision_reason,
            "libraries": library_versions(), "created": now()}




#: Which batch-norm statistics a validation figure was measured with (a model's figures move by tens of points
#: between the two: UrbanSound8K's last epoch said 0.327 with the running ones, the saved model scores 0.583).
RUNNING_STATISTICS = "running batch-norm statistics"
SAVED_STATISTICS = "batch-norm statistics re-estimated, as saved"


def epoch_line(what: str, epoch: int, epochs: int, row: dict, statistics: str = RUNNING_STATISTICS) -> str:
    figures = [f"loss {row['loss']:.3f}" if "loss" in row else "",
               f"training accuracy {row['accuracy']:.3f}" if "accuracy" in row else "",
               ", ".join(f"{c} {a:.3f}" for c, a in (row.get("validation_accuracy") or {}).items())]
    if row.get("validation_accuracy"):
        figures[-1] = f"validation accuracy ({statistics}) " + figures[-1]
    return f"{what}: epoch {epoch}/{epochs} ({row['seconds']:.0f} s): " + "; ".join(f for f in figures if f)


@dataclasses.dataclass
class Prepared:
    """A remedy set up (:func:`prepare`): its training set, its schedule resolved for this machine, and the parent's
    model and sidecar, loaded."""

    data: TrainingSet
    config: TrainConfig
    model: Any
    parent_meta: dict


def prepare(parent: Parent, target: Zoo, names: Sequence[str], dataset: Dataset, conditions: Sequence[Condition],
          cache: Cache, config: TrainConfig, *, overwrite: bool = False, work: Work = Work(),
          resolve_precision: bool = True, seed: int | None = None) -> Prepared:
    """Set a remedy up in the order every remedy follows, each check before the work it guards: the ``names`` it will
    save are writable in ``target`` (before anything is coded), the training set under ``conditions`` is coded, the
    schedule's precision resolved for this machine and ``dataset`` (unless ``resolve_precision`` is False), the seed
    set (``seed``, default the schedule's: loading creates the dropout seeds, so they are history-free), and the
    parent loaded and checked to fit the features and classes."""
    target.check_writable(list(names), overwrite)
    data = training_set(dataset, conditions, cache, jobs=work.jobs, backend=work.backend, scheduler=work.scheduler)
    if resolve_precision:
        config = resolved_config(config, data, dataset)
    keras.utils.set_random_seed(config.seed if seed is None else seed)
    model, parent_meta = parent.load()
    check_fits(model, dataset, data.features.get(0), parent.name, parent_meta)
    return Prepared(data, config, model, parent_meta)
