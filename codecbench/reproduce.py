"""``codecbench reproduce peters``: the study end to end in one command, resumable, ending in "paper vs this run".

Steps, in order; each finished unit is kept and skipped (and said so) when the same command runs again after a
Ctrl-C, a crash or a reboot:

1. the data: loaded and checked (every listed clip present; TAU 2020 Mobile's split sizes named when they differ);
2. the base model: the checkpoint imported into ``<out>/zoo`` as ``base`` (skipped when imported before);
3. the plan: cache growth, free disk and hours per stage on this machine; a run that would fill the disk is
   refused before anything starts (``--dry-run`` stops here);
4. the fine-tuning set coded and featurised (cache hits are the finished part);
5. Experiment A: full fine-tuning, ``finetuned_full@eN`` saved at the preset's epochs, resumed from the per-epoch
   checkpoint;
6. Experiment B: ``finetuned_segK``, one model per segment (finished segments skipped);
7. the benchmark: every model on the paper's eight validation conditions, one result file per (model, condition)
   in ``<out>/results/runs/reproduce/items`` (finished ones skipped when the model is unchanged); where an
   accelerator trains (``--code-ahead``), the evaluation set is coded during steps 5 and 6, on the host cores their
   feed leaves idle (:mod:`codecbench.store.beside`);
8. the report in ``<out>/report``, with "Table 2: paper vs this run" (:mod:`codecbench.report.paper`).

The recipe (data, checkpoint digest, preset, overrides) is written to ``<out>/reproduce.json`` first; the same
folder refuses another recipe, naming what differs, so a resumed run never mixes two experiments.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

from codecbench.codecs import Condition
from codecbench.core.fsutil import atomic_write, claim_folder, file_digest
from codecbench.core.parallel import usable_cores
from codecbench.core.provenance import now
from codecbench.datasets.synth import SCENES
from codecbench.errors import UsageError
from codecbench.models import file_sha256, kinds, load_model
from codecbench.run.plan import evaluation_plan, training_plan
from codecbench.run.resolve import Run, Workspace
from codecbench.run.session import BenchmarkSession
from codecbench.run.spec import RunSpec
from codecbench.signal.features import RECIPE, n_frames
from codecbench.store.beside import FillBeside
from codecbench.store.devices import feed_workers as local_feed_workers
from codecbench.store.fill import fill
from codecbench.training.schedule import crops_for
from codecbench.zoo import ModelFileChanged, Zoo, full_name, packaged_model_dir, segment_name

#: ``--code-ahead``'s choices
CODE_AHEAD = ("auto", "on", "off")

#: ``--preset``: which zoo recipe of :data:`codecbench.remedies.finetune.PRESETS` the experiments follow.
PRESETS = {"paper": "paper", "small": "demo"}

#: Where the paper's baseline comes from (no stable download with a published checksum could be confirmed, so the
#: user fetches it and passes ``--checkpoint``).
CHECKPOINT_HINT = ("the study's baseline is 10class-fcnn-model-0.7694.hdf5 of Hu et al. (MIT licence), in "
                   "task1a/10class/pretrained_models/ of https://github.com/MihawkHu/DCASE2020_task1; download it "
                   "and pass --checkpoint PATH")


def _checkpoint_hint(data: str) -> str:
    """Where the base model comes from for ``data``: Hu et al.'s checkpoint for TAU scenes; for a fold-based
    dataset (UrbanSound8K, ESC-50), whose classes no published checkpoint of the study predicts, a model trained on
    it first."""
    from codecbench.datasets.folds import detect

    root = Path(data).expanduser()
    layout = detect(root) if root.is_dir() else next((n for n in ("urbansound8k", "esc50") if n in data.lower()),
                                                     None)
    if layout is None:
        return CHECKPOINT_HINT
    return (f"the study's checkpoints predict the 10 TAU scenes, not {layout}'s classes: train a base model on this "
            f"data first (codecbench train --dataset {data} --model-dir DIR), then pass --checkpoint DIR/base.keras")


@dataclasses.dataclass(frozen=True)
class ReproduceOptions:
    """What ``codecbench reproduce`` was asked for, validated at the command line."""

    paper: str
    data: str
    out: Path
    checkpoint: Path | None = None
    preset: str = "paper"
    #: Experiment A's saved epochs (default: the preset's 1, 10, 20, 40)
    full_epochs: tuple[int, ...] | None = None
    #: Experiment B's segments and epochs (default: the preset's 1-10 at 10 epochs)
    segments: tuple[int, ...] | None = None
    segment_epochs: int | None = None
    #: conditions of the evaluation split scored after every fine-tuning epoch
    validate: tuple[Condition, ...] = ()
    #: UrbanSound8K / ESC-50: the folds of each split (``--folds``; None: the dataset's usual split)
    folds: tuple[tuple[str, tuple[int, ...]], ...] | None = None
    #: ``--code-ahead``: code the evaluation set beside the trainings (``auto``: where an accelerator trains them, so
    #: the host's cores are free but for the feed's work; ``on``; ``off``)
    code_ahead: str = "auto"
    dry_run: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        if self.code_ahead not in CODE_AHEAD:
            raise UsageError(f"--code-ahead: {self.code_ahead!r}, expected one of {', '.join(CODE_AHEAD)}")

    def recipe(self, checkpoint_sha256: str | None) -> dict:
        from codecbench.remedies.finetune import PRESETS as ZOO_PRESETS

        zoo = ZOO_PRESETS[PRESETS[self.preset]]
        return {"paper": self.paper, "data": self.data, "checkpoint_sha256": checkpoint_sha256,
                **({"folds": {k: list(v) for k, v in self.folds}} if self.folds else {}),
                "preset": self.preset, "full_epochs": list(self.full_epochs or zoo["save_epochs"]),
                "segments": list(self.segments or zoo["segments"]),
                "segment_epochs": self.segment_epochs or zoo["segment_epochs"]}


#: The work folder's state: what base this reproduction imported (its sha256), so a replaced base is noticed.
STATE = ".reproduce-state.json"


def _check_work_folder(out: Path) -> None:
    """A work folder is this command's when it holds ``reproduce.json``; anything else in it is not ours to adopt or
    overwrite (a foreign ``zoo/base`` would be benchmarked as the study's base, a ``report/`` replaced)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder; give a folder for the reproduction's work")
    if out.is_dir() and not (out / "reproduce.json").is_file():
        foreign = sorted(p.name for p in out.iterdir() if p.name != ".codecbench.lock")
        if foreign:
            raise UsageError(f"--out {out}: holds files this reproduction did not write ({', '.join(foreign[:5])}"
                             f"{', ...' if len(foreign) > 5 else ''}); they are neither adopted nor overwritten. "
                             "Give an empty or new folder")


def _check_zoo_files(zoo) -> None:
    """Every model of the work zoo is the file its sidecar describes and ``base`` the one imported: a model changed
    after this reproduction wrote it is refused, with what to do (not ``--force``, which here means the disk)."""

    state_path = zoo.root.parent / STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    for name in zoo.names():
        try:
            zoo.check_file(name)
        except ModelFileChanged:
            raise UsageError(f"{zoo.path(name)}: changed after this reproduction wrote it (its sidecar's sha256 "
                             "differs); delete it and its .json, and the same command makes it again") from None
    if "base" in zoo.names() and state.get("base_sha256") and zoo.sha256("base") != state["base_sha256"]:
        raise UsageError(f"{zoo.path('base')}: not the base this reproduction imported (sha256 "
                         f"{state['base_sha256'][:12]}, now {zoo.sha256('base')[:12]}); delete zoo/ to import the "
                         "checkpoint again (the fine-tuned models depend on it), or choose another --out")


def _check_recipe(out: Path, recipe: dict) -> None:
    path = out / "reproduce.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = [k for k in recipe if before.get(k) != recipe[k]]
        if changed:
            raise UsageError(f"{path}: this folder holds a reproduction with other settings "
                             f"({', '.join(f'{k}: {before.get(k)!r} then, {recipe[k]!r} now' for k in changed)}); "
                             "run with the same options to resume it, or choose another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(recipe, indent=1), fsync=False)


def _base_model(zoo, options: ReproduceOptions, dataset, say: Callable[[str], None]) -> None:
    """Step 2: ``base`` in the work zoo, from ``--checkpoint`` or (synthetic data, small preset) the packaged
    demo zoo's base."""

    state_path = zoo.root.parent / STATE
    if "base" in zoo.names():
        meta = zoo.metadata("base")
        origin = (meta.get("source_sha256") == file_digest(options.checkpoint) if options.checkpoint is not None
                  else meta.get("imported_from") == "the packaged demo zoo's base")
        if not state_path.is_file() and origin:  # a folder of a codecbench before the state file: its sidecar says
            atomic_write(state_path, json.dumps({"base_sha256": zoo.sha256("base")}), fsync=False)
        if not state_path.is_file() or not origin:  # not imported by this command from this checkpoint
            raise UsageError(f"{zoo.path('base')}: not imported by this reproduction from "
                             f"{options.checkpoint or 'the packaged demo base'}; delete zoo/ (or choose another --out) "
                             "and the checkpoint is imported again")
        say(f"[2/8] base model: skipping, imported before ({zoo.sha256('base')[:12]})")
        return
    if options.checkpoint is not None:
        model, meta = load_model(options.checkpoint)
        meta = {**meta, "strategy": "imported", "imported_from": str(options.checkpoint),
                "source_sha256": file_sha256(options.checkpoint), "created": now()}
    else:
        model, meta = Zoo(packaged_model_dir()).load("base")
        meta = {**meta, "imported_from": "the packaged demo zoo's base", "created": now()}
    if not meta.get("class_names"):
        # a checkpoint that names no classes (Hu et al.'s Keras-2 .hdf5) is matched only where the match is known:
        # the 10 TAU scenes, in the order those checkpoints were trained on; anywhere else it would score a dataset's
        # classes with another's outputs, silently
        if tuple(dataset.class_names) != SCENES:
            raise UsageError(f"--checkpoint {options.checkpoint}: the checkpoint names no classes, and "
                             f"{dataset.name}'s classes ({', '.join(dataset.class_names[:4])}, ...) are not the 10 "
                             f"TAU scenes it would be assumed to predict; {_checkpoint_hint(options.data)}")
        meta["class_names"] = list(SCENES)
        say("[2/8] base model: the checkpoint names no classes; its 10 outputs are taken as the TAU scenes in Hu "
            "et al.'s order, which this dataset's classes are")
    kinds.validate(kinds.from_keras("base", model, meta), dataset.class_names)
    zoo.save("base", model, meta)
    atomic_write(state_path, json.dumps({"base_sha256": zoo.sha256("base")}), fsync=False)
    say(f"[2/8] base model: imported {meta['imported_from']} ({model.count_params():,} parameters)")


def reproduce(where: Workspace, options: ReproduceOptions, *, say: Callable[[str], None] = print) -> Path | None:
    """Run (or resume) the reproduction described by ``options`` with the run settings of ``where``'s spec (cache,
    jobs, scheduler, precision, devices); returns the report's Markdown file (None for ``dry_run``)."""
    from codecbench.datasets import load_dataset
    from codecbench.remedies.finetune import PRESETS as ZOO_PRESETS

    zoo_preset = ZOO_PRESETS[PRESETS[options.preset]]
    if options.checkpoint is None and not (options.preset == "small" and options.data.startswith("synthetic")):
        raise UsageError(f"--checkpoint: needed for --preset {options.preset} on {options.data}; "
                         f"{_checkpoint_hint(options.data)}")
    if options.checkpoint is not None and not options.checkpoint.is_file():
        raise UsageError(f"--checkpoint: {options.checkpoint} is not a file; {_checkpoint_hint(options.data)}")
    recipe = options.recipe(file_digest(options.checkpoint) if options.checkpoint else None)
    _check_work_folder(options.out)  # before the data: a wrong --out is named at once
    # 1. the data
    dataset = load_dataset(options.data, cache_dir=where.cache.root, listing_only=options.dry_run,
                           folds=dict(options.folds) if options.folds else None)
    for split in ("train", "evaluate"):
        dataset.clips(split)  # a named error for a missing or empty split, before any work
    say(f"[1/8] data: {dataset.describe()}")
    from codecbench.datasets.tau import TAU2020_MOBILE, TAU2020_SPLIT_SIZES
    if options.preset == "paper" and dataset.name != TAU2020_MOBILE:
        say(f"      note: not the study's data ({TAU2020_MOBILE}: {TAU2020_SPLIT_SIZES['train']:,} + "
            f"{TAU2020_SPLIT_SIZES['evaluate']:,} clips); the report compares the paper's findings, not its numbers")
    train_conds = where.matrix.training
    available = where.training_conditions
    for cond in sorted(set(train_conds) - set(available)):
        say(f"      note: fine-tuning condition {cond.name} is unavailable here ({where.availability(cond)[1]}); "
            "skipped and recorded in the models' sidecars")
    if options.dry_run:
        _plan(where, options, dataset, available, recipe, say, check=False)
        return None

    with claim_folder(options.out, "reproduce"):
        _check_recipe(options.out, recipe)
        zoo = Zoo(options.out / "zoo")
        _check_zoo_files(zoo)
        _base_model(zoo, options, dataset, say)
        return _resume(where, options, dataset, available, recipe, zoo, zoo_preset, say)


def _resume(where: Workspace, options: ReproduceOptions, dataset, available, recipe: dict, zoo, zoo_preset: dict,
            say) -> Path:
    """Steps 3-8 in a claimed work folder whose base is imported."""
    spec = where.spec
    _plan(where, options, dataset, available, recipe, say, check=True)
    # 4. the fine-tuning set

    summary = fill(dataset.clips("train"), available, where.cache, with_features=True, jobs=spec.jobs,
                   backend=spec.backend, scheduler=spec.scheduler)
    say(f"[4/8] fine-tuning set: {summary.hits:,} (clip, condition) pairs cached before (skipped), "
        f"{summary.misses:,} coded now")
    for name, rates in summary.resampled().items():
        say(f"      note: {name} coded at {', '.join(f'{r / 1000:g} kHz' for r in rates['codec'])} for sources at "
            f"{', '.join(f'{r / 1000:g} kHz' for r in rates['source'])} (the codec has no rate nearer above)")
    jobs = code_ahead_jobs(options.code_ahead, spec)
    if jobs and _experiments_left(options, zoo, recipe):
        with FillBeside(dataset.clips("evaluate"), _validation(where), where.cache, jobs=jobs, say=say,
                        what="the evaluation set"):
            _experiments(where, options, zoo, dataset, recipe, zoo_preset, say)
    else:
        _experiments(where, options, zoo, dataset, recipe, zoo_preset, say)
    return _benchmark_and_report(where, options, recipe, say)


def code_ahead_jobs(mode: str, spec: RunSpec, *, feed_workers: int | None = None) -> int:
    """Worker processes that code the evaluation set beside the trainings (0: none). ``auto``: where the trainings'
    feed has workers (an accelerator trains), every core but one, at a lower priority than the feed; never with a
    dask scheduler (its workers are the cluster's); ``on``: every core but one here too (at least one)."""
    if mode == "off" or spec.scheduler:
        return 0
    cores = usable_cores()
    if mode == "on":
        return max(1, cores - 1)
    workers = local_feed_workers() if feed_workers is None else feed_workers
    return max(1, cores - 1) if workers else 0


def _validation(where: Workspace) -> list[Condition]:
    """The validation conditions that can be coded here (what step 7 scores)."""
    return [c for c in where.matrix.validation if where.availability(c)[0]]


def _experiments_left(options: ReproduceOptions, zoo, recipe: dict) -> bool:
    names = zoo.names()
    return any(full_name(e) not in names for e in recipe["full_epochs"]) or \
        any(segment_name(k) not in names for k in recipe["segments"])


def _plan(where: Workspace, options: ReproduceOptions, dataset, conditions, recipe: dict, say, *,
          check: bool) -> None:
    """Step 3: the plan (what is left), refused if it cannot fit on the disk."""
    from codecbench.models import preset_config
    from codecbench.remedies.finetune import PRESETS as ZOO_PRESETS
    from codecbench.remedies.finetune import remaining_runs

    spec = where.spec
    zoo_preset = ZOO_PRESETS[PRESETS[options.preset]]
    names = Zoo(options.out / "zoo").names() if (options.out / "zoo").is_dir() else []
    runs = remaining_runs(names, save_epochs=recipe["full_epochs"], full_epochs=max(recipe["full_epochs"]),
                          segments=recipe["segments"], segment_epochs=recipe["segment_epochs"])
    model = preset_config(zoo_preset["model_preset"], (128, 423, 3), len(dataset.class_names))
    plan = training_plan(f"reproduce {options.paper} --preset {options.preset} on {dataset.name}", dataset,
                         conditions, where.cache, config=model, train_config=_finetune_config(zoo_preset, dataset,
                                                                                              spec)[0], runs=runs,
                         jobs=spec.jobs, scheduler=spec.scheduler, rates=spec.rates)
    n_models = 1 + len(recipe["full_epochs"]) + len(recipe["segments"])
    trainings = tuple(s.name for s in plan.stages if s.name.startswith("Experiment"))
    # coded beside the trainings where they leave the host's cores idle (an accelerator's run: the feed's workers
    # are what the host does)
    beside = trainings if trainings and code_ahead_jobs(
        options.code_ahead, spec, feed_workers=spec.rates.feed_workers if spec.rates else None) else ()
    evaluation = evaluation_plan("evaluation", dataset.clips("evaluate"), _validation(where), where.cache,
                                 models={f"m{i}": model for i in range(n_models)}, jobs=spec.jobs,
                                 scheduler=spec.scheduler, rates=spec.rates, fill_beside=beside)
    plan.stages += evaluation.stages
    plan.bytes_needed += evaluation.bytes_needed
    plan.notes.append("finished units (models in the zoo) are not counted")
    say("[3/8] " + plan.report())
    if check:
        plan.check_disk(options.force)


#: The length a clip not yet on disk is planned at (TAU's clips).
ABSENT_CLIP_SECONDS = 10.0


def _finetune_config(zoo_preset: dict, dataset, spec: RunSpec):
    """The preset's fine-tuning schedule as it runs on ``dataset``: its crops scaled to the data's clips (what the
    plan prices and the experiments train with), and the clips' frames."""

    config = dataclasses.replace(zoo_preset["finetune"], precision=spec.precision, devices=spec.devices)
    # no file there yet (a plan from the split files alone): TAU's 10 s, as the plan's time assumes (it planned
    # crops of 1 frame)
    seconds = dataset.longest_seconds("train") or ABSENT_CLIP_SECONDS
    frames = n_frames(round(seconds * RECIPE["sample_rate"]))
    return crops_for(config, zoo_preset["frames"], frames), frames


def _experiments(where: Workspace, options: ReproduceOptions, zoo, dataset, recipe: dict, zoo_preset: dict,
                 say) -> None:
    """Steps 5 and 6: Experiments A and B, whatever of them is missing."""
    from codecbench.remedies.finetune import epoch_validation, finetune

    spec = where.spec
    config = dataclasses.replace(zoo_preset["finetune"], precision=spec.precision, devices=spec.devices)
    scaled, frames = _finetune_config(zoo_preset, dataset, spec)
    if scaled.crop_frames != config.crop_frames:
        say(f"      note: crops of {scaled.crop_frames} frames (and time masks of {scaled.time_mask_frames}) for clips "
            f"of {frames} frames: --preset {options.preset}'s {config.crop_frames} of "
            f"{zoo_preset['frames']} frames, scaled to this data")
    config = scaled
    work = dict(jobs=spec.jobs, backend=spec.backend, scheduler=spec.scheduler, verbose=0, progress=say)
    validate = epoch_validation(dataset, list(options.validate), where.cache, jobs=spec.jobs) \
        if options.validate else None
    epochs = recipe["full_epochs"]
    missing = [e for e in epochs if full_name(e) not in zoo.names()]
    done = [full_name(e) for e in epochs if e not in missing]
    if done:
        say(f"[5/8] Experiment A: skipping {', '.join(done)} (finished)")
    if missing:
        say(f"[5/8] Experiment A: full fine-tuning to epoch {max(epochs)}, saving {', '.join(map(full_name, missing))}")
        # the schedule always runs to the last epoch of the recipe, so a resumed run follows the same schedule
        finetune(zoo, zoo.parent("base", "fine-tuning"), dataset, where.matrix, where.cache, epochs=max(epochs),
                 save_epochs=missing,
                 config=config, resume=True, validate=validate, **work)
    segments = [k for k in recipe["segments"] if segment_name(k) not in zoo.names()]
    finished = [segment_name(k) for k in recipe["segments"] if k not in segments]
    if finished:
        say(f"[6/8] Experiment B: skipping {', '.join(finished)} (finished)")
    if segments:
        epochs_each = f"{recipe['segment_epochs']} epoch{'s' * (recipe['segment_epochs'] != 1)} each"
        say(f"[6/8] Experiment B: segments {', '.join(map(str, segments))}, {epochs_each}")
        finetune(zoo, zoo.parent("base", "fine-tuning"), dataset, where.matrix, where.cache, segments=segments,
                 epochs=recipe["segment_epochs"], config=config, validate=validate, **work)


def _benchmark_and_report(where: Workspace, options: ReproduceOptions, recipe: dict, say) -> Path:
    """Steps 7 and 8: every model on every validation condition (finished results skipped), then the report."""
    from codecbench.report import render
    from codecbench.results.files import read_items, write_run

    bench_spec = dataclasses.replace(where.spec, model_dir=options.out / "zoo", results=options.out / "results",
                                     dataset=options.data, folds=options.folds, split="evaluate", run_id="reproduce",
                                     model=None,
                                     condition=None, category=None, thresholds=None, baseline=None)
    session = BenchmarkSession(Run.resolve(bench_spec), run_id="reproduce", log=lambda message: None)
    done = {(r["model"], r["condition"]): r for r in read_items(session.run_dir)}
    skipped = ran = 0
    for case in session.cases():
        if case.unavailable:
            say(f"[7/8] {case.id}: unavailable here ({case.unavailable})")
            continue
        before = done.get((case.model.name, case.condition.name))
        if before and before.get("model_sha256") == case.model.sha256:
            skipped += 1
            continue
        record, _ = session.run(case)
        ran += 1
        say(f"[7/8] {case.model.name} on {case.condition.name}: {record['accuracy']:.3f} "
            f"[{record['ci_low']:.3f}, {record['ci_high']:.3f}] (n={record['n']})")
    say(f"[7/8] benchmark: {ran} results computed, {skipped} skipped (finished before)")
    session.evaluator  # noqa: B018  (the run's codec facts are measured on its clips, also when all were skipped)
    meta = {**session.meta(), "reproduces": options.paper, "reproduce": recipe}
    write_run(session.results_dir, session.run_dir, meta)
    markdown, written = render(session.results_dir / "results.json", options.out / "report")
    report = options.out / "report" / "report.md"
    say(f"[8/8] report: {report} (and {len(written) - 1} more files; HTML: {options.out / 'report' / 'html'})")
    return report
