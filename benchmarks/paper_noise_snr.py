"""The paper noise model's effective SNR against its nominal SNR, and the scale-only control.

For each voxel size (``--voxel-sizes``), tilt range and nominal SNR it simulates ``--per-class``
unnormalized subtomograms of each structure with ``noise_model="paper"`` and measures the SNR
our way: ``var(noise-free part) / var(noise part)`` of the final subtomogram (the paper model is
linear, so the simulator returns both parts). It reports the ratio effective / nominal per
structure (median over its subtomograms) and over all, and the homogeneity of the scale-only
control (:class:`cryomine.sorting.baselines.ScaleMixture`, mixture + BIC on log std) on the
same unnormalized data. Writes ``benchmarks/results/paper_noise_snr.json`` and ``.md``.

A sensitivity row per voxel size (±60°, SNR 0.01, ``--no-sensitivity`` skips it) repeats the
measurement with ``signal_variance="structure"``: ``σ²_s`` once per structure from its centred
map instead of from each subtomogram's own rotated, shifted density (the default).

    python benchmarks/paper_noise_snr.py
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from cryomine._runrecord import machine_description
from cryomine.evaluate import sorting_metrics
from cryomine.simulate import ImagingParameters, simulate_subtomograms
from cryomine.sorting.baselines import ScaleMixture

STRUCTURES = ["6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"]


def measure(
    args: argparse.Namespace,
    voxel_size: float,
    tilt: float,
    snr: float,
    seed: int,
    signal_variance: str = "subtomogram",
) -> dict:
    """Effective/nominal SNR per structure and the scale-only control for one setting."""
    with warnings.catch_warnings():  # the atp_synthase map is cut off by a 24³ box: expected
        warnings.simplefilter("ignore")
        sim = simulate_subtomograms(
            args.structures, n_per_class=args.per_class, snr=snr, tilt_range_deg=(-tilt, tilt),
            box_size=args.box, voxel_size_a=voxel_size, noise_model="paper", normalize=False,
            signal_variance=signal_variance, seed=seed, device="cpu",
        )  # fmt: skip
    from cryomine.simulate._paper_noise import paper_filters, paper_signal_variance

    filters = paper_filters(args.box, voxel_size, ImagingParameters(tilt_range_deg=(-tilt, tilt)))
    signal, noisy, own_variance = [], [], []
    for batch in sim.iter_batches(keep_noise_free=True, keep_densities=True):
        signal.append(batch.noise_free)
        noisy.append(batch.subtomograms)
        densities = torch.from_numpy(batch.densities)
        own_variance.append(paper_signal_variance(densities, filters).numpy())
    s = np.concatenate(signal).astype(np.float64)
    x = np.concatenate(noisy).astype(np.float64)
    ratio = s.var(axis=(1, 2, 3)) / (x - s).var(axis=(1, 2, 3)) / snr
    names = sim.table["cmStructure"].to_numpy()
    own = np.concatenate(own_variance)
    centred = sim.parameters["paper_structure_signal_variance"]
    # σ²_s of the centred map over that of the rotated, shifted (trilinear) densities
    blur = float(np.median([centred[n] / np.median(own[names == n]) for n in args.structures]))
    truth = sim.table["cmTrueClass"].to_numpy() - 1
    per_structure = {
        name: round(float(np.median(ratio[names == name])), 3) for name in args.structures
    }
    model = ScaleMixture(k_range=tuple(args.k_range), random_state=seed).fit(x)
    metrics = sorting_metrics(truth, model.labels_)
    std = np.exp(model.log_std_)
    return {
        "voxel_size_a": voxel_size,
        "tilt_deg": tilt,
        "snr_nominal": snr,
        "seed": seed,
        "signal_variance": signal_variance,
        "ratio_median": round(float(np.median(ratio)), 3),
        "ratio_mean": round(float(np.mean(ratio)), 3),
        "ratio_per_structure": per_structure,
        "bandpass_radius_voxels": sim.parameters["paper_bandpass_radius_voxels"],
        "signal_variance_centred_over_rotated": round(blur, 3),
        "std_per_structure": {
            name: round(float(np.median(std[names == name])), 5) for name in args.structures
        },
        "scale_control": {
            "k": int(model.n_classes_),
            "homogeneity": round(float(metrics.homogeneity), 4),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--structures", default=",".join(STRUCTURES), help="comma-separated structure names")
    add("--voxel-sizes", default="12,16", help="comma-separated voxel sizes, Å")
    add("--tilts", default="60,40", help="comma-separated maximum tilts, degrees")
    add("--snrs", default="0.1,0.01,0.001", help="comma-separated nominal SNRs")
    add("--per-class", type=int, default=40, help="subtomograms per structure and setting")
    add("--box", type=int, default=24, help="box edge, voxels")
    add("--k-range", type=int, nargs=2, default=[2, 20], help="scale control: candidate K")
    add("--seed", type=int, default=0)
    add("--no-sensitivity", action="store_true", help="skip the per-subtomogram σ²_s rows")
    add("--output", type=Path, default=Path(__file__).parent / "results" / "paper_noise_snr.json")
    args = parser.parse_args(argv)
    args.structures = [s.strip() for s in args.structures.split(",") if s.strip()]
    command = "python benchmarks/paper_noise_snr.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    print(command, flush=True)
    start = time.perf_counter()
    rows = []
    for voxel_size in (float(v) for v in args.voxel_sizes.split(",")):
        for tilt in (float(t) for t in args.tilts.split(",")):
            for snr in (float(s) for s in args.snrs.split(",")):
                row = measure(args, voxel_size, tilt, snr, args.seed + len(rows))
                rows.append(row)
                print(
                    f"{voxel_size:g} Å ±{tilt:g}° SNR {snr:g}: effective/nominal median "
                    f"{row['ratio_median']:.2f} {row['ratio_per_structure']}; scale control K = "
                    f"{row['scale_control']['k']}, homogeneity "
                    f"{row['scale_control']['homogeneity']:.3f}",
                    flush=True,
                )
    extra = []
    if not args.no_sensitivity:
        for voxel_size in (float(v) for v in args.voxel_sizes.split(",")):
            row = measure(args, voxel_size, 60.0, 0.01, args.seed + 1000, "structure")
            extra.append(row)
            print(f"{voxel_size:g} Å, σ²_s per structure: median {row['ratio_median']:.2f}; "
                  f"scale control {row['scale_control']}", flush=True)  # fmt: skip
    machine = {**machine_description(), "load_average_1min": os.getloadavg()[0]}
    report = {
        "title": "Paper noise model: effective SNR (var(signal) / var(noise)) over nominal",
        "command": command,
        "machine": machine,
        "arguments": {**vars(args), "output": str(args.output)},
        "torch_threads": torch.get_num_threads(),
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": rows,
        "sensitivity_rows": extra,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    header = ["voxel (Å)", "tilt", "nominal SNR", "effective / nominal (median)",
              *args.structures, "scale control K", "scale control homogeneity",
              "σ²_s centred / rotated"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in rows:
        cells = [f"{r['voxel_size_a']:g}", f"±{r['tilt_deg']:g}°", f"{r['snr_nominal']:g}",
                 f"{r['ratio_median']:.2f}",
                 *(f"{r['ratio_per_structure'][n]:.2f}" for n in args.structures),
                 str(r["scale_control"]["k"]),
                 f"{r['scale_control']['homogeneity']:.3f}",
                 f"{r['signal_variance_centred_over_rotated']:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    text = [
        f"# {report['title']}", "", f"`{command}`", "",
        f"Machine: {machine['cpu']} ({machine['cpu_count']} CPUs, load average "
        f"{machine['load_average_1min']:.1f}); {report['wall_s']} s. Data: "
        f"{', '.join(args.structures)}, {args.per_class} per structure and row, {args.box}³, "
        "noise_model='paper' (σ²_s per subtomogram), unnormalized, seed "
        f"{args.seed} + row index. Per-structure columns: median effective/nominal over its "
        "subtomograms. Last column: σ²_s of the centred map over the median σ²_s of the "
        "rotated, shifted (trilinearly interpolated) densities (median over structures).",
        "", *lines, "",
    ]  # fmt: skip
    if extra:
        text += [
            "Sensitivity: `signal_variance=\"structure\"` (σ²_s once per structure from its "
            "centred map, not from each subtomogram's rotated, shifted density), ±60°, SNR 0.01:",
            "",
            "| voxel (Å) | effective / nominal (median) | "
            + " | ".join(args.structures) + " | scale control K | homogeneity |",
            "|---" * (len(args.structures) + 4) + "|",
        ]  # fmt: skip
        for r in extra:
            cells = [f"{r['voxel_size_a']:g}", f"{r['ratio_median']:.2f}",
                     *(f"{r['ratio_per_structure'][n]:.2f}" for n in args.structures),
                     str(r["scale_control"]["k"]),
                     f"{r['scale_control']['homogeneity']:.3f}"]  # fmt: skip
            text.append("| " + " | ".join(cells) + " |")
        text.append("")
    args.output.with_suffix(".md").write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text), flush=True)


if __name__ == "__main__":
    main()
