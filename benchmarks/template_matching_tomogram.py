"""Benchmark: template matching in a crowded simulated tomogram (issue 15).

Simulates one crowded tomogram holding the five validation structures (default 4v7r, 4cr2, 1qvr,
3cf3, 5gjv; tilt-series imaging: projection, CTF per tilt, noise, weighted back-projection), then
for each structure runs the template search (`cryomine.matching.run_search`, the code behind
`cryomine match search`) with that structure as template, extracts picks at the statistical
false-alarm cut-off and scores them against the truth of that structure (a pick on another
structure is a false pick): precision, recall, F1, and the ROC-style curve (recall against the
number of false picks as the threshold falls). The search time gives seconds per tomogram per
1,000 rotations. The Monte Carlo significance test runs on the picks at the cut-off and on the
best ten peaks below it, and the picks at the cut-off with p ≤ --alpha are scored again
(precision, recall, F1 "with the p-value filter"). A second search, on the tomogram with randomised Fourier phases (its power
spectrum, no particles), measures how many chance peaks the cut-off lets through for
F = 1, 10, 100, 1000.

Runs with one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)) unless --threads says
otherwise. Writes results.json, results.md, roc.png and per-structure job folders' job.json under
--results (default benchmarks/results/template_matching_tomogram/).

    python benchmarks/template_matching_tomogram.py                      # the committed run
    python benchmarks/template_matching_tomogram.py --shape 32 96 96 --n-particles 10  # quick
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

STRUCTURES = ("4v7r", "4cr2", "1qvr", "3cf3", "5gjv")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--structures", default=",".join(STRUCTURES))
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 192, 192), help="z y x voxels")
    parser.add_argument("--voxel-size", type=float, default=16.0, help="Å")
    parser.add_argument("--n-particles", type=int, default=60)
    parser.add_argument("--snr", type=float, default=0.1)
    parser.add_argument("--tilt-range", type=float, nargs=2, default=(-60.0, 60.0))
    parser.add_argument("--defocus-um", type=float, default=5.0)
    parser.add_argument("--angular-step", type=float, default=30.0, help="degrees")
    parser.add_argument("--tile", type=int, default=None, help="core tile edge, voxels")
    parser.add_argument("--false-alarms", type=float, default=1.0)
    parser.add_argument("--p-values", type=int, default=19, help="pseudo-structures (0: off)")
    parser.add_argument("--p-value-step", type=float, default=45.0, help="degrees")
    parser.add_argument("--n-reference", type=int, default=24)
    parser.add_argument("--below-cut-off", type=int, default=10, help="peaks below, p-valued")
    parser.add_argument(
        "--max-tested", type=int, default=None, help="best picks at the cut-off p-valued (all)"
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="p-value filter of the picks")
    parser.add_argument("--noise-check", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/cryomine_tm_benchmark"))
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).parent / "results" / "template_matching_tomogram",
    )
    return parser.parse_args()


def _hit_radius_px(template) -> float:
    """Half the template's mask radius (the CZII convention: half the particle radius), >= 2."""
    return max(0.5 * float(template.parameters["mask_radius_px"]), 2.0)


def _curve(scores: np.ndarray, hits: np.ndarray, n_true: int) -> dict[str, list[float]]:
    order = np.argsort(-scores)
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    return {
        "threshold": scores[order].tolist(),
        "recall": (tp / max(n_true, 1)).tolist(),
        "false_picks": fp.astype(int).tolist(),
        "precision": (tp / np.arange(1, len(order) + 1)).tolist(),
    }


def _average_precision(curve: dict[str, list[float]], hits_sorted: np.ndarray) -> float:
    recall = np.asarray(curve["recall"])
    precision = np.asarray(curve["precision"])
    if not len(recall):
        return 0.0
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float((steps * precision).sum())


def main() -> None:
    args = _parse()
    torch.set_num_threads(args.threads)
    from cryomine._runrecord import machine_description
    from cryomine.evaluate import match_positions
    from cryomine.io import positions_zyx
    from cryomine.matching import (
        extract_peaks,
        false_alarm_threshold,
        make_template,
        run_search,
        search_rotations,
    )
    from cryomine.matching._significance import extract_windows, template_p_values
    from cryomine.simulate import simulate_tomogram

    names = [s.strip() for s in args.structures.split(",") if s.strip()]
    shape = tuple(args.shape)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sim = simulate_tomogram(
        names, shape_zyx=shape, voxel_size_a=args.voxel_size, n_particles=args.n_particles,
        snr=args.snr, tilt_range_deg=tuple(args.tilt_range), defocus_um=args.defocus_um,
        mode="tilt-series", seed=args.seed,
    )  # fmt: skip
    simulate_s = time.perf_counter() - start
    print(f"simulated {shape} with {args.n_particles} particles in {simulate_s:.0f} s", flush=True)
    truth_zyx = positions_zyx(sim.table)
    truth_names = sim.table["cmStructure"].to_numpy()
    rotations = search_rotations(args.angular_step)
    n_rot = len(rotations)
    rows, curves = [], {}
    for name in names:
        template = make_template(
            name, voxel_size_a=args.voxel_size, tilt_range_deg=tuple(args.tilt_range),
            defocus_um=args.defocus_um,
        )  # fmt: skip
        job_dir = args.work_dir / f"job_{name}"
        tile = None if args.tile is None else (args.tile,) * 3
        t0 = time.perf_counter()
        job = run_search(
            sim.tomogram, template, rotations, job_dir, voxel_size_a=args.voxel_size,
            tile_shape=tile, overwrite=True,
        )  # fmt: skip
        search_s = time.perf_counter() - t0
        import mrcfile

        with mrcfile.open(job_dir / "scores.mrc") as handle:
            scores = np.array(handle.data)
        std = job["statistics"]["std"]
        threshold = false_alarm_threshold(std, job["n_positions"], n_rot, args.false_alarms)
        radius = float(template.parameters["mask_radius_px"])
        mine = truth_zyx[truth_names == name]
        hit_radius = _hit_radius_px(template)
        at_cut = extract_peaks(scores, threshold=threshold, exclusion_radius_px=radius)
        hits = match_positions(mine, at_cut.positions_zyx, hit_radius) >= 0
        n_hits = int(hits.sum())
        # where the false picks lie: the simulator's label map (k = 1-based structure index)
        label_of = {value: key for key, value in sim.label_names.items()}
        false_labels = sim.labels[tuple(at_cut.positions_zyx[~hits].T)]
        own_label = label_of[name]
        precision = n_hits / len(at_cut) if len(at_cut) else 0.0
        recall = n_hits / len(mine) if len(mine) else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        # the curve: peaks down to 20 below the cut-off (at least 4 x the true particles)
        many = extract_peaks(
            scores, threshold=0.0, exclusion_radius_px=radius,
            max_peaks=max(4 * len(mine), len(at_cut) + 20),
        )  # fmt: skip
        many_hits = match_positions(mine, many.positions_zyx, hit_radius) >= 0
        curve = _curve(many.scores, many_hits, len(mine))
        curves[name] = curve
        row = {
            "structure": name,
            "box_size": template.box_size,
            "mask_radius_px": radius,
            "hit_radius_px": hit_radius,
            "n_true": len(mine),
            "threshold": threshold,
            "score_std": std,
            "n_picks": len(at_cut),
            "n_hits": n_hits,
            "n_false_on_same_structure": int((false_labels == own_label).sum()),
            "n_false_on_other_structures": int(
                ((false_labels > 0) & (false_labels != own_label)).sum()
            ),
            "n_false_on_background": int((false_labels == 0).sum()),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "average_precision": _average_precision(curve, many_hits),
            "search_s": search_s,
            "s_per_1000_rotations": search_s / n_rot * 1000.0,
        }
        if args.p_values:
            below = many.positions_zyx[many.scores <= threshold][: args.below_cut_off]
            tested = at_cut.positions_zyx[: args.max_tested]
            positions = np.concatenate([tested, below]).reshape(-1, 3)
            is_hit = match_positions(mine, positions, hit_radius) >= 0
            windows = extract_windows(sim.tomogram, positions, template.box_size, 2)
            t1 = time.perf_counter()
            result = template_p_values(
                windows, template, search_rotations(args.p_value_step).as_matrix(),
                n_null=args.p_values, n_reference=args.n_reference, max_shift_px=2,
                rng=np.random.default_rng(args.seed),
            )  # fmt: skip
            p_at_cut = result.p_values[: len(tested)]
            kept = p_at_cut <= args.alpha + 1e-12
            kept_hits = int((kept & is_hit[: len(tested)]).sum())
            kept_precision = kept_hits / int(kept.sum()) if kept.any() else 0.0
            kept_recall = kept_hits / len(mine) if len(mine) else 0.0
            kept_f1 = (
                2 * kept_precision * kept_recall / (kept_precision + kept_recall)
                if kept_precision + kept_recall
                else 0.0
            )
            row["with_p_value_filter"] = {
                "alpha": args.alpha,
                "n_picks": int(kept.sum()),
                "n_hits": kept_hits,
                "precision": kept_precision,
                "recall": kept_recall,
                "f1": kept_f1,
                "picks_tested": len(tested),
            }
            row["significance"] = {
                "n_tested": len(positions),
                "n_at_cut_off": len(tested),
                "n_below_cut_off": len(below),
                "seconds": time.perf_counter() - t1,
                "p_true_picks": result.p_values[is_hit].tolist(),
                "p_false_picks": result.p_values[~is_hit].tolist(),
                "median_p_true": float(np.median(result.p_values[is_hit]))
                if is_hit.any()
                else None,
                "median_p_false": (
                    float(np.median(result.p_values[~is_hit])) if (~is_hit).any() else None
                ),
            }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "significance"}), flush=True)
        shutil.copy(job_dir / "job.json", args.results / f"job_{name}.json")

    noise_rows = []
    if args.noise_check:
        # the same tomogram with random Fourier phases: its power spectrum (noise colour, CTF,
        # missing wedge) without any particle
        rng = np.random.default_rng(args.seed + 1)
        spectrum = np.fft.rfftn(sim.tomogram.astype(np.float64))
        phases = np.fft.rfftn(rng.normal(size=shape))
        phases /= np.maximum(np.abs(phases), 1e-30)
        null_tomogram = np.fft.irfftn(np.abs(spectrum) * phases, s=shape, axes=(0, 1, 2))
        null_tomogram = ((null_tomogram - null_tomogram.mean()) / null_tomogram.std()).astype(
            np.float32
        )
        template = make_template(
            names[0], voxel_size_a=args.voxel_size, tilt_range_deg=tuple(args.tilt_range),
            defocus_um=args.defocus_um,
        )  # fmt: skip
        job = run_search(
            null_tomogram, template, rotations, args.work_dir / "job_noise",
            voxel_size_a=args.voxel_size, overwrite=True,
        )  # fmt: skip
        import mrcfile

        with mrcfile.open(args.work_dir / "job_noise" / "scores.mrc") as handle:
            scores = np.array(handle.data)
        radius = float(template.parameters["mask_radius_px"])
        for f in (1.0, 10.0, 100.0, 1000.0):
            threshold = false_alarm_threshold(
                job["statistics"]["std"], job["n_positions"], n_rot, f
            )
            found = extract_peaks(scores, threshold=threshold, exclusion_radius_px=radius)
            noise_rows.append({"false_alarms": f, "threshold": threshold, "n_peaks": len(found)})
        print(json.dumps(noise_rows), flush=True)

    total_s = time.perf_counter() - start
    results = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "n_rotations": n_rot,
        "simulation": sim.parameters,
        "simulate_s": simulate_s,
        "per_structure": rows,
        "curves": curves,
        "noise_tomogram": noise_rows,
        "total_s": total_s,
        "machine": machine_description(),
        "load_average": os.getloadavg(),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.results / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _write_markdown(args.results / "results.md", results)
    _plot(args.results / "roc.png", curves, rows)
    print(f"done in {total_s:.0f} s -> {args.results}")


def _write_markdown(path: Path, results: dict) -> None:
    args = results["arguments"]
    lines = [
        "# Template matching in a crowded simulated tomogram",
        "",
        f"`{results['command']}`",
        "",
        f"Tomogram {tuple(args['shape'])} voxels at {args['voxel_size']} Å, "
        f"{args['n_particles']} particles of {args['structures']}, SNR {args['snr']}, "
        f"tilt {tuple(args['tilt_range'])}°, defocus {args['defocus_um']} µm (tilt-series "
        f"imaging). Search: {results['n_rotations']} rotations (step {args['angular_step']}°), "
        f"cut-off for F = {args['false_alarms']} expected false alarms; a hit lies within half the "
        f"mask radius of a true particle of the template's structure. {args['threads']} thread(s); "
        f"machine: {results['machine']['cpu']} ({results['machine']['cpu_count']} cores), load "
        f"average {', '.join(f'{v:.2f}' for v in results['load_average'])}.",
        "",
        "| structure | box | true | picks | hits | false: same structure off-centre / other "
        "structures / background | precision | recall | F1 | AP | cut-off | search s | "
        "s / 1000 rotations | median p (true) | median p (false) | with p ≤ α: picks / P / R / F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["per_structure"]:
        sig = row.get("significance", {})
        filt = row.get("with_p_value_filter")
        kept = (
            "–"
            if filt is None
            else f"{filt['n_picks']} / {filt['precision']:.2f} / {filt['recall']:.2f} / "
            f"{filt['f1']:.2f}"
        )

        def fmt(value):
            return "–" if value is None else f"{value:.3g}"

        lines.append(
            f"| {row['structure']} | {row['box_size']} | {row['n_true']} | {row['n_picks']} | "
            f"{row['n_hits']} | {row['n_false_on_same_structure']} / "
            f"{row['n_false_on_other_structures']} / {row['n_false_on_background']} | "
            f"{row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} | "
            f"{row['average_precision']:.2f} | {row['threshold']:.3f} | {row['search_s']:.0f} | "
            f"{row['s_per_1000_rotations']:.0f} | {fmt(sig.get('median_p_true'))} | "
            f"{fmt(sig.get('median_p_false'))} | {kept} |"
        )
    if results["noise_tomogram"]:
        lines += [
            "",
            "Particle-free tomogram (the tomogram with random Fourier phases: same power spectrum, "
            "first structure as template): chance peaks above the cut-off.",
            "",
            "| F (expected) | cut-off | peaks found |",
            "|---|---|---|",
        ]
        for row in results["noise_tomogram"]:
            lines.append(f"| {row['false_alarms']:g} | {row['threshold']:.3f} | {row['n_peaks']} |")
    lines += [
        "",
        f"Total {results['total_s']:.0f} s (simulation {results['simulate_s']:.0f} s).",
        "",
    ]
    path.write_text("\n".join(lines))


def _plot(path: Path, curves: dict, rows: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, curve in curves.items():
        ax.plot(curve["false_picks"], curve["recall"], label=name)
    for row in rows:
        ax.plot(row["n_picks"] - row["n_hits"], row["recall"], "k.", ms=5)
    ax.set_xlabel("false picks (threshold falling)")
    ax.set_ylabel("recall")
    ax.set_title("Template matching: recall vs false picks (dots: F = 1 cut-off)")
    ax.legend(fontsize=8)
    ax.set_xscale("symlog", linthresh=1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
