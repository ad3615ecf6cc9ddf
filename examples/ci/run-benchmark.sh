#!/usr/bin/env bash
# The shell commands of both CI examples (GitHub Actions, GitLab CI), kept in one script so that
# codecbench's own tests can run exactly them against the demo.
#
#   BASELINE         results.json of the main branch (optional): the regression gate compares with it
#   CODECBENCH_ARGS  extra pytest options, e.g. "--model finetuned_seg7 --dataset /data/TAU..."
#   PIP_INSTALL      how to install (default: the project itself, editable)
#   PYTHON           the interpreter (default: python, the active environment's)
set -euo pipefail
PYTHON=${PYTHON:-python}

${PIP_INSTALL:-$PYTHON -m pip install -q -e .}

gate=()
if [ -n "${BASELINE:-}" ] && [ -f "$BASELINE" ]; then
  gate=(--baseline "$BASELINE")
  echo "regression gate: comparing with $BASELINE"
else
  echo "no baseline results.json: thresholds only"
fi

status=0
# shellcheck disable=SC2086  # CODECBENCH_ARGS is a list of options on purpose
"$PYTHON" -m pytest benchmarks/ -p no:cacheprovider "${gate[@]}" --junitxml reports/junit.xml ${CODECBENCH_ARGS:-} \
  || status=$?
# the report is published whether the gate passed or not; its short summary (the gate's line, the ranking) is
# written for a pull-request comment (examples/ci/github-actions.yml posts it where it has a token)
"$PYTHON" -m codecbench report --out reports/report --comment reports/pr-comment.md
# on GitHub Actions the tables also go to the job's summary page
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f reports/report/report.md ]; then
  cat reports/report/report.md >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
