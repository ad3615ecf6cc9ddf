"""A run is resolved once (codecbench/run.py): below it, no model name is looked up in the zoo again and no
condition's availability is asked again, across a whole benchmark session."""
from collections import Counter

import pytest

from codecbench import codecs
from codecbench.codecs import parse_condition
from codecbench.run.resolve import Run
from codecbench.run.session import BenchmarkSession
from codecbench.run.spec import RunSpec
from codecbench.zoo import Zoo

CONDITIONS = ["wav", "mp3@64", "opus@64"]


@pytest.fixture
def looked_up(monkeypatch) -> Counter:
    """Every name the zoo is asked about from here on, counted (``entry NAME``, ``resolve NAME``)."""
    counts: Counter = Counter()
    entry, resolve = Zoo.entry, Zoo.resolve

    def counting_entry(self, name):
        counts[f"entry {name}"] += 1
        return entry(self, name)

    def counting_resolve(self, name):
        counts[f"resolve {name}"] += 1
        return resolve(self, name)

    monkeypatch.setattr(Zoo, "entry", counting_entry)
    monkeypatch.setattr(Zoo, "resolve", counting_resolve)
    return counts


def test_availability_is_asked_once_per_condition_and_models_travel_as_entries(tiny, tmp_path, monkeypatch,
                                                                               looked_up):
    asked: Counter = Counter()
    availability = codecs.availability

    def counting_availability(condition):
        asked[parse_condition(condition).name] += 1
        return availability(condition)

    monkeypatch.setattr(codecs, "availability", counting_availability)
    spec = RunSpec.build({"dataset": tiny["spec"], "model_dir": str(tiny["zoo"].root), "condition": CONDITIONS,
                          "cache_dir": str(tmp_path / "cache"), "jobs": "1", "results": str(tmp_path / "out")},
                         use_pyproject=False)
    run = Run.resolve(spec)
    assert dict(asked) == {c: 1 for c in CONDITIONS}
    assert [m.name for m in run.models] == tiny["zoo"].names() and len(run.models) == 4
    asked.clear()
    looked_up.clear()
    session = BenchmarkSession(run, log=lambda message: None)
    results = [session.run(case)[0] for case in session.cases()]
    assert len(results) == 4 * len(CONDITIONS) and all(r["n"] > 0 for r in results)
    assert not asked, f"availability asked again below the run: {dict(asked)}"
    assert not looked_up, f"model names looked up again below the run: {dict(looked_up)}"


def test_a_run_spec_is_a_plain_value_and_the_workspace_opens_what_it_names(tmp_path):
    """A RunSpec holds settings only (no cached objects, nothing opened); the places it names are opened by a
    Workspace, whose cache, matrix and zoo are the spec's."""
    import dataclasses
    import functools

    from codecbench.run.resolve import Workspace

    built = {name for name, value in vars(RunSpec).items()
             if isinstance(value, (functools.cached_property, classmethod, staticmethod))
             or (callable(value) and not name.startswith("__"))}
    assert built == {"build"}, f"RunSpec builds objects: {sorted(built - {'build'})}"
    spec = RunSpec.build({"cache_dir": str(tmp_path / "c"), "model_dir": str(tmp_path / "m"), "matrix": "peters"},
                         use_pyproject=False)
    assert spec == dataclasses.replace(spec)  # a value: equal to a copy of itself
    where = Workspace(spec)
    assert where.cache.root == tmp_path / "c" and where.zoo.root == tmp_path / "m"
    assert where.matrix.name == "peters" and where.cache is where.cache


def _weights_setting(_):
    import os

    from codecbench.codecs.neural import WEIGHTS_ENV
    return os.environ.get(WEIGHTS_ENV)


def test_codec_weights_reach_local_workers_started_before(tmp_path, monkeypatch):
    """A run that names --codec-weights in a process whose local workers started without it (a notebook's second
    evaluate, an in-process plugin run): the workers started afresh inherit it, and availability is asked again."""
    from codecbench.codecs.neural import WEIGHTS_ENV
    from codecbench.core.parallel import parallel_map, stop_local_workers
    from codecbench.run.resolve import Workspace
    from codecbench.run.spec import RunSpec

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    try:
        assert list(parallel_map(_weights_setting, [0, 1], jobs=2)) == [None, None]
        Workspace(RunSpec.build({"codec_weights": str(tmp_path)}, use_pyproject=False))
        assert list(parallel_map(_weights_setting, [0, 1], jobs=2)) == [str(tmp_path)] * 2
    finally:
        stop_local_workers()  # the next test's workers inherit its own setting


def test_the_fine_tuning_path_looks_its_parent_up_once(tiny, tmp_path, looked_up):
    """`codecbench finetune` end to end: the parent's name is resolved once, at the command's edge
    (Workspace.parent); the remedy below takes the entry and never asks the zoo about a name again."""
    import shutil

    from codecbench.cli import main

    models = tmp_path / "zoo"
    models.mkdir()
    for f in tiny["zoo"].root.glob("base.*"):
        shutil.copy(f, models / f.name)
    assert main(["finetune", "--from", "base", "--segment", "10", "--epochs", "1", "--batch-size", "8",
                 "--crop", "24", "--validate", "", "--model-dir", str(models), "--dataset", tiny["spec"], "--jobs", "1",
                 "--cache-dir", str(tiny["cache"].root)]) == 0
    assert (models / "finetuned_seg10.keras").is_file()
    assert dict(looked_up) == {"entry base": 1, "resolve base": 1}, dict(looked_up)
