#!/usr/bin/env bash
# The GPU check: what codecbench does on one accelerator, in under 8 minutes, written to one JSON of figures.
#
#   KERAS_BACKEND=jax examples/gpu/check.sh [OUT_DIR]        # or tensorflow / torch, whichever has the GPU build
#
# 1. `codecbench devices`: the backend, its devices, the precision `auto` picks, the feed workers;
# 2. the main job on the embedded default (cold cache), its predictions compared cell by cell with the committed
#    example (reports/example, recorded with TensorFlow on a CPU): agreement >= 99.5 % of clips in every cell and
#    every accuracy inside the example's Wilson interval;
# 3. the same for three models with the log-mel front-end on the device (--codecbench-frontend-on-device);
# 4. `bench model` (Experiment B's segments timed alone too), `bench precision`, `bench feed` (steady-state
#    coding, start-up apart, the waveform feed beside the decoder alone) and `bench fill` (the fill beside the sum
#    of its parts) on this machine;
# 4b. a neural codec's decode on the device against the CPU's, for the same codes (examples/gpu/neural_device.py);
# 5. the paper's plan (TAU 2020 Mobile's fold-1 listing, 13,965 + 2,970 clips) priced with the rates of step 4,
#    naming its bottleneck.
# CODECBENCH_CHECK_ALSO="torch" adds the main job on 2 models x 2 conditions under each backend named there.
# Needs: codecbench installed for that backend's GPU build (README "GPU"), or PYTHONPATH at this checkout.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(mkdir -p "${1:-gpu-check}" && cd "${1:-gpu-check}" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/codecbench-gpu-check.XXXXXX")"
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}" CODECBENCH_CACHE="$work/cache" PYTHONUNBUFFERED=1
cd "$repo"
log="$out/check.log"
: > "$log"
: > "$work/steps.tsv"
failed=0

step() {  # step NAME OUTPUT_FILE COMMAND...: run it, keep its stdout, log its stderr, time it
  local name="$1" file="$2"; shift 2
  echo "== $(date -u +%T) $name: $*" | tee -a "$log"
  local start rc
  start=$(date +%s%N)
  "$@" > "$file" 2> >(tee -a "$log" >&2)
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( ($(date +%s%N) - start) / 1000000 ))" >> "$work/steps.tsv"
  [ "$rc" = 0 ] || { failed=1; echo "== $name failed (exit $rc)" | tee -a "$log"; }
  cat "$file" >> "$log"  # all of it, so a check stopped half-way still leaves its figures
  tail -n 3 "$file"
}

cb() { python3 -m codecbench "$@"; }
bench_job() { python3 -m pytest benchmarks/ -p no:cacheprovider -q --codecbench-results "$@"; }

step devices "$work/devices.json" cb devices --json
step libraries "$work/libraries.json" python3 -c \
  "import json; from codecbench.core.provenance import library_versions; print(json.dumps(library_versions()))"
step main_job "$work/main_job.txt" bench_job "$work/run"
step compare "$work/compare.json" cb compare reports/example/results.json "$work/run" --json --min-agreement 0.995
step main_job_frontend_on_device "$work/on_device.txt" bench_job "$work/run-on-device" \
  --codecbench-frontend-on-device yes --codecbench-model base,finetuned_full@e10,finetuned_seg7
step compare_frontend_on_device "$work/compare_on_device.json" \
  cb compare reports/example/results.json "$work/run-on-device" --json --min-agreement 0.995
for other in ${CODECBENCH_CHECK_ALSO:-}; do
  KERAS_BACKEND=$other step "main_job_$other" "$work/main_job_$other.txt" bench_job "$work/run-$other" \
    --codecbench-model base,finetuned_full@e10 --codecbench-condition wav,mp3@32
  step "compare_$other" "$work/compare_$other.json" \
    cb compare reports/example/results.json "$work/run-$other" --json --min-agreement 0.995
done
step neural_device "$work/neural_device.json" python3 examples/gpu/neural_device.py
step bench_model "$work/model.json" cb bench model --json --segments
step bench_precision "$work/precision.json" cb bench precision --json
step bench_feed "$work/feed.json" cb bench feed --json --clips 64
step bench_fill "$work/fill.json" cb bench fill --json --clips 4
step plan "$work/plan.txt" cb reproduce peters --data tests/data/tau2020-mobile \
  --checkpoint tests/data/models/smallfcnn-model-0.9618.hdf5 --out "$work/reproduce" --dry-run \
  --rates "$work/model.json,$work/feed.json"

python3 - "$work" "$out/check.json" <<'EOF'
import json, pathlib, platform, subprocess, sys
work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

def load(name):
    path = work / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return path.read_text()[-4000:] if path.exists() else None

steps = [dict(zip(("step", "exit", "seconds"), line.split("\t"))) for line in (work / "steps.tsv").read_text().splitlines()]
for s in steps:
    s["exit"], s["seconds"] = int(s["exit"]), round(int(s["seconds"]) / 1000, 1)
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip()
except OSError:
    gpu = ""
doc = {"machine": {"gpu": gpu, "python": platform.python_version(), "cpus": __import__("os").cpu_count()},
       "steps": steps}
for name in sorted(p.name for p in work.iterdir() if p.suffix in (".json", ".txt")):
    doc[name.rsplit(".", 1)[0]] = load(name)
target.write_text(json.dumps(doc, indent=1, default=str))
print(f"wrote {target}")
EOF
rm -rf "$work"
exit $failed
