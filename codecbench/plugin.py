"""The codecbench pytest plugin: models x conditions as test items, thresholds and regression gates.

Registered by the repository's ``conftest.py`` and as the ``pytest11`` entry point ``codecbench``
(``pytest -p codecbench``). Options can also be set in ``[tool.codecbench]`` of pyproject.toml.
A test that asks for the ``codecbench_case`` fixture is parametrized over the selected models and
conditions (ids like ``finetuned_seg7-mp3@32``, markers per category and ``finetune``); the
``codecbench_check`` fixture evaluates the case through a session-wide :class:`Evaluator` (each
clip coded and featurised once, each model run once per condition) and asserts on the result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from pathlib import Path

import pytest

from . import codecs
from .config import ConfigError, load_config
from .matrix import MatrixError, load_matrix

OPTIONS = [  # (option, dest, help)
    ("--model", "model", "model name from the zoo (repeatable; default: every model)"),
    ("--condition", "condition", "condition such as mp3@32 (repeatable or comma-separated; default: the matrix)"),
    ("--category", "category", "matrix category such as cat2 (repeatable)"),
    ("--dataset", "dataset", "'synthetic' (default), a TAU 2020 Mobile root, or a folder per class"),
    ("--split", "split", "dataset split to evaluate (default: evaluate)"),
    ("--matrix", "matrix", "condition matrix TOML (default: the paper's Table 1)"),
    ("--model-dir", "model_dir", "model zoo folder (default: the packaged demo zoo)"),
    ("--cache-dir", "cache_dir", "cache folder (default: $CODECBENCH_CACHE or ~/.cache/codecbench)"),
    ("--jobs", "jobs", "parallel workers for encoding (default: all cores)"),
    ("--scheduler", "scheduler", "dask scheduler address, or 'local' for a LocalCluster"),
    ("--thresholds", "thresholds", "thresholds TOML (default: benchmarks/thresholds.toml if present)"),
    ("--baseline", "baseline", "results.json of an earlier run: fail on significant accuracy drops"),
    ("--tolerance", "tolerance", "accuracy drop tolerated by the regression gate (default: 0.01)"),
    ("--alpha", "alpha", "significance level of the regression gate's McNemar test (default: 0.05)"),
    ("--results", "results", "results folder (default: reports/)"),
]
REPEATABLE = {"model", "condition", "category"}
KEY = pytest.StashKey["CodecbenchSession"]()
RUN_ID = pytest.StashKey[str]()


def pytest_addoption(parser):
    group = parser.getgroup("codecbench", "codec robustness benchmark (codecbench)")
    for flag, dest, help_text in OPTIONS:
        if dest in REPEATABLE:
            group.addoption(flag, dest=f"codecbench_{dest}", action="append", default=None, help=help_text)
        else:
            group.addoption(flag, dest=f"codecbench_{dest}", default=None, help=help_text)


@dataclasses.dataclass(frozen=True)
class Case:
    model: str
    condition: str
    category: str | None

    @property
    def id(self) -> str:
        return f"{self.model}-{self.condition}"


def _settings(config) -> dict:
    try:
        table = load_config(config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    settings = {}
    for _, dest, _ in OPTIONS:
        value = config.getoption(f"codecbench_{dest}")
        if value is None:
            value = table.get(dest)
        if dest in REPEATABLE and value is not None:
            items = value if isinstance(value, list) else [value]
            value = [v.strip() for item in items for v in str(item).split(",") if v.strip()]
        settings[dest] = value
    return settings


class CodecbenchSession:
    """Everything one pytest session shares: selection, evaluator, thresholds, baseline and results."""

    def __init__(self, config, settings: dict, run_id: str):
        from .datasets import load_dataset
        from .thresholds import ThresholdError, load_thresholds
        from .zoo import Zoo, resolve_model_dir

        self.config, self.settings, self.run_id = config, settings, run_id
        try:
            self.matrix = load_matrix(settings["matrix"])
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.zoo = Zoo(resolve_model_dir(settings["model_dir"]))
        available = self.zoo.names()
        if not available:
            raise pytest.UsageError(f"no models in {self.zoo.root}; build some with `codecbench zoo build`")
        self.models = []
        for name in settings["model"] or available:
            try:
                self.models.append(self.zoo.resolve(name))
            except ValueError as exc:
                raise pytest.UsageError(f"--model: {exc}") from None
        try:
            self.conditions = self.matrix.select(settings["condition"], settings["category"])
        except ValueError as exc:
            raise pytest.UsageError(f"--condition/--category: {exc}") from None
        try:
            self.dataset = load_dataset(settings["dataset"] or "synthetic", cache_dir=settings["cache_dir"])
        except ValueError as exc:
            raise pytest.UsageError(f"--dataset: {exc}") from None
        self.split = settings["split"] or "evaluate"
        thresholds = settings["thresholds"]
        if thresholds is None and (Path(config.rootpath) / "benchmarks" / "thresholds.toml").is_file() \
                and settings["model_dir"] is None and (settings["dataset"] or "synthetic") == "synthetic":
            thresholds = Path(config.rootpath) / "benchmarks" / "thresholds.toml"
        try:
            self.thresholds = load_thresholds(thresholds, self.matrix, available) if thresholds else None
        except ThresholdError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.tolerance = float(settings["tolerance"] if settings["tolerance"] is not None else 0.01)
        self.alpha = float(settings["alpha"] if settings["alpha"] is not None else 0.05)
        self.results_dir = Path(settings["results"] or Path(config.rootpath) / "reports")
        self.run_dir = self.results_dir / "runs" / run_id
        self.history = self.results_dir / "history.sqlite"
        self.baseline = self._load_baseline(settings["baseline"]) if settings["baseline"] else None
        self._evaluator = None
        self.needed_conditions: list[str] = []
        self._meta = None

    # -- selection ---------------------------------------------------------------------------
    def cases(self) -> list[Case]:
        return [Case(m, c.name, self.matrix.category_of(c)) for m in self.models for c in self.conditions]

    # -- baseline ----------------------------------------------------------------------------
    def _load_baseline(self, path) -> dict:
        from .results import ResultsError, load_results

        try:
            doc = load_results(path)
        except ResultsError as exc:
            raise pytest.UsageError(f"--baseline: {exc}") from None
        meta = doc.get("meta", {})
        ours = self.dataset.fingerprint(self.split)
        theirs = meta.get("dataset", {}).get("fingerprint")
        if theirs != ours:
            raise pytest.UsageError(f"--baseline {path}: recorded on dataset {meta.get('dataset', {}).get('name')} "
                                    f"split {meta.get('dataset', {}).get('split')} (fingerprint {theirs}), this run "
                                    f"uses {self.dataset.name} split {self.split} (fingerprint {ours}); "
                                    "comparing them would be meaningless")
        if meta.get("matrix", {}).get("fingerprint") != self.matrix.fingerprint():
            raise pytest.UsageError(f"--baseline {path}: recorded with matrix "
                                    f"{meta.get('matrix', {}).get('name')!r}, which differs from this run's "
                                    f"{self.matrix.name!r}")
        return {(r["model"], r["condition"]): r for r in doc["results"]}

    # -- evaluation --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        ctx = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with ctx:
            if reporter is not None:
                reporter.write_line(message)

    @property
    def evaluator(self):
        if self._evaluator is None:
            from .cache import Cache
            from .evaluate import Evaluator

            jobs = int(self.settings["jobs"]) if self.settings["jobs"] else None
            self._evaluator = Evaluator(self.dataset, self.split, self.matrix, self.zoo, Cache(self.settings["cache_dir"]),
                                        jobs=jobs, scheduler=self.settings["scheduler"], log=self.log,
                                        progress=None)  # a progress bar when stderr is a terminal
            capman = self.config.pluginmanager.getplugin("capturemanager")
            with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
                self._evaluator.prepare([c for c in self.needed_conditions if codecs.availability(c)[0]])
            self.record_meta()
        return self._evaluator

    def meta(self) -> dict:
        if self._meta is None:
            from .provenance import git_commit, library_versions, machine, now

            self._meta = {"run_id": self.run_id, "started": now(), "git_commit": git_commit(self.config.rootpath),
                          "dataset": {"name": self.dataset.name, "split": self.split, "root": str(self.dataset.root),
                                      "fingerprint": self.dataset.fingerprint(self.split),
                                      "class_names": self.dataset.class_names},
                          "matrix": {"name": self.matrix.name, "source": self.matrix.source,
                                     "fingerprint": self.matrix.fingerprint()},
                          "models": {m: self.zoo.sha256(m) for m in self.models},
                          "model_dir": str(self.zoo.root), "thresholds": self.thresholds.source if self.thresholds
                          else None, "baseline": self.settings["baseline"], "tolerance": self.tolerance,
                          "alpha": self.alpha, "libraries": library_versions(), "machine": machine()}
        return self._meta

    def record_meta(self) -> None:
        from .results import record_run

        self.run_dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.run_dir / "meta.json"
        if not meta_path.exists():
            meta_path.write_text(json.dumps(self.meta(), indent=1))
        record_run(self.history, self.run_id, self.meta())

    def check(self, case: Case, node) -> None:
        from .provenance import now
        from .results import record_result, write_item
        from .stats import paired_comparison

        ok, why = codecs.availability(case.condition)
        if not ok:
            pytest.skip(f"{case.condition} unavailable: {why}")
        result = self.evaluator.evaluate(case.model, case.condition)
        record = result.as_record()
        low, high = result.ci
        threshold = self.thresholds.lookup(case.model, case.condition, case.category) if self.thresholds else None
        failures = []
        if threshold is not None and result.accuracy < threshold:
            failures.append(f"accuracy {result.accuracy:.3f} (95% CI {low:.3f}-{high:.3f}, n={result.n}) is below "
                            f"the threshold {threshold:.3f}")
        base = self.baseline.get((result.model, result.condition)) if self.baseline else None
        if base is not None:
            paired = paired_comparison(base, record)
            p_value = paired["p_value"]
            drop = -paired["delta"] if paired["n"] else 0.0
            record.update(baseline_accuracy=float(base["accuracy"]), p_value=p_value)
            if drop > self.tolerance and p_value < self.alpha:
                failures.append(f"accuracy dropped from {base['accuracy']:.3f} to {result.accuracy:.3f} "
                                f"(-{drop:.3f} > tolerance {self.tolerance}) on {paired['n']} paired clips; "
                                f"exact McNemar p = {p_value:.3g} < alpha {self.alpha} "
                                f"({paired['reference_only']} clips only the baseline got right, "
                                f"{paired['candidate_only']} only this run)")
        record.update(threshold=threshold, outcome="failed" if failures else "passed")
        for key in ("accuracy", "ci_low", "ci_high", "threshold", "n", "p_value", "baseline_accuracy"):
            value = record.get(key)
            node.user_properties.append((key, round(value, 6) if isinstance(value, float) else value))
        write_item(self.run_dir, record)
        record_result(self.history, self.run_id, record, now())
        if failures:
            pytest.fail(f"{case.id}: " + "; ".join(failures), pytrace=False)


def summary_table(rows: list[dict], matrix) -> str:
    """Accuracy per model (rows) and condition (columns), in matrix order."""
    from tabulate import tabulate

    from .zoo import sort_key

    order = [c.name for c in matrix.validation]
    conditions = [c for c in order if any(r["condition"] == c for r in rows)]
    conditions += sorted({r["condition"] for r in rows} - set(conditions))
    models = sorted({r["model"] for r in rows}, key=sort_key)
    cell = {(r["model"], r["condition"]): r for r in rows}
    table = [[m] + [(f"{cell[m, c]['accuracy']:.3f}" + ("!" if cell[m, c].get("outcome") == "failed" else ""))
                    if (m, c) in cell else "" for c in conditions] for m in models]
    return tabulate(table, headers=["model"] + conditions, tablefmt="github", disable_numparse=True) + \
        "\n(! = failed its check)"


# ----------------------------------------------------------------------------------- hooks

def pytest_configure(config):
    for name, text in (("cat1", "codecs and bit rates seen in fine-tuning"),
                       ("cat2", "seen codecs at unseen bit rates"), ("cat3", "unseen codecs"),
                       ("finetune", "a fine-tuned model (not the base model)")):
        config.addinivalue_line("markers", f"{name}: codecbench {text}")
    config.stash[KEY] = None
    # Options given on the command line are checked now, so a bad one is a usage error (exit 4);
    # otherwise the session is set up lazily, only when a benchmark test is collected.
    if any(config.getoption(f"codecbench_{dest}") is not None for _, dest, _ in OPTIONS):
        _session(config)


def _run_id(config) -> str:
    """One id per run, shared by an xdist controller and its workers."""
    if RUN_ID not in config.stash:
        given = config.workerinput.get("codecbench_run_id") if hasattr(config, "workerinput") else None
        config.stash[RUN_ID] = given or os.environ.get("CODECBENCH_RUN_ID") or _new_run_id()
    return config.stash[RUN_ID]


def _session(config) -> CodecbenchSession:
    session = config.stash.get(KEY, None)
    if session is None:
        session = CodecbenchSession(config, _settings(config), _run_id(config))
        config.stash[KEY] = session
    return session


def _new_run_id() -> str:
    import time
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def pytest_generate_tests(metafunc):
    if "codecbench_case" not in metafunc.fixturenames:
        return
    session = _session(metafunc.config)
    params = []
    for case in session.cases():
        marks = [getattr(pytest.mark, case.category)] if case.category else []
        if case.category and case.category not in ("cat1", "cat2", "cat3"):
            metafunc.config.addinivalue_line("markers", f"{case.category}: codecbench matrix category")
        if case.model != "base":
            marks.append(pytest.mark.finetune)
        params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("codecbench_case", params)


def pytest_collection_modifyitems(session, config, items):
    state = config.stash.get(KEY, None)
    if state is None:
        return
    needed = {}
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("codecbench_case")
        if case is not None:
            needed.setdefault(case.condition)
    state.needed_conditions = list(needed)


@pytest.fixture(scope="session")
def codecbench_session(request) -> CodecbenchSession:
    return _session(request.config)


@pytest.fixture
def codecbench_check(request, codecbench_session):
    """Call with a :class:`Case`: evaluates it, records it, and fails on a threshold or regression."""
    return lambda case: codecbench_session.check(case, request.node)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Merge the run's items into the results files and print the table (not on xdist workers).

    Works from the run folder alone, so an xdist controller, which evaluates nothing itself,
    and an interrupted run both end with complete results files of what was finished.
    """
    from .results import write_run

    if hasattr(config, "workerinput") or RUN_ID not in config.stash:
        return
    state = config.stash.get(KEY, None)
    settings = state.settings if state is not None else _settings(config)
    results_dir = Path(settings["results"] or Path(config.rootpath) / "reports")
    run_dir = results_dir / "runs" / config.stash[RUN_ID]
    if not (run_dir / "items").is_dir():
        return
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"run_id": config.stash[RUN_ID]}
    rows = write_run(results_dir, run_dir, meta)["results"]
    dataset = meta.get("dataset", {}).get("name", "?")
    terminalreporter.write_sep("=", f"codecbench results ({len(rows)} model x condition, {dataset})")
    terminalreporter.write_line(summary_table(rows, load_matrix(settings["matrix"])))
    terminalreporter.write_line(f"results: {results_dir / 'results.json'} (history: {results_dir / 'history.sqlite'})")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist: every worker writes into the controller's run folder."""
    node.workerinput["codecbench_run_id"] = _run_id(node.config)
