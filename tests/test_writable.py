"""Read-only targets: every command that writes checks each folder it will write before any work, through one check
(codecbench/core/fsutil.py check_writable, asked by codecbench/cli/__init__.py), and says which option and folder."""
import time

import pytest

from codecbench.cli import COMMANDS, main, written_folders


@pytest.fixture
def blocked(tmp_path):
    """A path that cannot be a folder: a file stands where its parent folder should be (as root, permissions do not
    stop a write, and a read-only mount needs privileges a test should not take)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "target"


def _cases(blocked, tmp_path):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    results = tmp_path / "results.json"
    results.write_text("{}")
    return {
        "encode": (["encode", "--dataset", "synthetic", "--cache-dir", str(blocked)], "--cache-dir"),
        "export": (["export", "--condition", "wav", "--to", str(blocked), *cache], "--to"),
        "dataset": (["dataset", "download", "esc50", "--to", str(blocked)], "--to"),
        "report": (["report", "--results", str(results), "--out", str(blocked)], "--out"),
        "leaderboard": (["leaderboard", "--add", str(results), "--board", str(blocked)], "--board"),
        "submit": (["submit", "--results", str(results), "--model", "base", "--out", str(blocked / "s.json")],
                   "--out"),
        "history": (["history", "rebuild", "--results", str(blocked)], "--results"),
        "diagnose": (["diagnose", "--model", "base", "--condition", "mp3@32", "--results", str(blocked), *cache],
                     "--results"),
        "import-model": (["import-model", str(results), "--name", "x", "--model-dir", str(blocked)], "--model-dir"),
        "train": (["train", "--dataset", "synthetic", "--model-dir", str(blocked), *cache], "--model-dir"),
        "finetune": (["finetune", "--full", "--model-dir", str(blocked), *cache], "--model-dir"),
        "postfilter": (["postfilter", "train", "--model-dir", str(blocked), *cache], "--model-dir"),
        "consistency": (["consistency", "--model-dir", str(blocked), *cache], "--model-dir"),
        "reproduce": (["reproduce", "peters", "--data", "synthetic", "--preset", "small", "--out", str(blocked),
                       *cache], "--out"),
    }


def test_every_writing_command_refuses_an_unwritable_target_before_any_work(blocked, tmp_path, capsys):
    cases = _cases(blocked, tmp_path)
    for command, (argv, option) in cases.items():
        start = time.monotonic()
        assert main(argv) == 2, command
        err = capsys.readouterr().err
        assert f"{option} {blocked}" in err and "cannot write there" in err and "is a file, not a folder" in err, \
            (command, err)
        assert time.monotonic() - start < 20, command  # refused before any data is loaded or generated
    assert not (tmp_path / "cache").exists()  # nothing was coded, generated or cached


def test_the_commands_that_write_are_all_checked(tmp_path):
    """A new command that writes must say what it writes: every command is either in the cases above or writes
    nothing."""
    readers = {"conditions", "cache", "segments", "zoo", "compare", "thresholds", "devices", "bench"}
    assert set(COMMANDS) == set(_cases(tmp_path / "x", tmp_path)) | readers


def test_a_writable_target_is_left_as_it_was(tmp_path):
    from argparse import Namespace

    from codecbench.core.fsutil import check_writable
    from codecbench.run.resolve import Workspace
    from codecbench.run.spec import RunSpec

    spec = RunSpec.build({"results": str(tmp_path / "r")}, use_pyproject=False)
    found = written_folders(Namespace(command="history", action="rebuild"), Workspace(spec))
    assert found == [("--results", tmp_path / "r")]
    check_writable(tmp_path / "r" / "deeper", "--results")
    assert sorted(tmp_path.iterdir()) == []  # no folder created, no probe file left
