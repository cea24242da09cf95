"""One full DISCA sort of simulated data: wall time, iterations, estimated K, homogeneity, accuracy.

Default protocol (BENCHMARKS.md §1, one cell of the paper's Table 1 at a quarter of its size):
5 structures x 200 subtomograms, 24³ at 16 Å (the ATP synthase does not fit 24³ at 13 Å), SNR 0.01, tilt ±60°, random pose and ±2 voxel
shifts (``cryomine.simulate``), then ``DISCA`` with the given width / candidate K / iterations.
Writes ``benchmarks/results/disca_sort.json`` and a Markdown summary beside it.

    python benchmarks/disca_sort.py --n-per-class 200 --snr 0.01 --width 0.25 --max-iter 20

``--lowpass`` sets DISCA's input low-pass (Å, ``auto`` = half Nyquist, the default, or ``none``).
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

import numpy as np
import torch

from cryomine._runrecord import machine_description
from cryomine.evaluate import sorting_metrics
from cryomine.simulate import simulate_subtomograms
from cryomine.sorting import DISCA

STRUCTURES = ["6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--structures", nargs="+", default=STRUCTURES)
    parser.add_argument("--n-per-class", type=int, default=200)
    parser.add_argument("--snr", type=float, default=0.01)
    parser.add_argument("--tilt-deg", type=float, default=60.0, help="tilt range ± (degrees)")
    parser.add_argument("--voxel-size", type=float, default=16.0, help="voxel size, Å")
    parser.add_argument("--mode", default="tilt-series", choices=["tilt-series", "fourier"])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--k-range", type=int, nargs=2, default=[2, 20])
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--pca-components", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lowpass", default="auto", help="input low-pass: resolution in Å, 'auto' or 'none'"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "disca_sort.json"
    )
    args = parser.parse_args()
    lowpass = {"auto": "auto", "none": None}.get(args.lowpass.lower(), None)
    if args.lowpass.lower() not in ("auto", "none"):
        lowpass = float(args.lowpass)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print(command, flush=True)

    start = time.perf_counter()
    simulated = simulate_subtomograms(
        args.structures, n_per_class=args.n_per_class, snr=args.snr, mode=args.mode,
        tilt_range_deg=(-args.tilt_deg, args.tilt_deg), voxel_size_a=args.voxel_size,
        seed=args.seed, device=args.device,
    )  # fmt: skip
    volumes = np.concatenate(list(simulated.iter_subtomograms()))
    truth = simulated.table["cmTrueClass"].to_numpy()
    simulate_s = time.perf_counter() - start

    def report(entry: dict) -> None:
        print(f"iteration {entry['iteration']}: K={entry['n_classes']} DDBI={entry['ddbi']:.4f} "
              f"changed={entry['label_change']} feature change={entry['feature_change']} "
              f"{entry['timings_s']}", flush=True)  # fmt: skip

    model = DISCA(
        k_range=tuple(args.k_range), max_iter=args.max_iter, width=args.width,
        pca_components=args.pca_components, device=args.device, random_state=args.seed,
        lowpass_a=lowpass, voxel_size_a=simulated.parameters["voxel_size_a"],
        learning_rate=args.learning_rate,
    )  # fmt: skip
    start = time.perf_counter()
    model.fit(volumes, callback=report)
    sort_s = time.perf_counter() - start
    metrics = sorting_metrics(truth, model.labels_)
    per_iteration = [sum(e["timings_s"].values()) for e in model.history_]
    result = {
        "command": command,
        "data": {"structures": args.structures, "n_per_class": args.n_per_class, "snr": args.snr,
                 "tilt_range_deg": [-args.tilt_deg, args.tilt_deg], "mode": args.mode,
                 "n_subtomograms": len(volumes), "simulate_s": simulate_s},
        "settings": model.get_params(),
        "wall_s": sort_s, "iterations": model.n_iter_, "converged": model.converged_,
        "best_iteration": model.best_iteration_, "seconds_per_iteration": per_iteration,
        "n_classes": model.n_classes_, "metrics": metrics.to_dict(),
        "k_per_iteration": [e["n_classes"] for e in model.history_],
        "feature_change_per_iteration": [e["feature_change"] for e in model.history_],
        "lowpass_fraction_of_nyquist": model.lowpass_fraction_,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": {"cpu": machine_description()["cpu"], "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "device": model.device_,
                    "load_average_1min": os.getloadavg()[0]},
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    accuracy = "-" if metrics.accuracy is None else f"{100 * metrics.accuracy:.2f} %"
    lines = [
        "# DISCA sort of simulated subtomograms",
        "",
        f"`{command}` on {result['machine']['cpu']} ({result['machine']['cpu_count']} CPUs, device "
        f"{model.device_}, 1-min load average {result['machine']['load_average_1min']:.1f})",
        "",
        "| N | SNR | tilt | low-pass | width | iterations | wall (s) | K true / found "
        "| homogeneity | accuracy | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {len(volumes)} | {args.snr} | ±{args.tilt_deg:g}° | {args.lowpass} | {args.width} "
        f"| {model.n_iter_} "
        f"| {sort_s:.0f} | {len(args.structures)} / {model.n_classes_} "
        f"| {metrics.homogeneity:.4f} "
        f"| {accuracy} | {result['peak_rss_mib']:.0f} |",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
