#!/usr/bin/env bash
# The core install, as a teammate on a laptop or a CI runner gets it: the wheel built from this checkout,
# installed with its core dependencies only (no torch) into a fresh venv, then used on a clone of this
# repository's reference zoo (a zoo made elsewhere); [torch] beside a torch already there keeps it. Then the
# [torch,eval] install in a second venv, alone on PATH, runs a team's zoo end to end: init, add, dvc repro,
# push to a folder and to S3 (moto's emulator), commit, and a fresh clone pulls from S3 and re-runs nothing.
# Prints the core venv's size beside the full one's.
# Usage: bash scripts/check_core_install.sh   (from anywhere; 11 minutes with the machine's 2 cores shared by
#        other jobs, most of it pip unpacking a CUDA build of torch and deleting it)
#        bash scripts/check_core_install.sh --core-only   (the core install alone; prints its figures as
#        `core_bytes=N seconds=S`, for scripts/bench.py)
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD
unset PYTHONPATH  # each venv runs the wheel's code, never this checkout's
work=$(mktemp -d)
server="" eval_install=""
cleanup() {  # the S3 emulator, and a [torch,eval] install still unpacking if a check failed first
  for pid in $server $eval_install; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
PY=${PYTHON:-python3}

# pip_install VENV ARGS...: quiet, and on failure the tail of pip's log
pip_install() {
  "$1/bin/python" -m pip install -q --disable-pip-version-check "${@:2}" >"$1.pip.log" 2>&1 || {
    tail -n 15 "$1.pip.log" >&2; return 1; }
}

.venv/bin/python -m pip wheel --no-deps --disable-pip-version-check -q -w "$work/dist" . >/dev/null
wheel=$(ls "$work"/dist/*.whl)
"$PY" -m venv "$work/core"
start=$(date +%s)
pip_install "$work/core" -c constraints.txt "$wheel"
seconds=$(( $(date +%s) - start ))
if "$work/core/bin/python" -c "import torch" 2>/dev/null; then
  echo "core install: torch is importable; the core must not pull it" >&2
  exit 1
fi
if [ "${1:-}" = "--core-only" ]; then
  echo "core_bytes=$(du -sb "$work/core" | cut -f1) seconds=$seconds"
  exit 0
fi
# [torch,eval] in a second venv, pinned by constraints.txt (torch 2.14.1 and torchvision 0.29.1, a pair that
# imports together), unpacked while the core venv is put through its paces
"$PY" -m venv "$work/eval"
( start=$(date +%s); pip_install "$work/eval" --no-compile -c constraints.txt "$wheel[torch,eval]"
  echo $(( $(date +%s) - start )) >"$work/eval.seconds" ) &
eval_install=$!
zoo="$work/core/bin/zoo"
git clone -q "$project" "$work/clone"
cd "$work/clone"
"$zoo" --help >/dev/null
"$zoo" ls >/dev/null
"$zoo" show cancer-resmlp@100 >/dev/null
"$zoo" show mnist-shufflenet@best >/dev/null
"$zoo" pull cancer-resmlp@100 >/dev/null
"$zoo" verify cancer-resmlp@100 >/dev/null
"$zoo" diff HEAD~1 HEAD >/dev/null
# a command that needs torch says which extra to install, in one line, exit 1
if "$zoo" export cancer-resmlp@100 "$work/export" 2>"$work/err.txt"; then
  echo "core install: zoo export worked without torch?" >&2
  exit 1
fi
grep -q "needs torch, which this install lacks: pip install 'checkpoint-zoo\[torch\]'" "$work/err.txt" || {
  echo "core install: zoo export without torch said: $(cat "$work/err.txt")" >&2; exit 1; }
[ "$(wc -l <"$work/err.txt")" -eq 1 ]
# a team's own zoo, started with the core install alone
"$zoo" init "$work/team-zoo" --remote "$work/team-remote" >/dev/null
(cd "$work/team-zoo" && "$zoo" ls >/dev/null 2>&1 && "$zoo" validate >/dev/null)
core_mb=$(du -sm "$work/core" | cut -f1)
# [torch] beside a torch the training environment already has: pip keeps it (the CPU wheel of 2.13.0 on disk)
pip_install "$work/core" torch==2.13.0
pip_install "$work/core" "$wheel[torch]"
kept=$("$work/core/bin/python" -c "import torch; print(torch.__version__)")
case "$kept" in 2.13.0*) ;; *) echo "core install: [torch] replaced the torch already there with $kept" >&2; exit 1;; esac
# ... with which a checkpoint is added (the fit check and the input probe need torch) to a zoo started here,
# and exported (load_model)
"$work/core/bin/python" - "$work/w.safetensors" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(3)
shapes = {"fc.weight": (3, 13), "fc.bias": (3,), "norm.mean": (13,), "norm.std": (13,)}  # conf/arch/linear.yaml
t = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
t["norm.std"] = np.abs(t["norm.std"]) + 1
save_file(t, sys.argv[1])
PY
"$zoo" init "$work/ref-zoo" --reference >/dev/null
(cd "$work/ref-zoo" && "$zoo" add "$work/w.safetensors" --model lin --step 1 --arch linear \
  --task tabular-classification --dataset wine --license MIT >/dev/null &&
  "$zoo" export lin@1 "$work/lin-export" >/dev/null && [ -s "$work/lin-export/model.safetensors" ])

# a team's zoo with the [torch,eval] venv alone: its zoo, dvc and python first on PATH, no checkout on PYTHONPATH
wait "$eval_install" || { echo "core install: pip install '<wheel>[torch,eval]' failed" >&2; exit 1; }
# the S3 emulator is test equipment, not the install: it runs with this checkout's .venv
PYTHONPATH="$project/src" "$project/.venv/bin/python" "$project/scripts/s3_server.py" serve --json --port 0 \
  --request-log "$work/s3.log" --ready-file "$work/s3.json" --exit-with-parent >/dev/null 2>"$work/s3.err" &
server=$!
for _ in $(seq 120); do [ -s "$work/s3.json" ] && break; sleep 0.5; done
[ -s "$work/s3.json" ] || { echo "core install: the S3 emulator did not start: $(tail -n 3 "$work/s3.err")" >&2; exit 1; }
endpoint=$("$work/eval/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$work/s3.json")
eval_s=$SECONDS
(
  export PATH="$work/eval/bin:$PATH" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
  unset PYTHONPATH AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
  where=$(python -c "import checkpoint_zoo; print(checkpoint_zoo.__file__)")
  case "$where" in "$work/eval/"*) ;; *) echo "core install: the [eval] venv imports checkpoint_zoo from $where" >&2; exit 1;; esac
  # objects read from S3 since the request log had $1 lines
  fetched_since() {
    python - "$work/s3.log" "$1" <<'PY'
import json, sys
new = [json.loads(line) for line in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]]
sys.exit(0 if any(r["method"] == "GET" and r["status"] == 200 and "/files/" in r["path"] for r in new) else 1)
PY
  }
  # wine (scikit-learn's bundled data) evaluates offline with [eval] alone: no [reference] data package
  zoo init "$work/eval-zoo" --remote "$work/eval-remote" --reference >/dev/null
  cd "$work/eval-zoo"
  zoo add "$work/w.safetensors" --model lin --step 1 --arch linear --task tabular-classification --dataset wine \
    --license MIT >/dev/null
  dvc repro >"$work/repro.log" 2>&1 || { tail -n 20 "$work/repro.log" >&2; exit 1; }
  [ -s zoo/metrics/evaluations/lin.json ] || { echo "core install: dvc repro wrote no metrics for lin" >&2; exit 1; }
  zoo remote add s3 s3://zoo/team --endpoint "$endpoint" --default >/dev/null
  zoo push -r storage >/dev/null
  zoo push -r s3 >/dev/null
  zoo commit -m "Add lin@1" >/dev/null
  [ -z "$(git status --porcelain)" ] || { echo "core install: zoo commit left $(git status --porcelain)" >&2; exit 1; }
  git clone -q "$work/eval-zoo" "$work/eval-clone"
  cd "$work/eval-clone"
  for pull in "zoo pull lin@1" "dvc pull -q zoo/checkpoints/lin/step-00000001.safetensors"; do
    rm -rf zoo/checkpoints/lin .dvc/cache
    before=$(wc -l <"$work/s3.log")
    $pull >/dev/null
    fetched_since "$before" || { echo "core install: $pull read nothing from S3" >&2; exit 1; }
    zoo verify lin@1 >/dev/null
  done
  dvc repro >"$work/repro.log" 2>&1 || { tail -n 20 "$work/repro.log" >&2; exit 1; }
  # registry is always_changed (it reads the git tags); every other stage must be up to date
  if grep "Running stage" "$work/repro.log" | grep -qv "Running stage 'registry'"; then echo "core install: a fresh clone re-ran $(cat "$work/repro.log")" >&2; exit 1; fi
  [ -z "$(git status --porcelain)" ] || { echo "core install: the clone's dvc repro changed $(git status --porcelain)" >&2; exit 1; }
)
eval_mb=$(du -sm "$work/eval" | cut -f1)
full_mb=$(du -sm "$project/.venv/" | cut -f1)
echo "core install ok, and [torch] kept torch $kept: core ${core_mb} MB in ${seconds} s (the full .venv: ${full_mb} MB; core/full $(( 100 * core_mb / full_mb )) %)"
echo "[torch,eval] install ok: ${eval_mb} MB in $(cat "$work/eval.seconds") s; a team's zoo added, evaluated, pushed to a folder and S3, committed, and a clone pulled from S3 and re-ran nothing ($(( SECONDS - eval_s )) s); ${SECONDS} s in all"
