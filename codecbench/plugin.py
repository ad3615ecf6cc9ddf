"""The codecbench pytest plugin: hooks and fixtures only.

Registered by the repository's ``conftest.py`` and as the ``pytest11`` entry point ``codecbench``
(``pytest -p codecbench``). Options are those of :mod:`codecbench.run.spec`, as ``--codecbench-<name>`` (also
settable in ``[tool.codecbench]``; :mod:`codecbench.aliases` adds the short names for a project that wants
them); the work lives in :class:`codecbench.run.session.BenchmarkSession`. A test
that asks for the ``codecbench_case`` fixture is parametrized over the selected models and
conditions (ids like ``finetuned_seg7-mp3@32``, markers per category and ``finetune``); the
``codecbench_check`` fixture runs a case and fails it on a threshold or a regression.
"""
from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

import pytest

from codecbench.codecs.matrix import load_matrix
from codecbench.core import backend_choice
from codecbench.errors import CodecbenchError
from codecbench.errors import message as error_message
from codecbench.results.ranking import rank_models
from codecbench.run.resolve import Run
from codecbench.run.session import BenchmarkSession, check_before_work, new_run_id
from codecbench.run.spec import OPTIONS, RunSpec

if TYPE_CHECKING:
    from codecbench.run.session import BenchmarkSession  # noqa: F401  (named in SESSION's type)

SESSION = pytest.StashKey["BenchmarkSession | None"]()
SPEC = pytest.StashKey[RunSpec]()
RUN_ID = pytest.StashKey[str]()
#: messages logged while tests run: kept for the summary, so pytest's progress line ("....") is never broken
NOTES = pytest.StashKey[list]()
PROPERTIES = ("accuracy", "ci_low", "ci_high", "threshold", "n", "p_value", "baseline_accuracy")


#: Every option the installed plugin registers starts with this, as pytest-benchmark's do: the plugin loads
#: in every pytest run of an environment where codecbench is installed, and must not claim --model there.
PREFIX = "--codecbench-"
PLAN_HELP = "print the plan (pairs cached/missing, cache growth, free disk, time here) and exit"
FORCE_HELP = "run even if the plan says the cache would outgrow the free disk"


def add_options(parser, flag) -> None:
    """Register the run specification's options (and plan, force) under the names ``flag(name)`` gives."""
    group = parser.getgroup("codecbench", "codec robustness benchmark (codecbench)")
    for option in OPTIONS.values():
        group.addoption(flag(option.flag[2:]), dest=f"codecbench_{option.name}", default=None, help=option.help,
                        action="append" if option.repeatable else "store", **option.argparse_extra)
    group.addoption(flag("plan"), dest="codecbench_plan", action="store_true", default=False, help=PLAN_HELP)
    group.addoption(flag("force"), dest="codecbench_force", action="store_true", default=False, help=FORCE_HELP)


def pytest_addoption(parser):
    add_options(parser, lambda name: PREFIX + name)


def _given(config) -> dict:
    return {name: config.getoption(f"codecbench_{name}") for name in OPTIONS}


def _spec(config) -> RunSpec:
    if SPEC not in config.stash:
        try:
            # messages name the options as the user can type them here: short names where the project
            # loads codecbench.aliases, else the prefixed ones
            short = config.pluginmanager.hasplugin("codecbench.aliases")
            flags = None if short else {name: PREFIX + o.flag[2:] for name, o in OPTIONS.items()}
            config.stash[SPEC] = RunSpec.build(_given(config), start=config.rootpath, flags=flags)
        except CodecbenchError as exc:  # every family: the run cannot start as asked, and the message says why
            raise pytest.UsageError(error_message(exc)) from None
    return config.stash[SPEC]


def _run_id(config) -> str:
    """One id per run, shared by an xdist controller and its workers."""

    if RUN_ID not in config.stash:
        given = config.workerinput.get("codecbench_run_id") if hasattr(config, "workerinput") else None
        config.stash[RUN_ID] = given or _spec(config).run_id or new_run_id()
    return config.stash[RUN_ID]


def _session(config):
    session = config.stash.get(SESSION, None)
    if session is None:
        try:
            backend_choice.check()  # before anything imports Keras: a usage error, never an INTERNALERROR
            capman = config.pluginmanager.getplugin("capturemanager")
            # set up during collection, when output is captured: the first run's dataset generation shows
            with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
                check_before_work(_spec(config))  # before resolving: that generates a missing synthetic split
                run = Run.resolve(_spec(config), plan_only=bool(config.getoption("codecbench_plan")),
                                  log=_logger(config))
                session = BenchmarkSession(run, run_id=_run_id(config), log=_logger(config),
                                           force=config.getoption("codecbench_force"),
                                           worker=hasattr(config, "workerinput"), checked=True)
        except CodecbenchError as exc:  # every family: the run cannot start as asked, and the message says why
            raise pytest.UsageError(error_message(exc)) from None
        config.stash[SESSION] = session
    return session


def _logger(config):
    def log(message: str) -> None:
        if NOTES in config.stash:  # the tests are running: said in the summary instead
            config.stash[NOTES].append(message)
            return
        capman = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            if reporter is not None:
                reporter.write_line(message)
            else:  # before the terminal reporter exists (pytest_configure)
                print(message, flush=True)
    return log


#: what the paper's categories mean, for ``pytest --markers`` (other matrices name their own categories)
MARKER_TEXT = {"cat1": "codecs and bit rates seen in fine-tuning", "cat2": "seen codecs at unseen bit rates",
               "cat3": "unseen codecs", "finetune": "a fine-tuned model (not the base model)"}


def pytest_configure(config):
    # no marker is registered here: the plugin loads in every pytest run of the environment, and a project that
    # does not benchmark must not find "cat1" or "finetune" among its markers. They are registered when a
    # benchmark is generated (pytest_generate_tests), before the first item carries them.
    config.stash[SESSION] = None
    # Options given on the command line are checked now, so a bad one is a usage error (exit 4);
    # otherwise the session is set up lazily, only when a benchmark test is collected.
    if any(value is not None for value in _given(config).values()) or config.getoption("codecbench_plan"):
        session = _session(config)
        if config.getoption("codecbench_plan"):
            _logger(config)(session.plan().report())
            pytest.exit("codecbench: --plan printed; nothing was run", returncode=0)


def pytest_generate_tests(metafunc):
    if "codecbench_case" not in metafunc.fixturenames:
        return
    session = _session(metafunc.config)
    params = []
    registered = set(metafunc.config.getini("markers"))
    for case in session.cases():
        for name in filter(None, (case.category, "finetune" if case.model.is_derived else None)):
            if not any(line.split(":")[0] == name for line in registered):
                # registered before the mark is made: an unregistered one warns (PytestUnknownMarkWarning)
                line = f"{name}: codecbench {MARKER_TEXT.get(name, 'matrix category')}"
                metafunc.config.addinivalue_line("markers", line)
                registered.add(line)
        marks = [getattr(pytest.mark, case.category)] if case.category else []
        if case.model.is_derived:
            marks.append(pytest.mark.finetune)
        params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("codecbench_case", params)


def pytest_collection_modifyitems(session, config, items):
    state = config.stash.get(SESSION, None)
    if state is None:
        return
    needed: dict = {}
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("codecbench_case")
        if case is not None:
            needed.setdefault(case.condition)
    state.needed_conditions = list(needed)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """Code and featurise what the selected items need before the first of them runs, with its progress on its own
    lines (not in the middle of pytest's progress line); from here on, messages wait for the summary."""

    state = session.config.stash.get(SESSION, None)
    config = session.config
    if state is not None and not config.option.collectonly and any(
            "codecbench_case" in getattr(item, "fixturenames", ()) for item in session.items):
        capman = config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            try:
                state.evaluator  # noqa: B018 -- the one shared fill
            except CodecbenchError:
                pass  # the first test that needs the fill tries again and fails with the error, naming it
    config.stash[NOTES] = []


@pytest.fixture(scope="session")
def codecbench_session(request):
    """The run's :class:`codecbench.run.session.BenchmarkSession`: its dataset, conditions, models, thresholds and
    results folder, set up once from the ``--codecbench-*`` options (or the project's TOML)."""
    return _session(request.config)


@pytest.fixture
def codecbench_check(request, codecbench_session):
    """Call with a case: evaluates, judges and records it; fails on a threshold or a regression."""
    def check(case) -> dict:
        if case.unavailable:
            pytest.skip(f"{case.condition} unavailable: {case.unavailable}")
        capman = request.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            codecbench_session.evaluator  # the one shared fill: its progress shows on the terminal
        record, verdict = codecbench_session.run(case)
        for key in PROPERTIES:
            value = record.get(key)
            request.node.user_properties.append((key, round(value, 6) if isinstance(value, float) else value))
        if not verdict.passed:
            pytest.fail(f"{case.id}: " + "; ".join(verdict.reasons), pytrace=False)
        return record
    return check


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Merge the run's items into the results files and print the table (not on xdist workers).

    Works from the run folder alone, so an xdist controller, which evaluates nothing itself,
    and an interrupted run both end with complete results files of what was finished.
    """
    from codecbench.results.files import summary_table, write_run
    from codecbench.results.judge import gate_summary

    notes = config.stash.get(NOTES, [])
    if notes:
        terminalreporter.write_sep("-", "codecbench notes")
        for message in notes:
            terminalreporter.write_line(message)
    if hasattr(config, "workerinput") or RUN_ID not in config.stash:
        return
    spec = _spec(config)
    run_dir = spec.results / "runs" / config.stash[RUN_ID]
    if not (run_dir / "items").is_dir():
        return
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"run_id": config.stash[RUN_ID]}
    rows = write_run(spec.results, run_dir, meta)["results"]
    dataset = meta.get("dataset", {}).get("name", "?")
    terminalreporter.write_sep("=", f"codecbench results ({len(rows)} model x condition, {dataset})")
    terminalreporter.write_line(summary_table(rows, load_matrix(spec.matrix)))
    scores = rank_models({(r["model"], r["condition"]): r for r in rows})
    if len(scores) > 1:
        terminalreporter.write_line("ranking by coded accuracy: " + ", ".join(
            f"{s.rank}. {s.model} {s.coded_accuracy:.3f}" for s in scores[:5] if s.coded_accuracy is not None)
            + (f" (+{len(scores) - 5} more: codecbench report)" if len(scores) > 5 else ""))
    gate = gate_summary(rows, metric=spec.baseline_metric, tolerance=spec.tolerance, alpha=spec.alpha)
    if gate:
        terminalreporter.write_line(gate)
    terminalreporter.write_line(f"results: {spec.results / 'results.json'} "
                                f"(history: {spec.results / 'history.sqlite'})")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist: every worker writes into the controller's run folder."""
    node.workerinput["codecbench_run_id"] = _run_id(node.config)
