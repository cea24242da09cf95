#!/usr/bin/env bash
# TomoTwin (tomotwin-cryoet, MPL-2.0) in its own venv, benchmarks/peers/.venv-tomotwin (git-ignored),
# for benchmarks/tomotwin_side_by_side.py. It is run as a separate program through
# tomotwin_launcher.py; none of its code is copied into cryomine. Its undeclared dependencies
# (pytorch-metric-learning, dask) are installed beside it, and torch is pinned to the CPU wheel
# the project uses. Idempotent.
#
#   benchmarks/peers/install_tomotwin.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${TOMOTWIN_VENV:-$HERE/.venv-tomotwin}"
TOMOTWIN_VERSION="${TOMOTWIN_VERSION:-0.9.1.2}"
PYTHON="${PYTHON:-python3.11}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0 "tomotwin-cryoet==$TOMOTWIN_VERSION" \
    pytorch-metric-learning dask
"$VENV/bin/python" -c "from importlib.metadata import version; print('tomotwin-cryoet', version('tomotwin-cryoet'))"
