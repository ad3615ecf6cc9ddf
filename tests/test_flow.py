"""The used-by flow in a fresh clone: the CI example's commands, the report, a clean tree."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import optional

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        optional.missing("git", "git, or the repository's .git folder, is not available: cannot clone")
    root = tmp_path_factory.mktemp("flow")
    subprocess.run(["git", "clone", "-q", str(REPO), str(root / "clone")], check=True)
    return root / "clone", root / "cache"


def run(cmd, cwd, cache, **env):
    full_env = {**os.environ, "CODECBENCH_CACHE": str(cache), "PIP_INSTALL": "true", **env}
    full_env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=1200)


@pytest.mark.long_run
def test_ci_example_then_report_with_a_clean_tree(clone):
    folder, cache = clone
    # 1. the CI example's commands, gated against the committed example run (same demo dataset and matrix)
    first = run(["bash", "examples/ci/run-benchmark.sh"], folder, cache, BASELINE="reports/example/results.json",
                CODECBENCH_ARGS="--model base,finetuned_full@e1,finetuned_full@e10,finetuned_seg1,finetuned_seg7 "
                                "--condition wav,mp3@32 --jobs 2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "regression gate: comparing with reports/example/results.json" in first.stdout
    assert "10 passed" in first.stdout
    assert (folder / "reports" / "junit.xml").is_file() and (folder / "reports" / "report" / "report.md").is_file()
    # the gate says what it did, on the console and in the pull-request comment with the ranking
    assert "baseline gate on accuracy: 10 cells compared, 0 regressions" in first.stdout
    comment = (folder / "reports" / "pr-comment.md").read_text()
    assert "## Regression gate against reports/example/results.json" in comment and "## Ranking" in comment
    assert "| 1 " in comment and "finetuned\\_full@e10" in comment

    # 2. the report of the results folder (a later run of some models joining the earlier cells, marked, is
    # test_history's, in process: a second benchmark process here cost 20 s of the suite for what it checked)
    report = run([sys.executable, "-m", "codecbench", "report"], folder, cache)
    assert report.returncode == 0, report.stderr[-3000:]
    markdown = (folder / "reports" / "report.md").read_text()
    assert "## Table 2" in markdown and "## Segmental fine-tuning" in markdown and "## Figure 2" in markdown
    assert (folder / "reports" / "figure2.png").stat().st_size > 10_000
    segments = markdown.split("## Segmental fine-tuning")[1].split("##")[0]
    header = [c.strip() for c in segments.splitlines()[2].strip("|").split("|")]
    assert {"base", "seg1", "seg7"} <= set(header), header
    # the codec facts were measured during the run on its own clips, and the report shows them
    facts = markdown.split("## Codec facts")[1].split("##")[0]
    mp3_row = next(line for line in facts.splitlines() if line.startswith("| mp3@32"))
    kept, source = (float(c.strip().removesuffix(" kHz")) for c in mp3_row.strip("|").split("|")[2:4])
    assert 0 < kept < source  # MP3 at 32 kbps low-passes what the data has

    # 3. running the benchmark wrote only untracked, ignored files
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=folder,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status
