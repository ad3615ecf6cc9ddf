"""A plan before every long run: what is cached, what is missing, bytes, free disk, and hours.

:func:`plan_fill` counts the (clip, condition) pairs to code and featurise against the cache
(by content, as the fill would), estimates the bytes the cache will grow by from the codecs' bit
rates and the feature layout, and reads the free disk of the cache's file system. Time comes
from :mod:`codecbench.run.rates`: rates measured on another machine (``--rates``), or a short
measurement on this one (each codec's round trip and the features on a few scenes, and a few
inference and training steps of the model at its batch size on whatever device Keras sees).
``--dry-run`` prints a :class:`Plan` and stops; a real run that would not fit the free disk stops
before it starts (:meth:`Plan.check_disk`), unless ``--force``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from tabulate import tabulate

from codecbench import codecs
from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.core.fsutil import file_digest
from codecbench.core.parallel import usable_cores
from codecbench.core.progress import duration_text
from codecbench.core.wording import counted
from codecbench.errors import EnvironmentProblem
from codecbench.run.rates import (
    Rates,
    bottleneck,
    codec_seconds,
    decode_seconds,
    feature_seconds,
    fill_overhead_seconds,
    local_rates,
    model_rates,
    worker_startup_seconds,
)
from codecbench.signal import features
from codecbench.signal.audio import source_rate
from codecbench.store.fill import coded_key, feature_key
from codecbench.training.schedule import TrainingRun

#: Bytes of an entry besides its payload: file header and JSON metadata (packet sizes of a 10-s clip included).
ENTRY_OVERHEAD = {"coded": 4096, "features": 1024}
#: Bytes per (clip, condition) of the former cache (decoded float32 PCM + 3-channel float32 features), 10 s.
PCM_CACHE_BYTES_PER_PAIR = 441_000 * 4 + 128 * 423 * 3 * 4


class DiskSpaceError(EnvironmentProblem):
    """A run would fill the disk; nothing was started."""


@dataclasses.dataclass
class Stage:
    name: str
    work: str
    seconds: float
    #: what bounds the stage: "coding (N cores)", "the model (device)" or "the feed (N workers)"
    bound_by: str = ""
    #: core-seconds of the host's CPU the stage's work takes (a training on an accelerator: its feed and its own
    #: process; a fill: its coding), where known: what a stage run beside it can use is the rest
    host_core_seconds: float | None = None
    #: the stages this one runs beside, on the host cores they leave idle: it adds to the total only what it outlasts
    beside: tuple[str, ...] = ()


@dataclasses.dataclass
class Plan:
    title: str
    cache_root: Path
    clips: int
    missing_files: int
    conditions: list[Condition]
    coded_cached: int = 0
    coded_missing: int = 0
    features_cached: int = 0
    features_missing: int = 0
    #: of ``features_missing``, the original's pairs (featurised from the source, nothing to decode)
    original_features_missing: int = 0
    bytes_needed: int = 0
    free_bytes: int = 0
    stages: list[Stage] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: the machine the times are for: "this machine", or the source of ``--rates``
    machine: str = "this machine"
    #: the host's cores (what stages run beside others share)
    cores: int = 1

    @property
    def bottleneck(self) -> Stage | None:
        """The stage that takes longest (what to speed up first); a stage run beside others is not one."""
        alone = [s for s in self.stages if not s.beside]
        return max(alone, key=lambda s: s.seconds) if alone else None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages if not s.beside) + sum(self.outlasting().values())

    def outlasting(self) -> dict[tuple[str, ...], float]:
        """Seconds that each group of stages run beside the same others adds to the total: its host work less the
        core-seconds those others leave idle, spread over the host's cores (0 where it fits in their idle time)."""
        groups: dict[tuple[str, ...], list[Stage]] = {}
        for stage in self.stages:
            if stage.beside:
                groups.setdefault(stage.beside, []).append(stage)
        return {names: max(0.0, sum(s.host_core_seconds or s.seconds * self.cores for s in group)
                           - self.idle_core_seconds(names)) / self.cores
                for names, group in groups.items()}

    def idle_core_seconds(self, names: Sequence[str]) -> float:
        """Core-seconds of the host that the stages ``names`` leave idle while they run (none where their host work
        is not known: they are taken to keep every core busy)."""
        return sum(max(0.0, self.cores * s.seconds - s.host_core_seconds) for s in self.stages
                   if s.name in names and not s.beside and s.host_core_seconds is not None)

    @property
    def fits(self) -> bool:
        return self.bytes_needed <= self.free_bytes

    def check_disk(self, force: bool = False) -> None:
        """Raise :class:`DiskSpaceError` with the numbers if the cache would outgrow the free disk."""
        if not self.fits and not force:
            raise DiskSpaceError(f"{self.title}: the cache at {self.cache_root} would grow by "
                                 f"{_size(self.bytes_needed)} but only {_size(self.free_bytes)} are free; nothing "
                                 "was started. Free space, point --cache-dir elsewhere, or pass --force")

    def report(self) -> str:
        lines = [f"plan: {self.title}",
                 f"  clips: {self.clips:,}" + (f" ({self.missing_files:,} listed files not present: estimated at "
                                                f"10 s each)" if self.missing_files else ""),
                 f"  conditions: {', '.join(c.name for c in self.conditions)}",
                 f"  coded pairs: {self.coded_cached:,} cached, {self.coded_missing:,} to code",
                 f"  feature pairs: {self.features_cached:,} cached, {self.features_missing:,} to featurise",
                 f"  cache growth: {_size(self.bytes_needed)} at {self.cache_root} "
                 f"(free: {_size(self.free_bytes)}{'' if self.fits else ' -- DOES NOT FIT'})"]
        if self.stages:
            rows = [[s.name, s.work, duration_text(s.seconds) + (" beside" if s.beside else ""), s.bound_by]
                    for s in self.stages]
            # in hours the total is rounded to 6 minutes: whether a run fits an hour needs the minutes too
            rows.append(["total", "", duration_text(self.seconds)
                         + (f" ({self.seconds / 60:.1f} min)" if self.seconds >= 3600 else ""), ""])
            lines.append(tabulate(rows, headers=["stage", "work", f"time on {self.machine}", "bound by"],
                                  tablefmt="github"))
            worst = self.bottleneck
            if worst is not None and self.seconds > 0:
                lines.append(f"  bottleneck: {worst.name} ({worst.seconds / self.seconds:.0%} of the time), bound by "
                             f"{worst.bound_by or 'its own work'}")
            for names, extra in self.outlasting().items():
                work = sum(s.host_core_seconds or s.seconds * self.cores for s in self.stages if s.beside == names)
                lines.append(f"  beside: {' and '.join(names)} leave {self.idle_core_seconds(names) / 3600:.1f} "
                             f"core-h of the host's {self.cores} cores idle; the work beside them takes "
                             f"{work / 3600:.1f} core-h, so it adds " + (f"{duration_text(extra)} to the total"
                                                                           if extra else "nothing to the total"))
        lines += [f"  note: {n}" for n in self.notes]
        busy = busy_machine() if self.machine == "this machine" else None
        if busy:
            lines.append(f"  note: {busy}")
        return "\n".join(lines)


def busy_machine() -> str | None:
    """A note when this machine is busy (its load above its cores): the stage times were measured on it now, so a
    run may take about that much longer than they say (a plan said 15.6 min for a run of 31.5 on a loaded machine)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # not on every platform
        return None
    cores = usable_cores()
    if load <= cores:
        return None
    return (f"this machine is busy (load {load:.1f} on {cores} cores): the times above are for it idle; with the "
            f"load as it is, expect about {load / cores:.1f}x longer")


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def free_bytes(folder: Path) -> int:
    """Free bytes on the file system that holds ``folder`` (or its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _duration_of(path: Path) -> float | None:
    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # unreadable: the fill reports it; the plan assumes a TAU clip
        return None


def entry_bytes(condition: Condition, seconds: float) -> tuple[int, int]:
    """Estimated cache bytes of one clip under ``condition``: (coded entry, features entry)."""
    frames = 1 + int(seconds * features.RECIPE["sample_rate"]) // features.RECIPE["hop_length"]
    feature = features.RECIPE["n_mels"] * frames * 4 + ENTRY_OVERHEAD["features"]
    coded = 0 if condition.is_original else int(condition.kbps * 1000 / 8 * seconds * 1.05) + ENTRY_OVERHEAD["coded"]
    return coded, feature


def plan_fill(plan: Plan, clips: Sequence, conditions: Sequence[Condition], cache: Cache, *,
              with_features: bool, absent_seconds: float = 10.0) -> Plan:
    """Add the counts and bytes of coding (and featurising) ``clips`` under ``conditions`` to ``plan``; a clip whose
    file is not there yet counts as ``absent_seconds`` long (a TAU clip, unless the recipe that makes it says)."""

    conds = list(conditions)
    resampled: dict[str, set] = {}
    for clip in clips:
        path = Path(getattr(clip, "path", clip))
        seconds = _duration_of(path) if path.is_file() else None
        digest = file_digest(path) if seconds is not None else None
        rate = source_rate(path) if seconds is not None else 0
        if seconds is None:
            seconds = absent_seconds
        for cond in conds:
            coded_b, feature_b = entry_bytes(cond, seconds)
            if rate and not cond.is_original and codecs.codec_rate(cond, rate) != rate:
                resampled.setdefault(cond.name, set()).add((rate, codecs.codec_rate(cond, rate)))
            if not cond.is_original:
                if digest and cache.contains("coded", coded_key(digest, cond, rate)):
                    plan.coded_cached += 1
                else:
                    plan.coded_missing += 1
                    plan.bytes_needed += coded_b
            if with_features:
                if digest and cache.contains("features", feature_key(digest, cond, rate)):
                    plan.features_cached += 1
                else:
                    plan.features_missing += 1
                    if cond.is_original:
                        plan.original_features_missing += 1
                    plan.bytes_needed += feature_b
    for name, pairs in resampled.items():  # said before anything is coded (codecs.codec_rate decides)
        plan.notes.append(f"{name} codes " + ", ".join(f"{src / 1000:g}-kHz clips at {dst / 1000:g} kHz"
                                                       for src, dst in sorted(pairs)) + " (its nearest rate above)")
    return plan


def new_plan(title: str, clips: Sequence, conditions: Sequence[Condition], cache: Cache) -> Plan:
    missing = sum(1 for c in clips if not Path(getattr(c, "path", c)).is_file())
    return Plan(title, cache.root, len(clips), missing, list(dict.fromkeys(conditions)),
                free_bytes=free_bytes(cache.root))


def fill_stage(plan: Plan, seconds_per_clip: float, jobs: int, scheduler: str | None,
               rates: Rates | None = None) -> list[Stage]:
    """Stages of coding and featurising what ``plan`` counts as missing, on ``jobs`` local workers (or, with
    ``rates`` from another machine, on its cores): the steady-state cost per pair, plus the workers' start-up once
    (they start together)."""
    scale = seconds_per_clip / 10.0
    working = bool(plan.coded_missing or plan.features_missing)
    if rates is not None and rates.fill_seconds_per_pair is not None:
        cores = rates.cores or jobs
        per_pair = rates.fill_seconds_per_pair * scale
        # the original's pairs are featurised only; an older rates file has no rate for them: priced as coded ones
        originals = plan.original_features_missing if rates.fill_seconds_per_original is not None else 0
        per_original = (rates.fill_seconds_per_original or 0.0) * scale
        pairs = max(plan.coded_missing, plan.features_missing - originals)
        startup = (rates.worker_startup_seconds or 0.0) if pairs or originals else 0.0
        started = f" + {startup:.1f} s start-up" if rates.worker_startup_seconds is not None else \
            " (start-up included in that rate: an older rates file)"
        work = f"{pairs:,} pairs, {per_pair:.2f} core-s each" + \
            (f", and {originals:,} of the original, {per_original:.3f} core-s each" if originals else "") + \
            f", {cores} cores" + (started if pairs or originals else "")
        return [Stage("coding + features", work, (pairs * per_pair + originals * per_original) / cores + startup,
                      f"coding ({_cores_text(cores)})")]
    # timed only when there is work to time: a warm cache plans in a second. Timed on scenes of the clips' own
    # length (up to 10 s, in half seconds), so a clip's fixed costs count once and short clips calibrate quickly
    timed_seconds = max(0.5, min(10.0, round(seconds_per_clip * 2) / 2))
    scale = seconds_per_clip / timed_seconds
    coded = [c for c in plan.conditions if not c.is_original]
    per_coded = statistics.mean(codec_seconds(c, timed_seconds) for c in coded) \
        if plan.coded_missing and coded else 0.0
    # a pair is featurised from its decode (a coded condition) or from the source (the original)
    per_features = (feature_seconds(timed_seconds) + statistics.mean(decode_seconds(c, timed_seconds)
                                                                     for c in plan.conditions)
                    if plan.features_missing else 0.0)
    per_coded += fill_overhead_seconds(timed_seconds) if plan.coded_missing else 0.0
    startup = worker_startup_seconds() if working and jobs > 1 and not scheduler else 0.0
    workers = (f"{counted(jobs, 'local worker')}" if not scheduler
               else f"dask at {scheduler} (assumed {jobs} workers)")
    coding = f"{plan.coded_missing:,} pairs, {per_coded * scale:.2f} s each, {workers}" if plan.coded_missing \
        else "0 pairs (all cached)"
    coding += f" + {startup:.1f} s start-up" if startup else ""
    featurising = f"{plan.features_missing:,} pairs, {per_features * scale * 1000:.0f} ms each (decode + log-mel)" \
        if plan.features_missing else "0 pairs (all cached)"
    return [Stage("coding", coding, plan.coded_missing * per_coded * scale / jobs + startup,
                  f"coding ({_cores_text(jobs)})"),
            Stage("features", featurising,
                  plan.features_missing * per_features * scale / jobs, f"coding ({_cores_text(jobs)})")]


def _cores_text(n: int) -> str:
    return counted(n, 'core')


def clip_seconds(clips: Sequence, sample: int = 32) -> float:
    """Typical clip duration of a selection: the median over up to ``sample`` present files spread over it (read
    from their headers); TAU's 10 s if none is present."""
    picked = [clips[int(i)] for i in np.linspace(0, len(clips) - 1, min(sample, len(clips)))] if len(clips) else []
    durations = [d for d in (_duration_of(Path(getattr(c, "path", c))) for c in picked) if d]
    return float(statistics.median(durations)) if durations else 10.0


def training_plan(title: str, dataset, conditions: Sequence, cache: Cache, *, config, train_config, runs: Sequence[
                  TrainingRun], jobs: int, scheduler: str | None = None, rates: Rates | None = None,
                  validations_per_epoch: int = 0) -> Plan:
    """The plan of fine-tuning or training runs: the training set's fill, then ``runs`` of ``config``'s FCNN at
    ``train_config``'s batch size and crop (a :class:`TrainingRun` each: the whole model over the split under
    every condition or some (base training: 1), or segments alone, each at its own rate). ``rates``: price
    every stage with rates measured on another machine (:class:`Rates`); each stage names what bounds it.
    ``validations_per_epoch``: clips (times conditions) scored after every epoch (``--validate``)."""
    clips = dataset.clips("train")
    plan = plan_fill(new_plan(title, clips, conditions, cache), clips, conditions, cache, with_features=True)
    if rates is not None:
        plan.machine = f"the machine of {rates.source}"
    seconds = clip_seconds(clips)
    plan.stages += fill_stage(plan, seconds, jobs, scheduler, rates)
    if not runs:
        # every training finished (a resumed or repeated reproduce): timing the model would build, compile and train
        # it for two short epochs (seconds on a CPU, a compile on an accelerator) to price nothing
        plan.notes.append("no training left to run: the model is not timed")
        return plan
    frames = features.n_frames(int(seconds * features.RECIPE["sample_rate"]))
    # a crop longer than the clips is no crop: training runs on the clips' own frames (4-s clips: 173, not 400)
    crop = min(train_config.crop_frames, frames) if train_config.crop_frames else None
    rates_model = model_rates(config, batch_size=train_config.batch_size, crop_frames=crop, full_frames=frames,
                              rates=rates, train_config=dataclasses.replace(train_config, crop_frames=crop))
    save = rates_model.get("save_seconds", 0.0)
    # what runs after every epoch besides training: the checkpoint save, and the validation (inference)
    per_epoch = save + validations_per_epoch / rates_model["inference_clips_per_s"]
    feed = local_rates(rates)
    feed_rate = feed.feed_clips_per_s_per_worker * 10.0 / seconds if feed.feed_clips_per_s_per_worker else None
    device = rates_model.get("device") or rates_model.get("backend", "")
    rate, bound = bottleneck(rates_model["train_examples_per_s"], feed_rate, feed.feed_workers, device)
    plan.cores = feed.cores or usable_cores()

    def host(stage_seconds: float, reads: int) -> float | None:
        """A training's host work: its feed's ``reads`` and its own process (one core) throughout; unknown (every
        core busy) where it trains in its own process, on the CPU"""
        return reads / feed_rate + stage_seconds if feed.feed_workers and feed_rate else None

    segment_note = None
    for run in runs:
        examples = len(clips) * (run.conditions or len(plan.conditions))
        after_epoch = (f" + {per_epoch:.1f} s per epoch to save" + (f" and validate {validations_per_epoch:,} clips"
                                                                  if validations_per_epoch else "")
                       if per_epoch else "")
        if not run.segments:
            stage_s = run.epochs * (examples / rate + per_epoch)
            plan.stages.append(Stage(run.name, f"{run.epochs} epochs x {examples:,} examples at {rate:.1f}/s"
                                     + after_epoch, stage_s, bound, host(stage_s, run.epochs * examples)))
            continue
        model_rates_k, segment_note = segment_rates(config, crop or frames, rates_model, rates)
        from codecbench.training.shared import why_not_together  # (it loads Keras: plans of no training do not)

        if len(run.segments) > 1 and feed.feed_workers and feed_rate and why_not_together() is None:
            # an accelerator's run: the segments train together on one pass of the data (codecbench.training.shared),
            # the model's work adding up, the feed's done once (finetune's own rule, on this Keras backend)
            model_s = sum(examples / model_rates_k[k] for k in run.segments)
            feed_s = examples / (feed_rate * feed.feed_workers)
            stage_s = run.epochs * (max(model_s, feed_s) + per_epoch * len(run.segments))
            plan.stages.append(Stage(run.name, f"{run.epochs} epochs x {examples:,} examples, {len(run.segments)} "
                                     "segments together on one pass of the data" + after_epoch, stage_s,
                                     f"the model ({device})" if model_s >= feed_s else
                                     f"the feed ({feed.feed_workers} workers)", host(stage_s, run.epochs * examples)))
            plan.notes.append(f"{run.name}: one pass of the data for its {len(run.segments)} segments: per epoch the "
                              f"model {duration_text(model_s)}, the feed {duration_text(feed_s)}")
            continue
        priced = {k: bottleneck(model_rates_k[k], feed_rate, feed.feed_workers, device) for k in run.segments}
        low, high = min(r for r, _ in priced.values()), max(r for r, _ in priced.values())
        stage_s = sum(run.epochs * (examples / r + per_epoch) for r, _ in priced.values())
        plan.stages.append(Stage(run.name, f"{run.epochs} epochs x {examples:,} examples per segment at "
                                 + (f"{low:.1f}/s" if high - low < 0.05 else f"{low:.1f}-{high:.1f}/s") + after_epoch,
                                 stage_s, _bounds(priced), host(stage_s, run.epochs * examples * len(priced))))
    if segment_note:
        plan.notes.append(segment_note)
    examples = len(clips) * len(plan.conditions)
    epoch = duration_text(examples / rate + per_epoch)
    plan.notes.append(training_memory(config, train_config.batch_size, crop or frames, feed.feed_workers or 0))
    plan.notes.append(f"one training epoch of {examples:,} examples: {epoch} at batch "
                      f"{train_config.batch_size} x {crop or frames} frames (clips of {seconds:g} s); the model trains "
                      f"{rates_model['train_examples_per_s']:.1f} examples/s"
                      + (" (measured through the training loop, two short epochs)" if "save_seconds" in rates_model
                         else "") + " and infers "
                      f"{rates_model['inference_clips_per_s']:.1f} clips/s on {device}"
                      + (f"; the feed reads {feed_rate * feed.feed_workers:.0f} clips/s with {feed.feed_workers} "
                         f"worker{'s' if feed.feed_workers > 1 else ''}" if feed.feed_workers and feed_rate
                         else "; the feed reads in the model's process"))
    return plan


def _bounds(priced: dict[int, tuple[float, str]]) -> str:
    """What bounds a stage of segments: one thing for all, else each with its segments ("the feed (15 workers) for
    segments 4-10, the model (...) for 1-3")."""
    by: dict[str, list[int]] = {}
    for k, (_, bound) in sorted(priced.items()):
        by.setdefault(bound, []).append(k)
    if len(by) == 1:
        return next(iter(by))
    return ", ".join(f"{bound} for segment{'s' if len(ks) > 1 else ''} {_ranges(ks)}" for bound, ks in by.items())


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` as ``1-3, 5``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def segment_rates(config, frames: int, rates_model: dict, rates: Rates | None) -> tuple[dict[int, float], str]:
    """Training examples/s of each segment fine-tuned alone, and how they were priced: measured (``bench model
    --segments``, carried by ``rates``) where the model's segments are the ones measured, else the full model's
    rate over the segment's share of a full step's arithmetic (:func:`~codecbench.models.training_step_shares`)."""
    from codecbench.models import build_fcnn, training_step_shares

    shares = training_step_shares(build_fcnn(config), frames)
    measured = dict(rates.segment_train_examples_per_s or {}) if rates is not None else {}
    if rates is not None and measured and set(measured) == set(shares):
        device = rates.device or "its device"
        return measured, (f"segments priced at their rates measured on {rates.source} ({device}): "
                          f"{min(measured.values()):.1f}-{max(measured.values()):.1f} examples/s")
    full = rates_model["train_examples_per_s"]
    return ({k: full / share for k, share in shares.items()},
            f"segments priced by their share of a full step's arithmetic ({min(shares.values()):.2f}-"
            f"{max(shares.values()):.2f}: the backward pass stops at the trained segment, frozen segments compute "
            "no weight gradients), a plan, not a timing: `bench model --segments` measures them")


def training_memory(config, batch_size: int, frames: int, feed_workers: int) -> str:
    """What training holds in memory: the model's weights, gradients and optimiser state (float32), and the batches
    in flight on the host (one per feed worker and one being trained on; the training set stays in the cache)."""
    from codecbench.models.fcnn import parameter_count

    params = parameter_count(config)
    bins, _, channels = config.input_shape
    example = 4 * bins * frames * channels
    batches = batch_size * example * (max(feed_workers, 0) + 2)
    return (f"memory: the model's {params:,} parameters with gradients and momentum {_size(12 * params)} (on its "
            f"device, plus activations), batches in flight on the host {_size(batches)} ({batch_size} examples of "
            f"{_size(example)}); the training set is read from the cache, not held")


def evaluation_plan(title: str, clips: Sequence, conditions: Sequence, cache: Cache, *, models: dict, jobs: int,
                    scheduler: str | None = None, rates: Rates | None = None, dataset=None,
                    split: str = "evaluate", fill_beside: tuple[str, ...] = (), share_inputs: bool = True) -> Plan:
    """The plan of a benchmark run: generating the default dataset's split if it is not there yet, the split's fill,
    then every model on every condition.

    ``models`` maps names to their FCNN configs (None: not an FCNN; timed like the first one that is); ``rates``:
    as in :func:`training_plan`; ``dataset`` and ``split``: what the clips are (for the synthetic default, what is
    still to generate); ``fill_beside``: the stages (of the plan this one joins) the fill runs beside
    (:class:`codecbench.store.beside.FillBeside`); ``share_inputs``: the models are scored together on each
    condition's inputs, read once (``--share-prefix``, the default), else each reads them.
    """
    generating = dataset is not None and split in dataset.to_generate
    plan = plan_fill(new_plan(title, clips, conditions, cache), clips, conditions, cache, with_features=True,
                     absent_seconds=dataset.longest_seconds(split) if generating else 10.0)
    if rates is not None:
        plan.machine = f"the machine of {rates.source}"
    if generating:
        plan.stages.append(generation_stage(dataset, split, jobs))
        plan.missing_files = 0  # not missing: generated first, and their length is the recipe's
    seconds = dataset.longest_seconds(split) if generating else clip_seconds(clips)
    # the cores fill_stage prices the fill on: the rates' machine's, or this run's jobs
    fill_cores = (rates.cores or jobs) if rates is not None and rates.fill_seconds_per_pair is not None else jobs
    feed = local_rates(rates)
    plan.cores = feed.cores or usable_cores()
    plan.stages += [dataclasses.replace(stage, host_core_seconds=stage.seconds * fill_cores, beside=fill_beside)
                    if fill_beside else stage for stage in fill_stage(plan, seconds, jobs, scheduler, rates)]
    frames = features.n_frames(int(seconds * features.RECIPE["sample_rate"]))
    timed: dict = {}
    feed_rate = feed.feed_clips_per_s_per_worker * 10.0 / seconds if feed.feed_clips_per_s_per_worker else None
    scored = len(clips) * len(plan.conditions)
    model_s, separate_s, device = 0.0, 0.0, ""
    for name, config in models.items():
        key = json_key(config)
        if key not in timed:
            timed[key] = model_rates(config, batch_size=1, crop_frames=None, full_frames=frames, train=False,
                                     rates=rates)
        device = timed[key].get("device") or timed[key].get("backend", "")
        model_s += scored / timed[key]["inference_clips_per_s"]
        separate_s += scored / bottleneck(timed[key]["inference_clips_per_s"], feed_rate, feed.feed_workers,
                                          device)[0]
    if not timed:
        plan.notes.append("no model of the selection is an FCNN with a recorded config: evaluation is not timed")
        return plan
    rate_text = ", ".join(f"{r['inference_clips_per_s']:.1f}" for r in timed.values())
    work = (f"{counted(len(models), 'model')} x {counted(len(clips), 'clip')} x "
            f"{counted(len(plan.conditions), 'condition')} at {rate_text} clips/s")
    if share_inputs and len(models) > 1:
        # the evaluator reads a condition's inputs once for all the models (Evaluator.evaluate_many): the feed's
        # work is done once, the models' adds up (an upper bound: models that share layers compute them once)
        feed_s = scored / (feed_rate * feed.feed_workers) if feed_rate and feed.feed_workers else 0.0
        bound = f"the model ({device})" if model_s >= feed_s else \
            f"the feed ({feed.feed_workers} worker{'s' if feed.feed_workers != 1 else ''})"
        plan.stages.append(Stage("evaluation", work + ", each condition's inputs read once for all",
                                 max(model_s, feed_s), bound))
        return plan
    bound = bottleneck(next(iter(timed.values()))["inference_clips_per_s"], feed_rate, feed.feed_workers,
                       device)[1]
    plan.stages.append(Stage("evaluation", work, separate_s, bound))
    return plan


def generation_stage(dataset, split: str, jobs: int) -> Stage:
    """Generating a synthetic split on first use, timed by generating one of its clips here."""

    from codecbench.datasets import scene_wav_bytes

    recipe = dataset.recipe
    n = dataset.to_generate[split]
    start = time.perf_counter()
    scene_wav_bytes(0, 1, "a", float(recipe["duration"]), int(recipe["sample_rate"]))
    per_clip = time.perf_counter() - start
    workers = max(1, min(16, usable_cores(), n, jobs if jobs and jobs > 0 else 16))
    return Stage("generate dataset", f"{n:,} synthetic {split} clips of {recipe['duration']:g} s (first use only) "
                                     f"at {per_clip:.2f} s per clip", per_clip * n / workers,
                 _cores_text(workers))


def json_key(config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
