#!/usr/bin/env bash
# pytom-match-pick's candidate extraction on the CPU, beside cryomine (issue 15).
#
# pytom-match-pick is GPL-2.0: it is installed into its own venv, benchmarks/peers/.venv-pytom
# (git-ignored), and run as a separate program; none of its code is copied into cryomine.
# A plain `pip install pytom-match-pick` tries to build cupy from source and fails; installing it
# with --no-deps, then its listed dependencies and the binary cupy-cuda12x wheel works. Without a
# GPU, cupy cannot count devices, so pytom_cpu_launcher.py makes it report zero before calling
# pytom's extraction entry point.
#
#   benchmarks/peers/pytom_extract_compare.sh setup              # create/refresh the venv
#   benchmarks/peers/pytom_extract_compare.sh extract -j JOB.json -n 100 [pytom options...]
#   benchmarks/peers/pytom_extract_compare.sh version
#
# The side-by-side comparison with `cryomine match extract` (convert a cryomine job folder to a
# pytom job, run both, compare) is benchmarks/template_matching_extract_peer.py, which calls this.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PYTOM_VENV:-$HERE/.venv-pytom}"
PYTOM_VERSION="${PYTOM_VERSION:-0.14.0}"
PYTHON="${PYTHON:-python3.11}"

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q --no-deps "pytom-match-pick==$PYTOM_VERSION"
    # pytom-match-pick's Requires-Dist, less cupy (replaced by the prebuilt cupy-cuda12x wheel)
    "$VENV/bin/pip" install -q numpy voltools tqdm mrcfile starfile importlib_resources \
        packaging scipy healpix lxml cupy-cuda12x
}

case "${1:-}" in
    setup)
        setup
        ;;
    extract)
        shift
        [ -x "$VENV/bin/python" ] || setup
        exec env OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$VENV/bin/python" \
            "$HERE/pytom_cpu_launcher.py" "$@"
        ;;
    version)
        [ -x "$VENV/bin/python" ] || setup
        "$VENV/bin/pip" list 2>/dev/null | grep -Ei '^(pytom-match-pick|cupy-cuda12x|numpy|scipy) '
        ;;
    *)
        sed -n '2,17p' "$0"
        exit 2
        ;;
esac
