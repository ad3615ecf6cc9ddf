"""A run resolved once: the settings of a :class:`~codecbench.run.spec.RunSpec` turned into the objects a run works on.

:meth:`Run.resolve` loads the condition matrix, opens the zoo and resolves the selected models to
:class:`~codecbench.zoo.ModelEntry` objects (refusing one whose code the user has not allowed), selects the
conditions and asks once whether each can be coded here, loads the dataset split (a bit rate the codec cannot code
at the data's rate is refused now, before anything is coded) and reads the thresholds. The pytest plugin,
:func:`codecbench.evaluate` and ``reproduce`` build one the same way; everything below takes its objects and never
resolves a model name or asks a condition's availability again.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from codecbench import codecs
from codecbench.codecs import Condition
from codecbench.codecs.matrix import load_matrix
from codecbench.codecs.neural import WEIGHTS_ENV
from codecbench.core.cache import Cache
from codecbench.errors import CodecbenchError, UsageError, noted
from codecbench.results.thresholds import load_thresholds
from codecbench.run.plan import new_plan, plan_fill
from codecbench.run.spec import RunSpec
from codecbench.store.devices import choose_precision
from codecbench.zoo import ALIASES, ModelEntry, Parent, Zoo, ZooError, user_model_dir

if TYPE_CHECKING:
    from codecbench.codecs.matrix import Matrix
    from codecbench.core.cache import Cache
    from codecbench.datasets import Dataset
    from codecbench.results.thresholds import Thresholds
    from codecbench.run.evaluation import Evaluator


@dataclasses.dataclass(frozen=True, eq=False)
class Workspace:
    """The places a :class:`~codecbench.run.spec.RunSpec` names, opened, and the policies over them: its condition
    matrix, its cache, where models are read and written, whether a condition can be coded here (asked once per
    condition), the conditions a remedy trains on, the disk check before a fill, and its dataset loaded on request
    (announced on ``log``). The command line builds one per command (:func:`codecbench.cli.main`) and hands it to the
    command; a :class:`Run` is built on one."""

    spec: RunSpec
    #: where the workspace announces what it loaded (the data line); silent by default
    log: Callable[[str], None] | None = None
    #: each condition's availability, asked once (:meth:`availability`)
    _answers: dict[Condition, tuple[bool, str]] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.spec.codec_weights is not None:
            # through the environment, which worker processes (loky, a local dask cluster) inherit
            if os.environ.get(WEIGHTS_ENV) != str(self.spec.codec_weights):
                os.environ[WEIGHTS_ENV] = str(self.spec.codec_weights)
                codecs.forget_availability()  # answers, here and in local workers, were for the former setting

    @functools.cached_property
    def matrix(self) -> Matrix:
        return load_matrix(self.spec.matrix)

    @functools.cached_property
    def cache(self) -> Cache:
        return Cache(self.spec.cache_dir)

    @functools.cached_property
    def zoo(self) -> Zoo:
        return Zoo(self.spec.model_dir, trust_code=self.spec.trust_code)

    @functools.cached_property
    def models_written(self) -> Zoo:
        """Where new models go: ``--model-dir``, else the user model folder (never the packaged zoo)."""
        return Zoo(self.spec.model_dir or user_model_dir(), trust_code=self.spec.trust_code)

    def parent(self, name: str, use: str) -> Parent:
        """The Keras model ``name`` that a remedy (``use``) starts from, read from ``--model-dir``, else the user model
        folder where it has it, else the packaged zoo; an unknown or non-Keras parent is named before any work."""
        if self.spec.model_dir:
            zoo = self.zoo
        else:
            user = self.models_written
            zoo = user if (name in user.names() or ALIASES.get(name) in user.names()) else \
                Zoo(trust_code=self.spec.trust_code)
        return zoo.parent(name, use)

    def availability(self, condition: Condition) -> tuple[bool, str]:
        """Whether ``condition`` can be coded here, and the backend or why not: asked once per condition."""
        if condition not in self._answers:
            self._answers[condition] = codecs.availability(condition)
        return self._answers[condition]

    @functools.cached_property
    def training_conditions(self) -> list[Condition]:
        """What a remedy of this matrix trains on and can code here: the original (where the matrix includes it) and
        the fine-tuning conditions."""
        return [c for c in self.matrix.training if self.availability(c)[0]]

    def check_disk(self, dataset: Dataset, conditions: Sequence[Condition], *, force: bool = False,
                   split: str = "train") -> None:
        """Stop before a fill whose cache growth would not fit the free disk (unless ``force``)."""
        clips = dataset.clips(split)
        plan_fill(new_plan(f"{dataset.name} {split}", clips, conditions, self.cache), clips, conditions, self.cache,
                  with_features=True).check_disk(force)

    def dataset(self, *, allow_partial: bool = False, listing_only: bool = False,
                splits: tuple[str, ...] | None = None, log: Callable[[str], None] | None = None) -> Dataset:
        """The spec's dataset (its folds), with generated clips and downloads kept in the cache."""
        from codecbench.datasets import load_dataset
        spec = self.spec
        return load_dataset(spec.dataset, cache_dir=self.cache.root, allow_partial=allow_partial,
                            listing_only=listing_only, splits=splits, folds=dict(spec.folds) if spec.folds else None,
                            log=log)

    def load_data(self, **how) -> Dataset:
        """:meth:`dataset`, its splits (and folds) announced with their sizes before any work."""
        dataset = self.dataset(**how)
        if self.log is not None:
            self.log(f"data: {dataset.describe()}")
        return dataset


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """What one run evaluates, resolved once (see the module docstring)."""

    spec: RunSpec
    matrix: Matrix
    zoo: Zoo
    cache: Cache
    #: the selected models of the zoo, in the zoo's order
    models: tuple[ModelEntry, ...]
    #: the selected conditions, in the matrix's order
    conditions: tuple[Condition, ...]
    #: per condition: (whether it can be coded here, the backend or why not), asked once
    availability: Mapping[Condition, tuple[bool, str]]
    dataset: Dataset
    thresholds: Thresholds | None

    @classmethod
    def resolve(cls, spec: RunSpec | Workspace, *, model_names: Sequence[str] | None = None, plan_only: bool = False,
                log: Callable[[str], None] | None = None) -> Run:
        """Resolve ``spec`` (or the spec of a workspace already open, whose places and availability answers the run
        then shares). ``model_names``: the zoo models to run instead of the spec's selection (an empty list: none,
        for callers that bring their own model objects); ``plan_only``: read the dataset's listing only."""
        from codecbench.datasets import DatasetError

        where = spec if isinstance(spec, Workspace) else Workspace(spec)
        spec = where.spec
        matrix, zoo = where.matrix, where.zoo
        models = tuple(zoo.entry(name) for name in _selected_models(spec, zoo, model_names))
        for entry in models:  # before anything is coded: a model that would run code must be allowed to
            zoo.check_trust(entry)
        conditions = tuple(_selected_conditions(spec, matrix))
        try:
            # a plan reads the listing only: it counts what is still to generate or code, and does none of it
            dataset = where.dataset(splits=(spec.split,), listing_only=plan_only, log=log)
            dataset.clips(spec.split)
        except DatasetError as exc:
            raise noted(exc, "--dataset/--split") from None
        for cond in conditions:
            for rate in dataset.sample_rates(spec.split):
                try:
                    codecs.check_rate(cond, rate)
                except CodecbenchError as exc:
                    raise noted(exc, "--condition", detail=f"the dataset has sources at {rate} Hz") from None
        thresholds_path = spec.thresholds
        # the demo's thresholds belong to a packaged matrix: benchmarks/thresholds.toml to the paper's,
        # benchmarks/thresholds-<name>.toml to another (transmission); a matrix without its file runs without them
        default_thresholds = spec.project_root / "benchmarks" / (
            "thresholds.toml" if spec.matrix == "peters" else f"thresholds-{spec.matrix}.toml")
        if thresholds_path is None and spec.is_demo and default_thresholds.is_file() and \
                not spec.matrix.endswith(".toml"):
            thresholds_path = default_thresholds
        thresholds = load_thresholds(thresholds_path, matrix, zoo.names()) if thresholds_path else None
        availability = {c: where.availability(c) for c in conditions}  # the one place a run asks
        return cls(spec, matrix, zoo, where.cache, models, conditions, availability, dataset, thresholds)

    @property
    def split(self) -> str:
        return self.spec.split

    def available(self, conditions: Sequence[Condition] | None = None) -> list[Condition]:
        """Those of ``conditions`` (default: the run's) that can be coded here."""
        return [c for c in (self.conditions if conditions is None else conditions)
                if self.availability.get(c, (True,))[0]]

    def unavailable(self, condition: Condition) -> str | None:
        """Why ``condition`` cannot be coded here, or None."""
        ok, why = self.availability.get(condition, (True, ""))
        return None if ok else why

    @functools.cached_property
    def precision(self):
        """The dtype policy of the run's Keras models and why (:func:`~codecbench.store.devices.choose_precision`:
        ``auto`` stays float32 on a generated dataset, so the embedded default gives the same results everywhere)."""
        return choose_precision(self.spec.precision, reproducible=self.dataset.recipe is not None)

    def frontends(self, extra: Sequence = ()) -> list:
        """The front-ends of the run's models (from their entries) and of ``extra`` scoring models, so one fill
        caches what all of them need."""
        from codecbench.run.evaluation import on_device_if

        fronts = [on_device_if(e.frontend, self.spec.frontend_on_device) for e in self.models]
        return list(dict.fromkeys(fronts + [m.frontend for m in extra]))

    def evaluator(self, *, log: Callable[[str], None], progress: bool | None = None,
                  extra_models: Sequence = ()) -> Evaluator:
        """The evaluator of this run: its dataset split, cache, front-ends, precision and the availability found."""
        from codecbench.run.evaluation import Evaluator
        from codecbench.store.split_inputs import SplitInputs

        spec = self.spec
        store = SplitInputs(self.dataset, spec.split, self.cache, jobs=spec.jobs, backend=spec.backend,
                            scheduler=spec.scheduler, progress=progress, log=log,
                            frontends=self.frontends(extra_models), on_error=spec.on_error,
                            availability=self.availability)
        return Evaluator(store, self.matrix, self.zoo, share_prefix=spec.share_prefix,
                         precision=self.precision.policy, frontend_on_device=spec.frontend_on_device)


def _selected_conditions(spec: RunSpec, matrix) -> list[Condition]:
    """The matrix's validation conditions narrowed by ``condition`` and ``category``; never empty."""
    chosen = matrix.select(list(spec.condition or ()), list(spec.category or ()))
    if not chosen:
        raise UsageError(f"--condition/--category select no condition of matrix {matrix.name!r} "
                         f"(categories: {', '.join(matrix.categories)})")
    return chosen


def _selected_models(spec: RunSpec, zoo: Zoo, names: Sequence[str] | None) -> list[str]:
    """The requested models resolved in the zoo (aliases too), or every model; never empty unless ``names`` is."""
    if names is not None and not names:
        return []
    available = zoo.names()
    if not available:
        raise UsageError(f"no models in {zoo.root}; build some with `codecbench zoo build` or point --model-dir at "
                         "a model folder")
    try:
        return list(dict.fromkeys(zoo.resolve(m) for m in (names or spec.model or available)))
    except ZooError as exc:
        raise noted(exc, "--model") from None
