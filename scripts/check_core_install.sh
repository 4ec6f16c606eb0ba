#!/usr/bin/env bash
# The core install, as a teammate on a laptop or a CI runner gets it: the wheel built from this checkout,
# installed with its core dependencies only (no torch) into a fresh venv, then used on a clone of this
# repository's reference zoo (a zoo made elsewhere). Prints the core venv's size beside the full one's.
# Usage: bash scripts/check_core_install.sh   (from anywhere; ~2 minutes, mostly pip)
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PY=${PYTHON:-python3}

.venv/bin/python -m pip wheel --no-deps --disable-pip-version-check -q -w "$work/dist" . >/dev/null
"$PY" -m venv "$work/core"
start=$(date +%s)
"$work/core/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt "$work"/dist/*.whl \
  >"$work/pip.log" 2>&1 || { tail -n 15 "$work/pip.log" >&2; exit 1; }
seconds=$(( $(date +%s) - start ))
if "$work/core/bin/python" -c "import torch" 2>/dev/null; then
  echo "core install: torch is importable; the core must not pull it" >&2
  exit 1
fi
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
"$work/core/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0 >"$work/pip.log" 2>&1 || {
  tail -n 15 "$work/pip.log" >&2; exit 1; }
"$work/core/bin/python" -m pip install -q --disable-pip-version-check "$(ls "$work"/dist/*.whl)[torch]" \
  >"$work/pip.log" 2>&1 || { tail -n 15 "$work/pip.log" >&2; exit 1; }
kept=$("$work/core/bin/python" -c "import torch; print(torch.__version__)")
case "$kept" in 2.13.0*) ;; *) echo "core install: [torch] replaced the torch already there with $kept" >&2; exit 1;; esac
# ... with which a checkpoint is added (the fit check and the input probe need torch) to a zoo started here
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
  --task tabular-classification --dataset wine --license MIT >/dev/null)
full_mb=$(du -sm "$project/.venv/" | cut -f1)
echo "core install ok, and [torch] kept torch $kept: core ${core_mb} MB in ${seconds} s (the full .venv: ${full_mb} MB; core/full $(( 100 * core_mb / full_mb )) %)"
