"""CODECBENCH_REQUIRE turns a missing optional component's skip into a failure (tests/optional.py), for skips
marked on a test and skips decided inside one; an unknown component is a usage error. The system LAME is made
absent with CODECBENCH_LAME=off, which codecbench honours."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKED = "tests/test_lame.py::test_turned_off_means_libavcodec"  # @optional.needs("lame", ...)
INSIDE = ("tests/test_codec_rates.py::"  # optional.missing("lame", ...) in its body
          "test_mp3_at_mpeg2_rates_codes_the_same_bytes_through_the_system_lame_and_libavcodec")


def _pytest(tests: list[str], require: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODECBENCH_LAME": "off"}
    env.pop("CODECBENCH_REQUIRE", None)
    if require is not None:
        env["CODECBENCH_REQUIRE"] = require
    return subprocess.run([sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q", "-rs", "-p",
                           "no:xdist"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_missing_component_skips_unless_required_and_then_fails_naming_it():
    """Both kinds of skip, in one pytest run each way (a pytest start costs seconds)."""
    skipped = _pytest([MARKED, INSIDE], None)
    assert skipped.returncode == 0 and "2 skipped" in skipped.stdout, skipped.stdout
    assert skipped.stdout.count("lame: ") == 2, skipped.stdout
    failed = _pytest([MARKED, INSIDE], "lame,dask")
    # a marked test fails at set-up (pytest counts it an error), one that decides inside fails in its call
    assert failed.returncode == 1 and "1 failed" in failed.stdout and "1 error" in failed.stdout, failed.stdout
    assert failed.stdout.count("CODECBENCH_REQUIRE requires the system LAME") == 2, failed.stdout


def test_an_unknown_component_is_a_usage_error():
    result = _pytest([MARKED], "lame,ffmpeg7")
    assert result.returncode == 4 and "unknown component(s) ffmpeg7" in result.stdout + result.stderr
