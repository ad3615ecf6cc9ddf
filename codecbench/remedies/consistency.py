"""Codec-invariant fine-tuning, the fourth remedy: a zoo model fine-tuned on pairs of each training clip's uncoded
and coded versions (the matrix's fine-tuning conditions, the same pool as full fine-tuning and augmentation) with a
consistency loss between its two predictions (:mod:`codecbench.training.paired`). Saved like the other
fine-tunings, with its sidecar: the schedule, the loss's weight and temperature, and the share of coded clips whose
predicted class differed from the uncoded clip's before and after."""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from codecbench.codecs import ORIGINAL
from codecbench.codecs.matrix import Matrix
from codecbench.core.cache import Cache
from codecbench.core.vocabulary import ParallelBackend
from codecbench.datasets import Dataset
from codecbench.errors import UsageError
from codecbench.models.predict import predict_proba
from codecbench.remedies.recipe import Work, epoch_line, prepare, settle_batchnorm, sidecar
from codecbench.training.paired import disagreement, fit_consistency
from codecbench.training.persist import save_announced
from codecbench.training.schedule import FINETUNE_DEFAULTS, TrainConfig
from codecbench.zoo import Parent, Zoo

#: The name ``codecbench consistency`` saves under unless told otherwise.
DEFAULT_NAME = "finetuned_consistency"


def finetune_consistency(zoo: Zoo, parent: Parent, dataset: Dataset, matrix: Matrix, cache: Cache, *,
                         name: str = DEFAULT_NAME, epochs: int = 10, weight: float = 1.0, temperature: float = 2.0,
                         config: TrainConfig | None = None, learning_rate: float | None = None,
                         overwrite: bool = False, jobs: int | None = None,
                         backend: ParallelBackend = "loky", scheduler: str | None = None, verbose: Any = "auto",
                         validate: Callable[[Any], dict[str, float]] | None = None,
                         progress: Callable[[str], None] | None = None) -> str:
    """Fine-tune every parameter of ``parent`` (:meth:`Zoo.parent`) on (uncoded, coded) pairs of
    the training split under the matrix's fine-tuning conditions; saves ``name`` in ``zoo`` and returns it."""
    say = progress or (lambda line: None)
    if not weight >= 0 or not temperature > 0:
        raise UsageError(f"--weight {weight} must be >= 0 and --temperature {temperature} > 0")
    config = dataclasses.replace(config or TrainConfig(**FINETUNE_DEFAULTS), epochs=epochs)
    if learning_rate is not None:
        config = dataclasses.replace(config, learning_rate=learning_rate)
    coded = [c for c in matrix.finetune if not c.is_original]
    if not coded:
        raise UsageError(f"{matrix.source}: consistency fine-tuning pairs clips with coded versions; the matrix has "
                         "no coded fine-tuning condition")
    # the original first: item i is clip i uncoded, item k * clips + i its k-th coded version
    set_up = prepare(parent, zoo, [name], dataset, [ORIGINAL, *coded], cache, config, overwrite=overwrite,
                     work=Work(jobs, backend, scheduler))
    data, config, model, parent_meta = set_up.data, set_up.config, set_up.model, set_up.parent_meta
    if data.used[0] != ORIGINAL or len(data.used) < 2:
        raise UsageError("consistency fine-tuning: no coded fine-tuning condition can be coded here ("
                         + ", ".join(data.skipped) + ")")
    n_clips, n_coded = len(dataset.clips("train")), len(data.used) - 1
    clip_labels = data.labels[:n_clips]

    def predict(batch):
        return predict_proba(model, batch)

    before = disagreement(predict, data.features, n_clips, n_coded)
    say(f"{name}: coded training clips predicted unlike their uncoded version before: {before:.3f}")
    start = time.perf_counter()
    rows: list[dict] = []

    def on_epoch(epoch: int, row: dict) -> None:
        if validate is not None:
            row["validation_accuracy"] = validate(model)
        rows.append(row)
        say(epoch_line("consistency fine-tuning", epoch, epochs, row))

    fit_consistency(model, data.features, clip_labels, n_clips, n_coded, config, weight=weight,
                    temperature=temperature, on_epoch=on_epoch, verbose=verbose)
    meta_batchnorm = settle_batchnorm(model, data, name, progress)
    after = disagreement(predict, data.features, n_clips, n_coded)  # as the saved model predicts
    say(f"{name}: ... and after: {after:.3f}")
    meta = sidecar(config, data, "consistency", epochs, time.perf_counter() - start, rows,
                   parent_meta.get("config", {}), parent.name, parent.sha256)
    meta["consistency"] = {"weight": weight, "temperature": temperature,
                           "loss": "CE(uncoded)/2 + CE(coded)/2 + weight * T^2 * KL(softened uncoded || softened "
                                   "coded), the uncoded side held fixed",
                           "disagreement_before": before, "disagreement_after": after}
    meta["batchnorm"] = meta_batchnorm
    save_announced(zoo, name, model, meta, overwrite, progress)
    return name
