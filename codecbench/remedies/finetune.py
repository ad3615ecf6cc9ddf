"""Jobs that put models into the zoo: base training (from scratch) and fine-tuning for coding artifacts.

Experiment A fine-tunes every parameter of a parent model on the training split plus its coded
versions under the matrix's fine-tuning conditions, saving ``finetuned_full@eN`` at chosen epochs.
Experiment B fine-tunes one segment at a time (``finetuned_segK``) with the rest frozen. The
training data come from the feature cache, so no clip is coded or featurised twice across runs;
a fine-tuning condition that cannot be coded here is skipped with a warning and recorded.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from codecbench.codecs import ORIGINAL, Condition
from codecbench.codecs.matrix import Matrix
from codecbench.core.backend import keras
from codecbench.core.cache import Cache
from codecbench.core.vocabulary import ParallelBackend, Precision
from codecbench.datasets import Dataset
from codecbench.errors import UsageError
from codecbench.models import build_fcnn, derive_segments, preset_config
from codecbench.remedies.recipe import (
    RUNNING_STATISTICS,
    SAVED_STATISTICS,
    Work,
    check_fits,
    epoch_line,
    prepare,
    resolved_config,
    settle_batchnorm,
    sidecar,
    training_set,
)
from codecbench.signal.frontends import BASELINE
from codecbench.store.devices import feed_workers, resolve_devices
from codecbench.store.feed import feeding
from codecbench.store.inputs import Inputs, input_reader, predict_stream
from codecbench.training.loop import AugmentedBatches, fit
from codecbench.training.persist import load_checkpoint as _load_checkpoint
from codecbench.training.persist import save_announced as _save
from codecbench.training.schedule import FINETUNE_DEFAULTS, SEGMENT_LEARNING_RATES, TrainConfig, TrainingRun
from codecbench.training.shared import SharedBatches, train_together, why_not_together
from codecbench.zoo import Parent, Zoo, full_name, segment_name

log = logging.getLogger("codecbench")

#: The name of full fine-tuning's per-epoch checkpoint in ``<zoo>/checkpoints``.
CHECKPOINT = "finetuned_full"


def train_base(zoo: Zoo, dataset: Dataset, cache: Cache, *, name: str = "base", preset: str = "small",
               config: TrainConfig | None = None, conditions: Sequence[Condition] = (ORIGINAL,), split: str = "train",
               jobs: int | None = None, backend: ParallelBackend = "loky", scheduler: str | None = None, verbose="auto",
               resume: bool = False, overwrite: bool = False,
               validate: Callable[[Any], dict[str, float]] | None = None,
               progress: Callable[[str], None] | None = None, schedule_change: bool = False) -> str:
    """Train the FCNN from scratch on ``split`` (coded conditions included: the paper's retraining).

    After every epoch the model is saved atomically as the checkpoint ``checkpoints/<name>.keras``
    in the zoo folder, so Ctrl-C leaves the last finished epoch usable; ``resume=True`` continues
    from it (same seed and schedule position).
    """
    config = config or TrainConfig()
    zoo.check_writable([name], overwrite)
    data = training_set(dataset, conditions, cache, split, jobs=jobs, backend=backend, scheduler=scheduler)
    config = resolved_config(config, data, dataset)
    sample = data.features.get(0)
    fcnn = preset_config(preset, sample.shape, len(dataset.class_names))
    checkpoint = Zoo(zoo.root / "checkpoints")
    initial_epoch, rows, history = 0, [], []
    if resume and name in checkpoint.names():
        model, meta = _load_checkpoint(checkpoint, name, f"without --resume, {name!r} is trained again from epoch 0")
        check_fits(model, dataset, sample, f"checkpoints/{name}", meta)
        recorded, asked = meta.get("schedule") or {}, dataclasses.asdict(config)
        # more epochs is what resuming is for (warm restarts: the rate of the epochs done does not depend on it)
        changed = sorted(k for k in set(recorded) | set(asked) if k != "epochs" and recorded.get(k) != asked.get(k))
        if changed and not schedule_change:
            raise UsageError(f"--resume: the checkpoint of {name!r} was trained with another schedule ("
                                + ", ".join(f"{k} {recorded.get(k)!r} -> {asked.get(k)!r}" for k in changed)
                                + "); resume with the same options, or pass --allow-schedule-change to continue "
                                  "under the new one (both are then recorded)")
        history = list(meta.get("schedule_history", []))
        if changed:
            history.append({"until_epoch": int(meta["epochs"]), "schedule": recorded})
        initial_epoch, rows = int(meta["epochs"]), list(meta.get("epoch_log", []))
        log.warning("resuming %s from its checkpoint after epoch %d", name, initial_epoch)
    else:
        keras.utils.set_random_seed(config.seed)  # the initial weights and dropout seeds come from here
        model = build_fcnn(fcnn, name=name)
    start = time.perf_counter()

    def on_epoch(epoch: int, row: dict) -> None:
        if validate is not None:  # inference mode on the evaluation split, as fine-tuning reports it
            row["validation_accuracy"] = validate(model)
        rows.append(row)
        if progress is not None:
            progress(epoch_line("training", epoch, config.epochs, row))
        epoch_meta = sidecar(config, data, "base", epoch, time.perf_counter() - start, list(rows), fcnn.to_dict())
        if history:  # the schedules earlier epochs ran under (--allow-schedule-change)
            epoch_meta["schedule_history"] = history
        checkpoint.save(name, model, epoch_meta, overwrite=True)

    fit(model, data.features, data.labels, config, verbose=verbose, on_epoch=on_epoch, initial_epoch=initial_epoch)
    meta = sidecar(config, data, "base", config.epochs, time.perf_counter() - start, rows, fcnn.to_dict())
    if history:
        meta["schedule_history"] = history
    meta["batchnorm"] = settle_batchnorm(model, data, name, progress)
    _saved_validation("training", model, validate, meta, progress)
    _save(zoo, name, model, meta, overwrite, progress)
    for leftover in (checkpoint.root / f"{name}.keras", checkpoint.root / f"{name}.json"):
        leftover.unlink(missing_ok=True)  # the finished model supersedes its checkpoint
    return name


def epoch_validation(dataset: Dataset, conditions: Sequence[Condition], cache: Cache, split: str = "evaluate", *,
                     jobs: int | None = None) -> Callable[[Any], dict[str, float]]:
    """``measure(model) -> {condition: accuracy}`` on ``split`` under ``conditions`` (coded now, once), for
    :func:`finetune`'s per-epoch validation; inputs stream from the cache, so it costs inference only."""
    from codecbench.models.predict import predict_proba

    clips, labels = dataset.clips(split), dataset.labels(split)
    inputs = {}
    for cond in conditions:  # the evaluator's reader: batches within the input budget, checked for NaN/Inf
        reader, kept = input_reader(clips, cond, cache, jobs=jobs, progress=False)
        inputs[cond.name] = (Inputs(reader, [clips[i].name for i in kept], cond.name, BASELINE), labels[kept])

    def measure(model) -> dict[str, float]:
        out = {}
        for name, (x, truth) in inputs.items():
            probs = predict_stream(lambda batch: predict_proba(model, batch), x, batch_size=x.batch_size)
            out[name] = float(np.mean(np.asarray(probs).argmax(axis=1) == truth))
        return out

    return measure


def _saved_validation(what: str, model, validate, meta: dict, progress) -> None:
    """The validation of the model as saved (its batch-norm statistics re-estimated), printed and recorded: the
    per-epoch figures before it used the running statistics."""
    if validate is None:
        return
    meta["validation_accuracy_saved"] = figures = validate(model)
    if progress is not None:
        progress(f"{what}: saved model ({SAVED_STATISTICS}): validation accuracy "
                 + ", ".join(f"{c} {a:.3f}" for c, a in figures.items()))


def finetune(zoo: Zoo, parent: Parent, dataset: Dataset, matrix: Matrix, cache: Cache, *,
             segments: Sequence[int] | None = None, epochs: int = 10, save_epochs: Sequence[int] | None = None,
             config: TrainConfig | None = None, jobs: int | None = None, backend: ParallelBackend = "loky",
             scheduler: str | None = None, verbose="auto",
             overwrite: bool = False, learning_rate: float | None = None, resume: bool = False,
             validate: Callable[[Any], dict[str, float]] | None = None,
             progress: Callable[[str], None] | None = None, shared_pass: bool | None = None) -> list[str]:
    """Experiment A (``segments=None``: every parameter) or B (one model per listed segment).

    ``parent`` (:meth:`Zoo.parent`) is read from its own zoo, the results are written to ``zoo``;
    existing models there are refused before any work unless ``overwrite``. Returns the names
    saved. Every save is atomic, so an interrupted run leaves only complete models (those of the
    epochs it finished). Full fine-tuning also saves a checkpoint after every epoch
    (``checkpoints/finetuned_full.keras``); ``resume=True`` continues from it when it was made from the same parent
    with the same schedule (the weights and the schedule's position; SGD's momentum starts again from zero),
    else the run starts again from ``parent``.

    ``validate``: a :func:`epoch_validation`, run after every epoch (accuracies in the epoch log); ``progress``
    receives one line per epoch (default: the ``codecbench`` logger). ``shared_pass``: Experiment B's segments train
    together in threads on one pass of the data (:mod:`codecbench.training.shared`), each exactly as alone; None:
    where an accelerator trains several (the feed then reads the data once, not once per segment).
    """
    progress = progress or log.info
    config = dataclasses.replace(config or TrainConfig(**FINETUNE_DEFAULTS), epochs=epochs)
    if learning_rate is not None:
        config = dataclasses.replace(config, learning_rate=learning_rate)
    parent_name, parent_sha = parent.name, parent.sha256
    if segments is None:
        save_at = sorted(set(save_epochs or [epochs]))
        if save_at[-1] > epochs or save_at[0] < 1:
            raise UsageError(f"--save-epochs {save_at} must lie within 1..{epochs}")
        names = [full_name(e) for e in save_at]
    else:
        names = [segment_name(k) for k in segments]
    set_up = prepare(parent, zoo, names, dataset, matrix.training, cache, config, overwrite=overwrite,
                     work=Work(jobs, backend, scheduler))
    data, config, model = set_up.data, set_up.config, set_up.model
    model_config = set_up.parent_meta.get("config", {})
    saved: list[str] = []
    if segments is None:
        start = time.perf_counter()
        rows: list[dict] = []
        checkpoint, initial_epoch = Zoo(zoo.root / "checkpoints"), 0
        if resume and CHECKPOINT in checkpoint.names():
            resumed, meta = _load_checkpoint(checkpoint, CHECKPOINT, f"the same command then starts again from the "
                                             f"parent {parent_name!r} at epoch 0")
            if meta.get("parent_sha256") == parent_sha and meta.get("schedule") == dataclasses.asdict(config):
                model, initial_epoch, rows = resumed, int(meta["epochs"]), list(meta.get("epoch_log", []))
                progress(f"full fine-tuning: resuming from the checkpoint after epoch {initial_epoch} of {epochs} "
                         f"(epochs 1-{initial_epoch} skipped)")

        def on_epoch(epoch: int, row: dict) -> None:
            # statistics only inference reads: re-estimating them before a save does not change the training
            settled = settle_batchnorm(model, data, full_name(epoch), progress) if epoch in save_at else None
            if validate is not None:
                row["validation_accuracy"] = validate(model)
            rows.append(row)
            progress(epoch_line("full fine-tuning", epoch, epochs, row,
                                SAVED_STATISTICS if settled is not None else RUNNING_STATISTICS))
            meta = sidecar(config, data, "full", epoch, time.perf_counter() - start, list(rows), model_config,
                           parent_name, parent_sha)
            if settled is not None:
                meta["batchnorm"] = settled
                _save(zoo, full_name(epoch), model, meta, overwrite, progress)
                saved.append(full_name(epoch))
            if epoch < epochs:
                checkpoint.save(CHECKPOINT, model, meta, overwrite=True)

        fit(model, data.features, data.labels, config, on_epoch=on_epoch, verbose=verbose,
            initial_epoch=initial_epoch)
        for leftover in (checkpoint.root / f"{CHECKPOINT}.keras", checkpoint.root / f"{CHECKPOINT}.json"):
            leftover.unlink(missing_ok=True)  # the finished models supersede the checkpoint
        return saved
    n_segments = len(derive_segments(model))
    for k in segments:
        if not 1 <= k <= n_segments:
            raise UsageError(f"segment {k}: model {parent_name!r} has segments 1..{n_segments}")
    kinds = {s.index: s.kind for s in derive_segments(model)}
    configs = {k: config if learning_rate is not None else dataclasses.replace(
        config, learning_rate=SEGMENT_LEARNING_RATES[kinds[k]]) for k in segments}
    models: dict[int, Any] = {}

    def load(k: int) -> None:
        keras.utils.set_random_seed(config.seed)
        models[k], _ = parent.load()  # every segment starts from the parent, with the same seeds

    together = _shared_pass(shared_pass, segments, config)
    one_at_a_time = threading.Lock()  # validation and progress of trainings in threads, one at a time

    def run_of(k: int) -> Callable[..., list[dict]]:
        def on_segment_epoch(epoch: int, row: dict) -> None:
            with one_at_a_time:
                if validate is not None:
                    row["validation_accuracy"] = validate(models[k])
                progress(epoch_line(f"segment {k} fine-tuning", epoch, epochs, row))

        def run(view=None, setup_lock=None) -> list[dict]:
            return fit(models[k], data.features, data.labels, configs[k], segments=[k], verbose=verbose,
                       on_epoch=on_segment_epoch, batches=view, setup_lock=setup_lock)
        return run

    start = time.perf_counter()
    shared_meta = None
    if together:
        for k in segments:
            load(k)
        source = AugmentedBatches(feeding(data.features), np.asarray(data.labels), int(model.output_shape[-1]),
                                  config)
        shared = SharedBatches(source, consumers=len(segments))
        progress(f"Experiment B: segments {', '.join(map(str, segments))} train together on one pass of the data "
                 "(each batch read once)")
        rows_of = dict(zip(segments, train_together([run_of(k) for k in segments], shared)))
        # batches read for all of them (Keras reads a batch or two more than it trains on, alone too)
        shared_meta = {"segments": list(segments), "batches_read": shared.reads,
                       "batches_per_training": len(source) * epochs}
    seconds = time.perf_counter() - start
    for k in segments:
        if not together:
            load(k)
            start = time.perf_counter()
            rows = run_of(k)()
            seconds = time.perf_counter() - start
        else:
            rows = rows_of[k]
        name = segment_name(k)
        meta = sidecar(configs[k], data, f"segment {k}", epochs, seconds, rows, model_config,
                       parent_name, parent_sha, [k])
        meta["learning_rate_choice"] = "explicit" if learning_rate is not None else \
            f"default for {kinds[k]} segments (SEGMENT_LEARNING_RATES)"
        if shared_meta is not None:
            meta["shared_pass"] = shared_meta  # trained beside these segments, on the same batches read once
        meta["batchnorm"] = settle_batchnorm(models[k], data, name, progress)  # the trained segment's layers only
        _saved_validation(f"segment {k} fine-tuning", models[k], validate, meta, progress)
        _save(zoo, name, models[k], meta, overwrite, progress)
        saved.append(name)
        models.pop(k)
    return saved


def _shared_pass(asked: bool | None, segments: Sequence[int], config: TrainConfig) -> bool:
    """Whether Experiment B's segments train together on one pass of the data: as ``asked``, else (None) when
    there are several and an accelerator trains them (its feed reads the data: once instead of once per segment),
    on one device (a distribution strategy is global to the process), under TensorFlow or JAX."""
    several = len(segments) > 1
    why_not = why_not_together()
    if asked and why_not:
        raise UsageError(f"a shared pass for Experiment B needs the TensorFlow or JAX backend: {why_not}")
    if asked is not None:
        return bool(asked) and several
    return several and why_not is None and feed_workers() > 0 and not resolve_devices(config.devices)


# --------------------------------------------------------------------------- zoo build presets

PRESETS: dict[str, dict[str, Any]] = {
    # The packaged demo zoo: small FCNN on the synthetic scenes (2-s clips, 79 feature frames, 64-frame crops).
    "demo": {"dataset": "synthetic", "model_preset": "small", "frames": 79,
             "base": TrainConfig(epochs=40, learning_rate=0.05, crop_frames=64, time_mask_frames=10, seed=0),
             "finetune": TrainConfig(**{**FINETUNE_DEFAULTS, "crop_frames": 64, "time_mask_frames": 10, "seed": 0}),
             "full_epochs": 40, "save_epochs": (1, 10, 20, 40), "segment_epochs": 10, "segments": range(1, 11)},
    # The paper's setting: the 11.8M-parameter FCNN on TAU 2020 Mobile (bring the data; GPU advised).
    "paper": {"dataset": None, "model_preset": "paper", "frames": 423,
              "base": TrainConfig(epochs=126, seed=0),
              "finetune": TrainConfig(**{**FINETUNE_DEFAULTS, "seed": 0}),
              "full_epochs": 40, "save_epochs": (1, 10, 20, 40), "segment_epochs": 10, "segments": range(1, 11)},
}


def remaining_runs(names, *, save_epochs, full_epochs: int, segments, segment_epochs: int) -> list[TrainingRun]:
    """The fine-tuning runs a zoo holding ``names`` still lacks, for a plan: full fine-tuning (to ``full_epochs``)
    unless every saved epoch is there, and the missing segments (``segment_epochs`` each)."""
    runs: list[TrainingRun] = []
    if any(full_name(e) not in names for e in save_epochs):
        runs.append(TrainingRun("Experiment A: full fine-tuning", full_epochs))
    missing = tuple(k for k in segments if segment_name(k) not in names)
    if missing:
        runs.append(TrainingRun(f"Experiment B: {len(missing)} segment fine-tunings", segment_epochs,
                                segments=missing))
    return runs


def build_zoo(zoo: Zoo, dataset: Dataset, matrix: Matrix, cache: Cache, preset: str = "demo", *,
              jobs: int | None = None, backend: ParallelBackend = "loky", scheduler: str | None = None,
              verbose="auto", precision: Precision = "auto", devices: str = "auto",
              progress: Callable[[str], None] | None = None) -> list[str]:
    """Build whatever of base, Experiment A and Experiment B is missing from ``zoo`` (nothing is replaced).
    ``precision`` and ``devices`` as in :class:`~codecbench.training.schedule.TrainConfig`; ``progress`` gets a line per
    fine-tuning epoch."""
    if preset not in PRESETS:
        raise UsageError(f"unknown zoo preset {preset!r}; expected one of {', '.join(PRESETS)}")
    p = dict(PRESETS[preset])
    for recipe in ("base", "finetune"):
        p[recipe] = dataclasses.replace(p[recipe], precision=precision, devices=devices)
    work = dict(jobs=jobs, backend=backend, scheduler=scheduler, verbose=verbose)
    built: list[str] = []
    if "base" not in zoo.names():
        built.append(train_base(zoo, dataset, cache, preset=p["model_preset"], config=p["base"], **work))
    missing = [e for e in p["save_epochs"] if full_name(e) not in zoo.names()]
    missing_segments = [k for k in p["segments"] if segment_name(k) not in zoo.names()]
    if not (missing or missing_segments):
        return built
    base = zoo.parent("base", "fine-tuning")  # resolved once, for both experiments
    if missing:  # the epochs already there are kept: the run saves only the missing ones
        built += finetune(zoo, base, dataset, matrix, cache, epochs=max(missing), save_epochs=missing,
                          config=p["finetune"], progress=progress, resume=True, **work)
    if missing_segments:
        built += finetune(zoo, base, dataset, matrix, cache, segments=missing_segments,
                          epochs=p["segment_epochs"], config=p["finetune"], progress=progress, **work)
    return built
