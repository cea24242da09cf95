"""Benchmark: peak memory and time of `cryomine pick` on a large memory-mapped tomogram.

Writes a synthetic tomogram (default 300 × 1000 × 1000 float32, 1.2 GB of Gaussian noise)
once, then runs `cryomine pick` in a child process and reads its peak resident memory (ru_maxrss).
Target (issue 6): no more than ~2 GB beyond the memory map. Pages of the memory-mapped file that
the kernel keeps resident count towards RSS too, so the figure is an upper bound.

    python benchmarks/pick_memory.py --shape 300 1000 1000 --out-dir /tmp/cryomine_pick_memory
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np

from cryomine._runrecord import machine_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shape", type=int, nargs=3, default=(300, 1000, 1000), help="z y x voxels"
    )
    parser.add_argument(
        "--diameter", type=float, default=250.0, help="particle diameter, Å (voxel 10 Å)"
    )
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/cryomine_pick_memory"))
    parser.add_argument(
        "--results", type=Path, default=Path(__file__).parent / "results" / "pick_memory.json"
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tomogram = args.out_dir / "large.mrc"
    if not tomogram.exists():
        rng = np.random.default_rng(0)
        with mrcfile.new_mmap(tomogram, shape=tuple(args.shape), mrc_mode=2, overwrite=True) as mrc:
            mrc.voxel_size = 10.0
            for z in range(0, args.shape[0], 20):
                mrc.data[z : z + 20] = rng.standard_normal(
                    (min(20, args.shape[0] - z), *args.shape[1:]), dtype=np.float32
                )
    picks = args.out_dir / "picks.star"
    command = [sys.executable, "-m", "cryomine", "-q", "pick", str(tomogram), "--particle-diameter",
               str(args.diameter), "--max-picks", "5000", "--overwrite", "-o", str(picks)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    result = {"command": "python " + shlex.join(sys.argv), "pick_command": shlex.join(command),
              "machine": machine_description(), "shape_zyx": list(args.shape),
              "tomogram_gb": tomogram.stat().st_size / 1024**3, "peak_rss_gb": peak_gb, "seconds": seconds}  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
