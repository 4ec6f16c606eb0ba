#!/usr/bin/env bash
# Install (same pins as the main job), lint and type-check, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --browser
# the layering and typing rules (pyproject.toml) first: a violation fails in seconds, not after the suite
.venv/bin/ruff check src scripts tests
.venv/bin/mypy
# the layers contract (pyproject.toml [tool.importlinter])
.venv/bin/lint-imports --no-cache
# two workers, one per core (most tests wait on one `zoo`, `dvc` or git process at a time); each test file runs
# whole on one worker, so its module fixtures are built once; `-n 0` after this runs in one process
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
