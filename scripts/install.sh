#!/usr/bin/env bash
# Create .venv (if needed) and install the package with every dependency pinned by constraints.txt.
# --browser also installs Debian's chromium and chromedriver (the static page's browser test needs them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = "--browser" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch 2.14.1 and torchvision 0.29.1 (a CUDA build that runs on the CPU) come from the machine's local package index.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
# `dvc plots show` offline: Vega inlined from npm into a local template (skipped, with a note, without npm).
.venv/bin/python scripts/build_plots_template.py >/dev/null || echo "note: dvc plots show will load Vega from its CDN" >&2
