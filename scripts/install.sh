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
# pip's own output goes to .venv/install.log; the terminal gets one line per package being fetched.
total=$(grep -c '^[A-Za-z0-9]' constraints.txt)
echo "install: checkpoint-zoo and up to $total pinned packages into .venv (the first time: a few minutes, torch is the biggest)"
if ! .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -c constraints.txt -e ".[test]" 2>&1 \
    | tee .venv/install.log \
    | awk -v total="$total" '
        /^Collecting /          { n++; printf "install: [%d/%d] %s\n", n, total, $2; fflush() }
        /^Installing collected/ { print "install: unpacking into .venv …"; fflush() }
        /^Successfully installed/ { printf "install: done (%d installed or upgraded)\n", NF - 2; fflush() }'; then
  echo "install: pip failed; its last lines (all of them in .venv/install.log):" >&2
  tail -n 15 .venv/install.log >&2
  exit 1
fi
# `dvc plots show` offline: Vega inlined from npm into a local template (skipped, with a note, without npm).
.venv/bin/python scripts/build_plots_template.py >/dev/null || echo "note: dvc plots show will load Vega from its CDN" >&2
