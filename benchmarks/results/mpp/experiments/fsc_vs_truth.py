"""MPP class averages against the same particles averaged at their true orientations.

python fsc_vs_truth.py SET N SNR SEED: one MPP fit (defaults, from one pattern) on a simulated
set; for every class, the FSC 0.143 resolution of MPP's half maps and of half maps of the same
members and halves averaged with the true rotations and shifts (same wedge-weighted averaging).
Then the gold-standard check: the same members averaged again by ``average_class`` (what
``cryomine average`` runs: two halves refined independently from a reference-free start), against
the true orientations with *its* half split; and ``average_class`` started from MPP's orientations
(``initial_rotations``: no global search) with the same half split. Every FSC under the same soft
sphere mask.
"""

import os
import sys
import warnings

import numpy as np
import torch

from cryomine.averaging import (
    accumulate_aligned,
    average_class,
    fourier_shell_correlation,
    map_from_sums,
    resolution_at,
)
from cryomine.geometry import missing_wedge_mask, sphere_mask
from cryomine.io import rotations_from_table
from cryomine.simulate import simulate_subtomograms
from cryomine.sorting import MPP

SETS = {"tune3": ("4v4r", "3j9i", "1bxn"), "val3": ("4v7r", "4cr2", "1qvr")}
torch.set_num_threads(int(os.environ.get("NT", "2")))
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
voxel = 16.0
sim = simulate_subtomograms(list(SETS[name]), n_per_class=n, snr=snr, mode="fourier", seed=seed,
                            voxel_size_a=voxel)  # fmt: skip
volumes = np.concatenate(list(sim.iter_subtomograms())).astype(np.float32)
table = sim.table
truth = table["cmTrueClass"].to_numpy() - 1
true_rot = rotations_from_table(table)
true_shift = table[["cmTrueShiftZ", "cmTrueShiftY", "cmTrueShiftX"]].to_numpy()
warnings.simplefilter("ignore")
model = MPP(random_state=seed, device="cpu").fit(volumes)
size = volumes.shape[-1]
wedge = torch.as_tensor(missing_wedge_mask((size,) * 3, tilt_range_deg=(-60.0, 60.0)))
edge = max(1.0, size / 16)
mask = sphere_mask((size,) * 3, size / 2 - 1 - edge, soft_edge_px=edge)
data = torch.as_tensor((volumes - volumes.mean(axis=(1, 2, 3), keepdims=True))
                       / volumes.std(axis=(1, 2, 3), keepdims=True))  # fmt: skip
print(f"{name} x {n}, SNR {snr}, seed {seed}: K = {model.n_clusters_}")
for k in range(model.n_clusters_):
    members = np.flatnonzero(model.labels_ == k)
    major = np.bincount(truth[members]).argmax()
    found = fourier_shell_correlation(model.half_maps_[k, 0] * mask, model.half_maps_[k, 1] * mask,
                                      voxel_size_a=voxel)  # fmt: skip
    halves = []
    for h in (1, 2):
        rows = members[model.half_[members] == h]
        num, w = accumulate_aligned(data[rows], true_rot[rows], true_shift[rows], wedge)
        halves.append(map_from_sums(num, w, wiener_constant=1.0).numpy() * mask)
    true = fourier_shell_correlation(halves[0], halves[1], voxel_size_a=voxel)
    r_found, r_true = resolution_at(*found), resolution_at(*true)
    print(
        f"class {k + 1} ({SETS[name][major]}, {members.size} members): MPP {r_found:.1f} Å, "
        f"true orientations {r_true:.1f} Å, ratio {r_found / r_true:.2f}"
    )
    gold = average_class(volumes[members], voxel_size_a=voxel, seed=seed)
    true_halves = []
    for h in (1, 2):
        rows = members[gold.half == h]
        num, w = accumulate_aligned(data[rows], true_rot[rows], true_shift[rows], wedge)
        true_halves.append(map_from_sums(num, w, wiener_constant=1.0).numpy() * mask)
    r_gold = resolution_at(*fourier_shell_correlation(
        gold.half_maps[0] * mask, gold.half_maps[1] * mask, voxel_size_a=voxel))  # fmt: skip
    r_gold_true = resolution_at(*fourier_shell_correlation(*true_halves, voxel_size_a=voxel))
    print(
        f"  gold-standard (average_class on MPP's members) {r_gold:.1f} Å, true orientations "
        f"with its halves {r_gold_true:.1f} Å, ratio {r_gold / r_gold_true:.2f}"
    )
    primed = average_class(volumes[members], voxel_size_a=voxel, seed=seed,
                           initial_rotations=model.rotations_[members],
                           initial_shifts_zyx=model.shifts_zyx_[members])  # fmt: skip
    r_primed = resolution_at(*fourier_shell_correlation(
        primed.half_maps[0] * mask, primed.half_maps[1] * mask, voxel_size_a=voxel))  # fmt: skip
    print(
        f"  gold-standard from MPP's orientations (no global search) {r_primed:.1f} Å, "
        f"ratio {r_primed / r_gold_true:.2f}"
    )
