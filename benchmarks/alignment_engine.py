"""Alignment engine against the alignment it replaced: cost per subtomogram–reference pair and
median orientation error on simulated subtomograms, measured side by side in one run.

The old path is the per-reference alignment of the template-matching baseline before the engine
(``align_global`` on the 30° grid, then ``align_local`` at 15° and 7.5°, one inverse FFT per
rotation and particle), loaded from ``git show OLD_COMMIT:src/cryomine/averaging/_align.py``.
The new path is ``cryomine.averaging.align_to_references`` with the template-matching defaults
(30° grid, refined to 7.5°, shifts ≤ 3 voxels, band to Nyquist). Both score all particles
against all references; the time per pair is the median over repeats (the old path: over its
per-reference calls; the engine: over ``--repeats`` calls of all pairs). The orientation error
is the angle between the found and the true rotation for each particle's own structure.
Writes ``benchmarks/results/alignment_engine.json`` and a Markdown table beside it.

    python benchmarks/alignment_engine.py --per-class 10 --snr 0.1 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from cryomine._runrecord import machine_description
from cryomine.averaging import align_to_references
from cryomine.geometry import (
    missing_wedge_mask,
    rotation_angles_deg,
    rotations_from_relion_euler,
    uniform_rotation_grid,
)
from cryomine.simulate import simulate_subtomograms

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "43b4e1a"  # the last commit before the engine


def load_old_align(commit: str) -> ModuleType:
    """The old ``_align.py`` of ``commit`` as a module (it only imports public geometry)."""
    text = subprocess.run(
        ["git", "show", f"{commit}:src/cryomine/averaging/_align.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "old_align.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_align", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["old_align"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def old_path(old: ModuleType, volumes: np.ndarray, references: np.ndarray, args) -> dict:
    """Scores, quaternions (N, R, 4) and seconds per pair of each per-reference call."""
    device = torch.device(args.device)
    size = volumes.shape[-1]
    wedge = torch.from_numpy(
        missing_wedge_mask((size,) * 3, tilt_range_deg=(-args.tilt, args.tilt))
    )
    wedge, ones = wedge.to(device), torch.ones((size,) * 3, device=device)
    particles = torch.from_numpy(volumes).to(device)
    grid = uniform_rotation_grid(30.0)
    options = {"max_frequency": 0.5, "max_shift_px": 3.0}
    old.align_global(
        particles[:1], torch.from_numpy(references[0]).to(device), ones, wedge, grid[:10], **options
    )  # warm-up
    n = len(volumes)
    scores, quats, per_pair = np.zeros((n, len(references))), np.zeros((n, len(references), 4)), []
    for r, volume in enumerate(references):
        reference = torch.from_numpy(volume).to(device)
        start = time.perf_counter()
        found = old.align_global(particles, reference, ones, wedge, grid, **options)
        for step in (15.0, 7.5):
            offsets = old.local_rotation_offsets(step, 2.0 * step)
            found = old.align_local(
                particles, reference, ones, wedge, found.rotations, offsets, **options
            )
        if device.type == "cuda":
            torch.cuda.synchronize()
        per_pair.append((time.perf_counter() - start) / n)
        scores[:, r], quats[:, r] = found.scores, found.rotations.as_quat()
    return {"scores": scores, "quaternions": quats, "seconds_per_pair": per_pair}


def engine_path(volumes: np.ndarray, references: np.ndarray, args) -> dict:
    per_pair, found = [], None
    align_to_references(volumes[:2], references[:1], device=args.device)  # warm-up
    for _ in range(args.repeats):
        start = time.perf_counter()
        found = align_to_references(
            volumes, references, angular_step_deg=30.0, refine_to_deg=7.5, max_shift_px=3.0,
            max_frequency=0.5, tilt_range_deg=(-args.tilt, args.tilt), device=args.device,
        )  # fmt: skip
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        per_pair.append((time.perf_counter() - start) / (len(volumes) * len(references)))
    assert found is not None
    return {"scores": found.scores, "quaternions": found.quaternions, "seconds_per_pair": per_pair,
            "n_rotations_scored": found.n_rotations_scored}  # fmt: skip


def summarise(result: dict, truth_rotations, truth_class: np.ndarray) -> dict[str, Any]:
    from scipy.spatial.transform import Rotation

    n = len(result["scores"])
    truth_rotations, truth_class = truth_rotations[:n], truth_class[:n]
    rows = np.arange(n)
    found = Rotation.from_quat(result["quaternions"][rows, truth_class])
    errors = rotation_angles_deg(found * truth_rotations.inv())
    return {
        "ms_per_pair_median": 1e3 * statistics.median(result["seconds_per_pair"]),
        "ms_per_pair_all": [1e3 * s for s in result["seconds_per_pair"]],
        "median_orientation_error_deg": float(np.median(errors)),
        "fraction_within_15_deg": float(np.mean(errors < 15.0)),
        "orientation_errors_deg": [round(float(e), 2) for e in errors],
        "classification_accuracy": float(np.mean(result["scores"].argmax(axis=1) == truth_class)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--structures", default="6v8o,3j9i,4v4r", help="comma-separated structure names")
    add("--per-class", type=int, default=10, help="subtomograms per structure")
    add("--snr", type=float, default=0.1)
    add("--tilt", type=float, default=60.0, help="tilt range ±DEG (tilt axis y)")
    add("--box", type=int, default=24, help="box edge, voxels")
    add("--voxel-size", type=float, default=16.0, help="voxel size, Å")
    add("--repeats", type=int, default=3, help="timed engine calls")
    add("--threads", default="2,1", help="comma-separated torch CPU thread counts to time")
    add(
        "--old-timing-particles",
        type=int,
        default=3,
        help="old path at the second and later thread counts: time only this many particles",
    )
    add("--device", default="cpu")
    add("--old-commit", default=OLD_COMMIT, help="commit whose _align.py is the old path")
    add("--skip-old", action="store_true", help="engine only (e.g. on a GPU machine)")
    add("--out", type=Path, default=ROOT / "benchmarks" / "results" / "alignment_engine")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    command = "python " + shlex.join(["benchmarks/alignment_engine.py", *sys.argv[1:]])
    machine = {**machine_description(), "load_average_1min": os.getloadavg()[0]}
    print(command)
    print(f"machine: {machine['cpu']}, {machine['cpu_count']} CPUs, torch threads {threads}, "
          f"device {args.device}, GPU {machine['gpu']}, load {machine['load_average_1min']:.1f}")  # fmt: skip
    sim = simulate_subtomograms(
        args.structures.split(","), n_per_class=args.per_class, snr=args.snr,
        tilt_range_deg=(-args.tilt, args.tilt), box_size=args.box, voxel_size_a=args.voxel_size,
        seed=0, device="cpu",
    )  # fmt: skip
    volumes = np.concatenate(list(sim.iter_subtomograms()))
    references = np.stack(list(sim.references_ctf.values()))
    angles = sim.table[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    truth_rotations = rotations_from_relion_euler(angles)
    truth_class = sim.table["cmTrueClass"].to_numpy() - 1
    rows: dict[str, dict[str, Any]] = {}
    old = None if args.skip_old else load_old_align(args.old_commit)
    for count in threads:
        torch.set_num_threads(count)
        name = f"engine, {count} thread{'s' if count > 1 else ''}"
        rows[name] = summarise(engine_path(volumes, references, args), truth_rotations, truth_class)
        rows[name]["threads"] = count
        print(f"{name}:", {k: v for k, v in rows[name].items() if k != "orientation_errors_deg"})
        if old is not None:
            subset = volumes if count == threads[0] else volumes[: args.old_timing_particles]
            name = f"old, {count} thread{'s' if count > 1 else ''}"
            rows[name] = summarise(
                old_path(old, subset, references, args), truth_rotations, truth_class
            )
            rows[name]["threads"] = count
            rows[name]["n_subtomograms"] = len(subset)
            print(
                f"{name}:", {k: v for k, v in rows[name].items() if k != "orientation_errors_deg"}
            )
    speed_up = (
        {
            count: rows[f"old, {count} thread{'s' if count > 1 else ''}"]["ms_per_pair_median"]
            / rows[f"engine, {count} thread{'s' if count > 1 else ''}"]["ms_per_pair_median"]
            for count in threads
        }
        if old is not None
        else None
    )
    payload = {
        "command": command, "machine": machine, "arguments": {k: str(v) for k, v in vars(args).items()},
        "n_subtomograms": len(volumes), "n_references": len(references),
        "pairs": len(volumes) * len(references), "speed_up": speed_up, "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Alignment engine vs the old alignment path", "",
        f"`{command}`", "",
        f"Machine: {machine['cpu']} ({machine['cpu_count']} CPUs, device {args.device}, GPU {machine['gpu']}, 1-min load average "
        f"{machine['load_average_1min']:.1f}). Data: {args.structures}, {args.per_class} per "
        f"structure, {args.box}³ at {args.voxel_size:g} Å, SNR {args.snr:g}, ±{args.tilt:g}°; "
        f"{len(volumes)} × {len(references)} subtomogram–reference pairs. Search: 30° grid → "
        "7.5°, shifts ≤ 3 voxels, band to Nyquist.", "",
        "| path | subtomograms | ms per pair (median) | all repeats, ms | median orientation "
        "error, ° | within 15° | classification accuracy |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in rows.items():
        repeats = ", ".join(f"{v:.1f}" for v in row["ms_per_pair_all"])
        lines.append(
            f"| {name} | {row.get('n_subtomograms', len(volumes))} | "
            f"{row['ms_per_pair_median']:.1f} | {repeats} | "
            f"{row['median_orientation_error_deg']:.2f} | {row['fraction_within_15_deg']:.2f} | "
            f"{row['classification_accuracy']:.2f} |"
        )
    if speed_up is not None:
        ratios = ", ".join(
            f"{v:.0f}× at {k} thread{'s' if k > 1 else ''}" for k, v in speed_up.items()
        )
        lines += ["", f"Speed-up per pair (old / engine, same run): {ratios}. Rows with fewer "
                  "subtomograms time the old path on a subset only (their errors and accuracy "
                  "cover that subset)."]  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
