"""Cache the similarity maps of ``picker_f1.py``'s three tomograms for threshold experiments.

For every structure of each tomogram (same seeds, shape and imaging as ``picker_f1.py``) this
saves the similarity map of two targets: the embedding of its first true particle (``example``)
and the structure simulated noise-free at 32 orientations (``simulated``, what ``--reference
NAME`` does), with the true centres and the diameter (and every particle's centre and
structure, and the simulator's label volume), to ``OUT/SET.npz``.

    OMP_NUM_THREADS=1 python benchmarks/results/picker/experiments/similarity_maps.py \
        /work/shared/data/structures/maps /tmp/picker_maps
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from picker_f1 import (
    CROWD,
    STRIDE,
    TRAIN,
    TUNE,
    UNSEEN,
    _densities,
    simulate_benchmark_tomogram,
)

from cryomine.io import positions_zyx
from cryomine.picker import (
    cut_windows,
    embed_tomogram,
    embed_windows,
    load_picker,
    normalize_tomogram,
    similarity_map,
    simulate_reference_windows,
    target_embedding,
)


def main() -> None:
    maps_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    model = load_picker()
    window = model.config.window
    sets = {"tune": (TUNE, 100), "train": (TRAIN, 1), "unseen": (UNSEEN + CROWD, 2)}
    for label, (names, seed) in sets.items():
        densities = _densities(maps_dir, names)
        simulated = simulate_benchmark_tomogram(densities, seed)
        volume = normalize_tomogram(simulated.tomogram)
        embeddings = embed_tomogram(model, volume, stride=STRIDE)
        centres = positions_zyx(simulated.table)
        table_names = simulated.table["cmStructure"].to_numpy()
        radii = simulated.parameters["bounding_radii_px"]
        arrays: dict[str, np.ndarray] = {
            "shape": np.array(volume.shape),
            "all_centres": centres,
            "all_names": table_names.astype(str),
            "labels": simulated.labels.astype(np.int8),
            "label_names": np.array(
                [simulated.label_names[k] for k in sorted(simulated.label_names)]
            ),
            "label_values": np.array(sorted(simulated.label_names)),
        }
        for name in densities:
            members = centres[table_names == name]
            example = target_embedding(
                embed_windows(model, cut_windows(volume, members[:1], window))
            )
            windows, _ = simulate_reference_windows(
                maps_dir / f"{name}_10A.mrc.gz", window=window, voxel_size_a=10.0
            )
            reference = target_embedding(embed_windows(model, windows))
            arrays[f"{name}/example"] = similarity_map(embeddings, example).astype(np.float32)
            arrays[f"{name}/simulated"] = similarity_map(embeddings, reference).astype(np.float32)
            arrays[f"{name}/centres"] = members
            arrays[f"{name}/diameter_a"] = np.array(2.0 * radii[name] * 10.0)
            print(label, name, flush=True)
        np.savez_compressed(out / f"{label}.npz", **arrays)


if __name__ == "__main__":
    main()
