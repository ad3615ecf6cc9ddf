"""One benchmark session: the selection, the evaluator, thresholds, baseline and the records of a run.

A :class:`BenchmarkSession` is built from a :class:`~codecbench.run.spec.RunSpec`; the pytest plugin
holds one per pytest session and only asks it for the cases and to run one. Evaluating (shared
work: each clip coded once, each model run once per condition), judging
(:func:`codecbench.results.judge.judge`, a pure function) and recording (item files, SQLite history)
are separate steps here.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from codecbench.codecs import Condition
from codecbench.core.fsutil import atomic_write
from codecbench.core.fsutil import check_writable as fs_check_writable
from codecbench.core.parallel import check_scheduler
from codecbench.core.provenance import git_commit, library_versions, machine, now
from codecbench.core.wording import counted
from codecbench.errors import CodecbenchError, UsageError, noted
from codecbench.run.plan import evaluation_plan, new_plan, plan_fill
from codecbench.run.resolve import Run
from codecbench.run.spec import RunSpec
from codecbench.signal.audio import LEVEL_POLICY
from codecbench.store.devices import device_details, resolve_devices
from codecbench.zoo import ModelEntry, Zoo

if TYPE_CHECKING:
    from codecbench.codecs.matrix import Matrix
    from codecbench.datasets import Dataset
    from codecbench.results.files import DatasetMatch
    from codecbench.results.thresholds import Thresholds
    from codecbench.run.evaluation import Evaluator


@dataclasses.dataclass(frozen=True)
class Case:
    """One model on one condition: a pytest item. Holds the resolved objects, never names to look up again."""

    model: ModelEntry
    condition: Condition
    category: str | None
    #: why the condition cannot be coded here (asked once per condition per run), or None
    unavailable: str | None = None

    @property
    def id(self) -> str:
        return f"{self.model.name}-{self.condition.name}"


def check_writable(folder: Path, option: str) -> None:
    """The results folder's check (:func:`codecbench.core.fsutil.check_writable`), saying what would be lost."""
    fs_check_writable(folder, option, "results would be lost after the evaluation: choose a writable folder")


def check_before_work(spec: RunSpec) -> None:
    """What a benchmark run checks before any work (before its dataset is even generated): the results folder can be
    written, the scheduler answers, and the devices asked for exist (the benchmark trains nothing, but devices it
    cannot use are named, not ignored)."""
    check_writable(spec.results, "--results")
    check_scheduler(spec.scheduler)  # a scheduler that does not answer is named, in its own family
    if spec.devices != "auto":
        resolve_devices(spec.devices)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class BenchmarkSession:
    """Everything one benchmark run shares. Construction validates the selection; nothing is coded yet."""

    def __init__(self, run: Run, *, run_id: str | None = None, log: Callable[[str], None] | None = None,
                 force: bool = False, worker: bool = False, checked: bool = False):
        """``checked``: :func:`check_before_work` ran on the spec already (before the run was resolved, as the
        plugin does: resolving generates a missing synthetic split)."""
        spec = run.spec
        #: the run this session works on: its spec, matrix, zoo, models, conditions, dataset and thresholds are the
        #: run's own (read through it, never copied)
        self.resolved = run
        self._shared: set[Condition] = set()
        self.force = force
        #: an xdist worker runs only some of the cases: each is evaluated alone there (no shared prefix per condition)
        self.worker = worker
        self.run_id = run_id or spec.run_id or new_run_id()
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.results_dir = spec.results
        self.run_dir = self.results_dir / "runs" / self.run_id
        if not checked:
            check_before_work(spec)  # before any work, not after the whole evaluation
        self.history = self.results_dir / "history.sqlite"
        self.baseline_match: DatasetMatch | None = None
        self._history_warned = False
        self.baseline = self._load_baseline(spec.baseline) if spec.baseline else None
        self.needed_conditions: list[Condition] = list(self.conditions)
        self._evaluator: Evaluator | None = None
        self._meta: dict | None = None

    # -- the run's own, read through it ------------------------------------------------------------------------
    @property
    def spec(self) -> RunSpec:
        return self.resolved.spec

    @property
    def matrix(self) -> Matrix:
        return self.resolved.matrix

    @property
    def zoo(self) -> Zoo:
        return self.resolved.zoo

    @property
    def dataset(self) -> Dataset:
        return self.resolved.dataset

    @property
    def thresholds(self) -> Thresholds | None:
        return self.resolved.thresholds

    @property
    def models(self) -> tuple[ModelEntry, ...]:
        return self.resolved.models

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self.resolved.conditions

    @classmethod
    def from_spec(cls, spec: RunSpec, *, plan_only: bool = False, log: Callable[[str], None] | None = None,
                  **options) -> BenchmarkSession:
        """Resolve ``spec`` into its :class:`~codecbench.run.resolve.Run` and open a session on it."""
        return cls(Run.resolve(spec, plan_only=plan_only, log=log), log=log, **options)

    def cases(self) -> list[Case]:
        return [Case(m, c, self.matrix.category_of(c), self.resolved.unavailable(c))
                for m in self.models for c in self.conditions]

    def available(self, conditions) -> list[Condition]:
        """Those of ``conditions`` that can be coded here (as the run found)."""
        return self.resolved.available(conditions)

    def _load_baseline(self, path: Path) -> dict:
        from codecbench.results.files import ResultsError, compare_datasets, load_results, restrict_record

        try:
            doc = load_results(path)
        except ResultsError as exc:
            raise noted(exc, "--baseline") from None
        meta = doc.get("meta", {})
        ours = {"dataset": self.dataset_meta()}
        match = compare_datasets(meta, ours, max_changed=self.spec.baseline_max_changed)
        if not match.comparable:
            raise UsageError(f"--baseline {path}: cannot be compared with this run: {match.reason}")
        if match.clips is not None:
            self.log(f"codecbench: --baseline {path}: {match.reason}")
        if meta.get("matrix", {}).get("fingerprint") != self.matrix.fingerprint():
            raise UsageError(f"--baseline {path}: recorded with matrix {meta.get('matrix', {}).get('name')!r}, "
                             f"which differs from this run's {self.matrix.name!r}")
        for model in self.models:
            before, now = meta.get("models", {}).get(model.name), model.sha256
            if before and before != now:
                self.log(f"codecbench: --baseline {path}: model {model.name!r} has changed since the baseline "
                         f"(sha256 {before[:12]} then, {now[:12]} now)")
        records = {}
        for r in doc["results"]:
            if len(set(r["clips"])) != len(r["clips"]):
                raise UsageError(f"--baseline {path}: {r['model']} on {r['condition']} lists a clip twice; it was "
                                 "recorded by a codecbench that keyed clips by file name alone; re-record it")
            records[(r["model"], r["condition"])] = restrict_record(r, match.clips)
        self.baseline_match = match
        return records

    def dataset_meta(self) -> dict:
        """What identifies the scored data: name, split, content fingerprint, recipe and per-clip digests."""
        split = self.spec.split
        return {"name": self.dataset.name, "split": split, "root": str(self.dataset.root),
                "fingerprint": self.dataset.fingerprint(split), "recipe": self.dataset.recipe,
                "clip_digests": self.dataset.clip_digests(split), "class_names": self.dataset.class_names,
                "sample_rates": self.dataset.sample_rates(split),
                **({"folds": {k: list(v) for k, v in self.spec.folds}} if self.spec.folds else {})}

    # -- evaluation --------------------------------------------------------------------------
    @property
    def evaluator(self):
        """Created on first use; the first use codes and featurises every needed condition in one fill."""
        if self._evaluator is None:

            needed = self.available(self.needed_conditions)
            clips = self.dataset.clips(self.spec.split)
            plan_fill(new_plan("benchmark", clips, needed, self.resolved.cache), clips, needed, self.resolved.cache,
                      with_features=True).check_disk(self.force)
            self._evaluator = self.resolved.evaluator(log=self.log)
            self._evaluator.store.prepare(needed)
            self.record_meta()
        return self._evaluator

    def plan(self):
        """What this run would do (:class:`codecbench.run.plan.Plan`): pairs, bytes, free disk and time here."""
        from codecbench.models import FCNNConfig

        needed = self.available(self.needed_conditions)
        configs = {m.name: FCNNConfig.from_dict(m.metadata["config"]) for m in self.models
                   if m.kind == "keras" and "config" in m.metadata}
        return evaluation_plan(f"benchmark {counted(len(self.models), 'model')} x "
                               f"{counted(len(needed), 'condition')} on "
                               f"{self.dataset.name} {self.spec.split}", self.dataset.clips(self.spec.split), needed,
                               self.resolved.cache, models=configs, jobs=self.spec.jobs, scheduler=self.spec.scheduler,
                               rates=self.spec.rates, dataset=self.dataset, split=self.spec.split,
                               share_inputs=self.spec.share_prefix)

    def meta(self) -> dict:
        if self._meta is None:

            self._meta = {"run_id": self.run_id, "started": now(), "git_commit": git_commit(self.spec.project_root),
                          "dataset": self.dataset_meta(),
                          "matrix": {"name": self.matrix.name, "source": self.matrix.source,
                                     "fingerprint": self.matrix.fingerprint()},
                          "models": {m.name: m.sha256 for m in self.models},
                          "model_facts": {m.name: self.model_facts(m) for m in self.models},
                          "model_dir": str(self.zoo.root),
                          "thresholds": self.thresholds.source if self.thresholds else None,
                          "baseline": str(self.spec.baseline) if self.spec.baseline else None,
                          "tolerance": self.spec.tolerance, "alpha": self.spec.alpha,
                          "baseline_metric": self.spec.baseline_metric,
                          "baseline_match": (dataclasses.asdict(self.baseline_match) | {"clips": None}
                                             if self.baseline_match else None),
                          "codec_facts": self._evaluator.store.codec_facts if self._evaluator else {},
                          "source_level": {"policy": LEVEL_POLICY,
                                           "scaled_in_this_run": dict(self._evaluator.store.scaled_sources)
                                           if self._evaluator else {}},
                          "precision": self.precision.policy, "precision_reason": self.precision.reason,
                          "share_prefix": self.spec.share_prefix,
                          "frontend_on_device": self.spec.frontend_on_device,
                          "on_error": self.spec.on_error,
                          "libraries": library_versions(), "machine": machine(),
                          "accelerators": [d for d in device_details() if d["kind"] != "CPU"]}
        return self._meta

    def model_facts(self, entry: ModelEntry) -> dict:
        """What a report shows beside a model's accuracies: how it was made and what it costs (the post-filter's
        parameters and added inference time, from its sidecar)."""
        meta = entry.metadata
        facts = {k: meta.get(k) for k in ("strategy", "parent", "epochs", "segments", "precision", "params",
                                          "architecture", "sample_rate", "checkpoint", "label_map", "prompts")
                 if k in meta}
        if (meta.get("batchnorm") or {}).get("check", {}).get("flag"):
            facts["flag"] = meta["batchnorm"]["check"]["flag"]
        facts.update(kind=entry.kind, frontend=entry.frontend.describe())
        if meta.get("postfilter"):
            facts["postfilter"] = meta["postfilter"]
        return facts

    @property
    def precision(self):
        """The dtype policy of this run's Keras models and why (:attr:`codecbench.run.resolve.Run.precision`)."""
        return self.resolved.precision

    def record_meta(self) -> None:
        from codecbench.results.files import record_run

        meta_path = self.run_dir / "meta.json"
        if not meta_path.exists():
            atomic_write(meta_path, json.dumps(self.meta(), indent=1), fsync=False)
            for model, flag in flagged_models(self.models).items():
                self.log(f"codecbench: WARNING: model {model}: {flag}")
        self._to_history(record_run, self.history, self.run_id, self.meta())

    def _to_history(self, write, *args) -> None:
        """Write to the SQLite history; a broken one costs no result (they are in the run folder): one warning."""
        from codecbench.results.files import HistoryError

        try:
            write(*args)
        except HistoryError as exc:
            if not self._history_warned:
                self._history_warned = True
                self.log(f"codecbench: WARNING: {exc}")

    def run(self, case: Case):
        """Evaluate, judge and record one case; return ``(record, verdict)``."""
        from codecbench.results.judge import judge

        if self.spec.share_prefix and case.condition not in self._shared and not self.worker:
            # every selected model on this condition at once, shared layers computed once, on the condition's
            # first case (an xdist worker runs only some of the cases, so there each case is evaluated alone)
            self._shared.add(case.condition)
            try:
                self.evaluator.evaluate_many(self.models, case.condition)
            except CodecbenchError:
                pass  # e.g. the condition is unavailable: each case meets that error below, alone
        result = self.evaluator.evaluate(case.model, case.condition)
        record = result.as_record()
        if record.get("skipped"):
            self.log(f"codecbench: {case.id}: {len(record['skipped'])} clips skipped (--on-error skip), "
                     f"scored on {record['n']} of {record['n'] + len(record['skipped'])}")
        bounds = (self.thresholds.bounds(case.model.name, case.condition.name, case.category)
                  if self.thresholds else None)
        baseline = self.baseline.get((result.model, result.condition)) if self.baseline else None
        verdict = judge(record, bounds or None, baseline, tolerance=self.spec.tolerance, alpha=self.spec.alpha,
                        metric=self.spec.baseline_metric)
        record.update(verdict.facts, outcome=verdict.outcome)
        self.record(record)
        return record, verdict

    def record(self, record: dict) -> None:
        from codecbench.results.files import record_result, write_item

        write_item(self.run_dir, record)   # the run folder first: it is what results.json is merged from
        self._to_history(record_result, self.history, self.run_id, record, now())


def flagged_models(models: Iterable[ModelEntry]) -> dict[str, str]:
    """Models whose sidecar flags them (stale batch-normalisation statistics, :mod:`codecbench.training.batchnorm`),
    with the flag's text, so a run names them before anyone trusts their numbers."""
    out = {}
    for entry in models:
        flag = ((entry.metadata or {}).get("batchnorm") or {}).get("check", {}).get("flag")
        if flag:
            out[entry.name] = flag
    return out
