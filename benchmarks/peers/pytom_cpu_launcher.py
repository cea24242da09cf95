"""Run pytom-match-pick's candidate extraction on a machine without a GPU.

pytom-match-pick (GPL-2.0, installed beside cryomine in benchmarks/peers/.venv-pytom, never
vendored) imports cupy at start-up, and voltools asks cupy how many CUDA devices there are; with
no driver that call raises. Candidate extraction itself is numpy/scipy only, so this launcher makes
cupy report zero devices and then calls pytom's own ``pytom_extract_candidates.py`` entry point
with the arguments it was given.

    benchmarks/peers/.venv-pytom/bin/python benchmarks/peers/pytom_cpu_launcher.py -j JOB.json -n 100
"""

import sys

import cupy


def _no_devices() -> int:
    return 0


cupy.cuda.runtime.getDeviceCount = _no_devices

from pytom_tm.entry_points import extract_candidates  # noqa: E402

if __name__ == "__main__":
    extract_candidates(sys.argv[1:])
