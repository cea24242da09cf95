"""Benchmark: the clustering workflow (``picker cluster`` → ``picker locate``) on picker_f1's tomograms.

The three crowded 10 Å tomograms of ``picker_f1.py`` (same seeds and imaging: ``tune``, ``train``
of training structures, ``unseen`` with the six unseen proteins) are embedded once with the
shipped model (or ``--model``; stride 4) and clustered two ways, as the commands do:

- ``random``: a seeded random sample of ``--sample`` cells whose window lies in the tomogram;
- ``candidates``: the cells of DoG picks (``cryomine pick`` defaults, ``--dog-diameter``).

Each cluster's medoid is located (automatic threshold per target, exclusive assignment,
``--particle-diameter`` for the exclusion distance). Clusters are unnamed, so each structure is
scored against the cluster whose picks match it best (F1, hits within half the structure's
radius, one-to-one): that is the F1 a user gets who recognises the right cluster, an upper bound
on what the workflow gives without that knowledge. The settings (``leaf`` selection, minimum
cluster sizes) were chosen on the ``tune`` tomogram only.

    OMP_NUM_THREADS=1 python benchmarks/picker_cluster.py /work/shared/data/structures/maps \
        --out benchmarks/results/picker
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from picker_f1 import (
    CROWD,
    STRIDE,
    TRAIN,
    TUNE,
    UNSEEN,
    _densities,
    _scores,
    simulate_benchmark_tomogram,
)

from cryomine._runrecord import machine_description
from cryomine.io import positions_zyx
from cryomine.picker import (
    cells_at,
    cluster_embeddings,
    embed_tomogram,
    inner_cells,
    load_picker,
    locate_targets,
    normalize_tomogram,
)
from cryomine.picking import pick_particles


def _best_cluster_f1(truth: np.ndarray, located: list, radius_px: float) -> tuple[float, int]:
    """Best F1 over the clusters' picks and that cluster (-1 when no cluster hits)."""
    best, which = 0.0, -1
    for c, picks in enumerate(located):
        f1 = _scores(truth, picks.positions_zyx, radius_px)["f1"]
        if f1 > best:
            best, which = f1, c
    return best, which


def run_tomogram(model: object, densities: dict, *, seed: int, args: argparse.Namespace) -> dict:
    simulated = simulate_benchmark_tomogram(densities, seed)
    volume = normalize_tomogram(simulated.tomogram)
    t0 = time.perf_counter()
    embeddings = embed_tomogram(model, volume, stride=STRIDE)  # type: ignore[arg-type]
    t_embed = time.perf_counter() - t0
    window = model.config.window  # type: ignore[attr-defined]
    cells = inner_cells(
        embeddings.shape[:3], stride=STRIDE, window=window, tomogram_shape=volume.shape
    )
    rng = np.random.default_rng(0)
    random_cells = cells[
        np.sort(rng.choice(len(cells), min(args.sample, len(cells)), replace=False))
    ]
    dog = pick_particles(
        simulated.tomogram, voxel_size_a=10.0, diameter_a=args.dog_diameter, contrast="dark"
    )
    samples = {
        "random": (random_cells, args.min_cluster_size),
        "candidates": (
            cells_at(dog.positions_zyx, cells, stride=STRIDE),
            args.candidate_min_cluster_size,
        ),
    }
    centres = positions_zyx(simulated.table)
    names = simulated.table["cmStructure"].to_numpy()
    radii = simulated.parameters["bounding_radii_px"]
    result: dict[str, object] = {"seed": seed, "embed_s": t_embed, "n_dog_picks": len(dog)}
    for label, (sample, min_size) in samples.items():
        t0 = time.perf_counter()
        clusters = cluster_embeddings(
            embeddings[tuple(sample.T)], min_cluster_size=min_size, seed=0, selection="leaf"
        )
        t_cluster = time.perf_counter() - t0
        t0 = time.perf_counter()
        located = locate_targets(
            embeddings,
            clusters.targets,
            stride=STRIDE,
            voxel_size_a=10.0,
            diameter_a=args.particle_diameter,
            tomogram_shape=volume.shape,
        )
        t_locate = time.perf_counter() - t0
        per_structure = {}
        for name in densities:
            f1, which = _best_cluster_f1(centres[names == name], located, 0.5 * radii[name])
            per_structure[name] = {"f1": f1, "cluster": which}
        result[label] = {
            "n_sampled": len(sample),
            "min_cluster_size": min_size,
            "n_clusters": clusters.n_clusters,
            "fraction_in_no_cluster": float(np.mean(clusters.labels < 0)),
            "picks_per_cluster": [len(p) for p in located],
            "cluster_s": t_cluster,
            "locate_s": t_locate,
            "per_structure": per_structure,
            "median_f1": float(np.median([v["f1"] for v in per_structure.values()])),
        }
        print(
            f"  {label}: {clusters.n_clusters} clusters, median best-cluster F1 "
            f"{result[label]['median_f1']:.3f}",  # type: ignore[index]
            file=sys.stderr,
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("maps_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/picker"))
    parser.add_argument("--sample", type=int, default=20000, help="random cells clustered")
    parser.add_argument("--min-cluster-size", type=int, default=50, help="random sample")
    parser.add_argument("--candidate-min-cluster-size", type=int, default=5)
    parser.add_argument("--dog-diameter", type=float, default=150.0, help="Å")
    parser.add_argument("--particle-diameter", type=float, default=150.0, help="locate, Å")
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_picker(args.model)
    results: dict[str, object] = {
        "command": " ".join(sys.argv),
        "machine": machine_description(),
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    sets = {"tune": (TUNE, 100), "train": (TRAIN, 1), "unseen": (UNSEEN + CROWD, 2)}
    for label, (names, seed) in sets.items():
        print(f"{label}: {', '.join(names)}", file=sys.stderr, flush=True)
        results[label] = run_tomogram(model, _densities(args.maps_dir, names), seed=seed, args=args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "picker_cluster.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# The clustering workflow (shipped picker): best-matching cluster per structure",
        "",
        f"Command: `{results['command']}`; machine: {results['machine']['cpu']}, "  # type: ignore[index]
        "torch threads 1. Tomograms of `picker_f1.py` (100 × 300 × 300 at 10 Å, SNR 0.1, ±60°). "
        "F1 of the cluster whose picks match the structure best (hits within half its radius).",
        "",
        "| set | sample | sampled cells | clusters | in no cluster | median F1 | cluster s | locate s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in sets:
        for how in ("random", "candidates"):
            r = results[label][how]  # type: ignore[index]
            lines.append(
                f"| {label} | {how} | {r['n_sampled']} | {r['n_clusters']} | "
                f"{r['fraction_in_no_cluster']:.2f} | {r['median_f1']:.3f} | "
                f"{r['cluster_s']:.0f} | {r['locate_s']:.0f} |"
            )
    lines += [
        "",
        "| set | structure | F1, random sample (cluster) | F1, DoG candidates (cluster) |",
    ]
    lines.append("|---|---|---|---|")
    for label in sets:
        random_f1 = results[label]["random"]["per_structure"]  # type: ignore[index]
        candidate_f1 = results[label]["candidates"]["per_structure"]  # type: ignore[index]
        for name in random_f1:
            a, b = random_f1[name], candidate_f1[name]
            lines.append(
                f"| {label} | {name} | {a['f1']:.3f} ({a['cluster']}) | {b['f1']:.3f} ({b['cluster']}) |"
            )
    (args.out / "picker_cluster.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
