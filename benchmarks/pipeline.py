"""Benchmark: simulated crowded tomograms through `cryomine pipeline`, scored end to end.

Simulates tomograms with several structures plus membranes and gold as distractors, runs the whole
workflow (pick → extract → sort → average → embed → report) and scores picking (F1), sorting
(per-structure F1 after mapping classes to structures, the paper's Table 2/3 layout) and the class
averages (FSC 0.5 against the true maps), with the time of every step. Prints the command, the
machine and the numbers; writes JSON and Markdown next to each other.

    python benchmarks/pipeline.py --tomograms 2 --particles 60 --width 0.25 --out-dir /tmp/bench_pipeline
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from cryomine._runrecord import machine_description
from cryomine.cli import app
from cryomine.evaluate import class_average_fsc, evaluate_picking, evaluate_pipeline
from cryomine.io import read_particles
from cryomine.simulate import write_simulated_tomogram


def _run(args: list[str]) -> None:
    print("$ cryomine " + shlex.join(args), flush=True)
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise SystemExit(f"cryomine {args[0]} failed:\n{result.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--structures", default="4v4r,3j9i,4v94", help="comma-separated built-in structures")
    add("--tomograms", type=int, default=2, help="number of simulated tomograms")
    add("--shape", type=int, nargs=3, default=(64, 256, 256), help="tomogram shape z y x, voxels")
    add("--voxel-size", type=float, default=12.0, help="Å")
    add("--particles", type=int, default=60, help="particles per tomogram")
    add("--membranes", type=int, default=2)
    add("--gold", type=int, default=3)
    add("--snr", type=float, default=0.1)
    add("--diameter", type=float, default=200.0, help="picking diameter, Å")
    add("--width", type=float, default=0.25, help="YOPO width")
    add("--max-iter", type=int, default=10)
    add("--radius", type=float, default=80.0, help="hit radius, Å")
    add("--seed", type=int, default=0)
    add("--out-dir", type=Path, default=Path("/tmp/cryomine_bench_pipeline"))
    add("--results", type=Path, default=Path(__file__).parent / "results" / "pipeline")
    args = parser.parse_args()
    command = "python " + shlex.join(sys.argv)
    structures = args.structures.split(",")
    timings: dict[str, float] = {}
    tomograms = []
    start = time.perf_counter()
    for i in range(args.tomograms):
        directory = args.out_dir / f"sim_TS_{i:02d}"
        if not (directory / "truth.star").exists():
            write_simulated_tomogram(
                directory, structures, shape_zyx=tuple(args.shape), voxel_size_a=args.voxel_size,
                n_particles=args.particles, n_membranes=args.membranes, n_gold=args.gold, snr=args.snr,
                tomo_name=f"TS_{i:02d}", seed=args.seed + i,
            )  # fmt: skip
        tomogram = args.out_dir / f"TS_{i:02d}.mrc"
        if not tomogram.exists():
            tomogram.symlink_to((directory / "tomogram.mrc").resolve())
        tomograms.append((tomogram, directory))
    timings["simulate"] = time.perf_counter() - start
    out = args.out_dir / "pipeline"
    start = time.perf_counter()
    _run(["pipeline", *[str(t) for t, _ in tomograms], "--particle-diameter", str(args.diameter),
          "--width", str(args.width), "--max-iter", str(args.max_iter), "--seed", str(args.seed),
          "--device", "auto", "-o", str(out)])  # fmt: skip
    timings["pipeline_total"] = time.perf_counter() - start
    for step in ("sort", "averages"):
        record = json.loads((out / step / "run.json").read_text())
        timings[step] = record["timings_s"]["total"]

    truth = read_particles_all([d / "truth.star" for _, d in tomograms])
    picks = read_particles_all(sorted((out / "picks").glob("*.star")))
    sorted_particles = read_particles(out / "sort" / "particles.star")
    picking = evaluate_picking(truth, picks, radius_a=args.radius)
    sorting = evaluate_pipeline(truth, sorted_particles, radius_a=args.radius)
    fsc = {c: {"structure": s, **class_average_fsc(out / "averages" / f"class_{int(c):03d}.mrc", s)}
           for c, s in sorting["class_to_structure"].items()
           if s in structures and (out / "averages" / f"class_{int(c):03d}.mrc").exists()}  # fmt: skip
    results = {"command": command, "machine": machine_description(), "arguments": {k: str(v) for k, v in vars(args).items()},
               "timings_s": timings, "picking": picking, "sorting": sorting, "class_average_fsc": fsc}  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "pipeline.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    lines = [
        "# Pipeline on simulated crowded tomograms", "", f"`{command}`", "",
        f"Machine: {results['machine']['cpu']} ({results['machine']['cpu_count']} CPUs, CUDA {results['machine']['cuda']}).", "",
        f"Picking (radius {args.radius:g} Å): precision {picking['overall']['precision']:.3f}, recall "
        f"{picking['overall']['recall']:.3f}, F1 {picking['overall']['f1']:.3f}", "",
        "| structure | picked recall | precision after sorting | recall after sorting | F1 after sorting |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in sorting["per_structure"].items():
        lines.append(f"| {name} | {picking['per_class'].get(name, {}).get('recall', 0):.3f} | {row['precision']:.3f} "
                     f"| {row['recall']:.3f} | {row['f1']:.3f} |")  # fmt: skip
    lines += ["", "| class | structure | FSC 0.5 vs true map (Å) |", "|---|---|---|"]
    lines += [f"| {c} | {v['structure']} | {v['resolution_a']:.1f} |" for c, v in fsc.items()]
    lines += ["", "| step | seconds |", "|---|---|"] + [
        f"| {k} | {v:.0f} |" for k, v in timings.items()
    ]
    (args.results / "pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def read_particles_all(paths: list[Path]):
    import pandas as pd

    return pd.concat([read_particles(p) for p in paths], ignore_index=True)


if __name__ == "__main__":
    main()
