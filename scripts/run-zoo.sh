#!/usr/bin/env bash
# The main job: install, pull the reference zoo from the in-repo remote, run the pipeline, show the index.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
dvc pull
zoo merge-setup >/dev/null
dvc repro
zoo verify
zoo ls --all-steps
echo
cat zoo/INDEX.md
echo
echo "Browse: file://$PWD/site/index.html"
