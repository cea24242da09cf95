"""Benchmark: peak memory of `cryomine match search` on a large memory-mapped tomogram.

Writes a synthetic tomogram (default 256 × 1024 × 1024 float32, 1 GiB of Gaussian noise) once,
then runs `cryomine match search` in a child process with a coarse rotation grid (the memory of a
search does not grow with the number of rotations) and reads its peak resident memory
(ru_maxrss), and samples the child's /proc status every 0.1 s for the peak of its anonymous
memory (RssAnon: what the search itself allocates) and of its file-backed resident pages
(RssFile: pages of the memory-mapped tomogram and score maps, which the kernel can drop under
memory pressure). Target (issue 15): a 1 GB tomogram searched in 4 GB.

    python benchmarks/template_matching_memory.py --shape 256 1024 1024
"""

from __future__ import annotations

import argparse
import json
import os
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
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 1024, 1024), help="z y x")
    parser.add_argument("--template", default="4v4r")
    parser.add_argument("--voxel-size", type=float, default=10.0, help="Å")
    parser.add_argument("--angular-step", type=float, default=180.0, help="degrees")
    parser.add_argument("--tile", default="128")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/cryomine_match_memory"))
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).parent / "results" / "template_matching_tomogram" / "memory.json",
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tomogram = args.out_dir / "large.mrc"
    if not tomogram.exists():
        rng = np.random.default_rng(0)
        with mrcfile.new_mmap(tomogram, shape=tuple(args.shape), mrc_mode=2, overwrite=True) as mrc:
            mrc.voxel_size = args.voxel_size
            for z in range(0, args.shape[0], 16):
                mrc.data[z : z + 16] = rng.standard_normal(
                    (min(16, args.shape[0] - z), *args.shape[1:]), dtype=np.float32
                )
    job = args.out_dir / "job"
    command = [sys.executable, "-m", "cryomine", "-q", "match", "search", str(tomogram),
               "--template", args.template, "-o", str(job), "--angular-step", str(args.angular_step),
               "--tile", args.tile, "--overwrite"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=environment)
    peaks = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
    while child.poll() is None:
        try:
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in peaks:
                    peaks[key] = max(peaks[key], int(value.split()[0]))
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    if child.returncode:
        raise SystemExit(f"search failed with status {child.returncode}")
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    job_json = json.loads((job / "job.json").read_text())
    result = {
        "command": "python " + shlex.join(sys.argv),
        "search_command": shlex.join(command),
        "machine": machine_description(),
        "shape_zyx": list(args.shape),
        "tomogram_gb": tomogram.stat().st_size / 1024**3,
        "template_box": job_json["template"]["box_size"],
        "n_tiles": job_json["n_tiles"],
        "n_rotations": job_json["n_rotations"],
        "peak_rss_gb": peak_gb,
        "peak_rss_anon_gb": peaks["RssAnon"] / 1024**2,
        "peak_rss_file_gb": peaks["RssFile"] / 1024**2,
        "peak_vmrss_sampled_gb": peaks["VmRSS"] / 1024**2,
        "seconds": seconds,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
