#!/usr/bin/env bash
# Debian's RELION (3.1.3, CPU build) for benchmarks/relion_classify.py (issue 13).
#
# RELION is GPL-2.0: it is installed as a system package and run as a separate program;
# none of its code is copied into cryomine. Idempotent: installs only when relion_refine is
# missing (needs root or sudo and apt), then prints the installed version.
#
#   benchmarks/peers/install_relion.sh
set -euo pipefail

if ! command -v relion_refine >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q relion
fi

echo "relion_refine: $(command -v relion_refine)"
if command -v dpkg-query >/dev/null 2>&1; then
    echo "package: $(dpkg-query -W -f='${Package} ${Version}' relion 2>/dev/null || echo 'not from dpkg')"
fi
relion_refine --version 2>&1 | head -n 2
