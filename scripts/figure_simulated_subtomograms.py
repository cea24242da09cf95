"""Figure: central slices of a clean vs simulated subtomogram at each SNR and tilt range.

Writes ``docs/figures/simulated_subtomograms.png`` (referenced from ``docs/simulation.md``):
rows are the x-y (z = n // 2) and x-z (y = n // 2) central slices at ±60° and ±40°; columns
are the clean density, the noise-free imaged volume (CTF + missing wedge), then the z-scored
subtomogram at SNR 0.1, 0.03, 0.01, 0.003, 0.001. Same particle and pose everywhere.

    python scripts/figure_simulated_subtomograms.py [--structure 4v4r] [--mode tilt-series]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cryomine.simulate import (
    DEFAULT_VOXEL_SIZE_A,
    load_structure_densities,
    simulate_subtomograms,
)

SNRS = (0.1, 0.03, 0.01, 0.003, 0.001)
TILT_RANGES = (60.0, 40.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default="4v4r", help="structure name or map/model path")
    parser.add_argument("--mode", default="tilt-series", choices=("tilt-series", "fourier"))
    parser.add_argument("--box", type=int, default=24, help="box edge, voxels")
    parser.add_argument("--voxel-size", type=float, default=DEFAULT_VOXEL_SIZE_A, help="Å")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--output", type=Path, default=Path("docs/figures/simulated_subtomograms.png")
    )
    args = parser.parse_args()

    densities = load_structure_densities(
        [args.structure], voxel_size_a=args.voxel_size, box_size=args.box
    )
    n = args.box
    columns = ["clean", "noise-free\n(CTF + wedge)"] + [f"SNR {snr:g}" for snr in SNRS]
    fig, axes = plt.subplots(4, len(columns), figsize=(1.6 * len(columns), 1.75 * 4), squeeze=False)
    for t, tilt in enumerate(TILT_RANGES):
        volumes = []
        for i, snr in enumerate(SNRS):
            simulated = simulate_subtomograms(
                densities,
                n_per_class=1,
                snr=snr,
                tilt_range_deg=(-tilt, tilt),
                box_size=n,
                voxel_size_a=args.voxel_size,
                mode=args.mode,
                seed=args.seed,
            )
            batch = next(simulated.iter_batches(keep_noise_free=True, keep_densities=True))
            if i == 0:
                volumes += [batch.densities[0], batch.noise_free[0]]  # type: ignore[index]
            volumes.append(batch.subtomograms[0])
        for c, volume in enumerate(volumes):
            for r, (plane, label) in enumerate(
                ((volume[n // 2], "x-y"), (volume[:, n // 2], "x-z"))
            ):
                ax = axes[2 * t + r, c]
                ax.imshow(plane, cmap="gray", origin="lower")
                ax.set_xticks([])
                ax.set_yticks([])
                if 2 * t + r == 0:
                    ax.set_title(columns[c], fontsize=8)
                if c == 0:
                    ax.set_ylabel(f"±{tilt:g}°, {label}", fontsize=8)
    fig.suptitle(
        f"{args.structure}: simulated subtomograms ({args.mode}, {n}³ at {args.voxel_size:g} Å, "
        "protein bright)",
        fontsize=9,
    )
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=130)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
