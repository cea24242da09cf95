"""Time the subtomogram simulator in both imaging modes; extrapolate to 10,000 x 24³.

Runs ``--measure`` subtomograms of the default 5-structure benchmark set per mode (all of them
with ``--measure 10000``), reports subtomograms per second and the time for ``--target``
subtomograms (extrapolated linearly when fewer were measured; the output says so), the peak
resident memory, and writes ``benchmarks/results/simulate_subtomograms.json`` and a Markdown
table (``.md``) beside it.

    python benchmarks/simulate_subtomograms.py --measure 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from pathlib import Path

import torch

from cryomine._runrecord import machine_description
from cryomine.simulate import simulate_subtomograms

STRUCTURES = ["6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", type=int, default=1000, help="subtomograms simulated per mode")
    parser.add_argument("--target", type=int, default=10000, help="subtomograms to extrapolate to")
    parser.add_argument("--box", type=int, default=24, help="box edge, voxels")
    parser.add_argument("--batch-size", type=int, default=64, help="subtomograms per batch")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/simulate_subtomograms.json")
    )
    args = parser.parse_args()

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    n_per_class = max(1, args.measure // len(STRUCTURES))
    results = []
    for mode in ("fourier", "tilt-series"):
        start = time.perf_counter()
        simulated = simulate_subtomograms(
            STRUCTURES,
            n_per_class=n_per_class,
            snr=0.01,
            box_size=args.box,
            mode=mode,  # type: ignore[arg-type]
            seed=0,
            batch_size=args.batch_size,
            device=args.device,
        )
        setup_s = time.perf_counter() - start
        start = time.perf_counter()
        n_done = sum(len(batch) for batch in simulated.iter_subtomograms())
        run_s = time.perf_counter() - start
        rate = n_done / run_s
        results.append(
            {
                "mode": mode,
                "n_measured": n_done,
                "setup_s": round(setup_s, 2),
                "simulate_s": round(run_s, 2),
                "subtomograms_per_s": round(rate, 1),
                "target": args.target,
                "target_s": round(setup_s + args.target / rate, 1),
                "extrapolated": n_done < args.target,
            }
        )
        print(
            f"{mode:12s} {n_done} in {run_s:.1f} s ({rate:.1f}/s); "
            f"{args.target}: {results[-1]['target_s']:.0f} s"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "command": command,
        "machine": {
            "cpu": machine_description()["cpu"],
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": args.device,
            "cuda": torch.cuda.is_available(),
            "load_average_1min": os.getloadavg()[0],
        },
        "structures": STRUCTURES,
        "box_size": args.box,
        "batch_size": args.batch_size,
        "peak_rss_mb": round(peak_mb),
        "results": results,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"command: {command}")
    print(f"machine: {report['machine']}")
    print(f"peak RSS: {peak_mb:.0f} MB")
    table = [
        f"| mode | measured | subtomograms/s | time for {args.target} (s) | extrapolated |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        table.append(
            f"| {r['mode']} | {r['n_measured']} | {r['subtomograms_per_s']} | {r['target_s']} "
            f"| {r['extrapolated']} |"
        )
    markdown = "\n".join([f"`{command}`", "", f"machine: {report['machine']}", "", *table]) + "\n"
    args.output.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print()
    print("\n".join(table))


if __name__ == "__main__":
    main()
