"""Cache simulated sets: name -> (volumes, truth)."""

from pathlib import Path

import numpy as np

CACHE = Path("/tmp/cryomine_exp_cache")
CACHE.mkdir(exist_ok=True)
SETS = {
    "tune3": ("4v4r", "3j9i", "1bxn"),
    "tune5": ("6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"),
    "tune3b": ("4v4r", "3j9i", "atp_synthase"),  # held out of YOPO pretraining
    "val3": ("4v7r", "4cr2", "1qvr"),
    "val5": ("4v7r", "4cr2", "1qvr", "3cf3", "5gjv"),
}


def get(name, n, snr, seed=0, voxel=16.0, mode="fourier"):
    f = CACHE / f"{name}_{n}_{snr}_{seed}_{voxel}_{mode}.npz"
    if f.exists():
        d = np.load(f)
        return d["v"], d["t"]
    from cryomine.simulate import simulate_subtomograms

    sim = simulate_subtomograms(
        list(SETS[name]), n_per_class=n, snr=snr, mode=mode, seed=seed, voxel_size_a=voxel
    )
    v = np.concatenate(list(sim.iter_subtomograms())).astype(np.float32)
    t = sim.table["cmTrueClass"].to_numpy() - 1
    np.savez(f, v=v, t=t)
    return v, t


TUNING = ("tune3", "tune5", "tune3b")


def tuning_cell(argv):
    """``SET PER_CLASS SNR SEED`` from the command line, refusing the validation sets."""
    name, per_class, snr, seed = argv[1], int(argv[2]), float(argv[3]), int(argv[4])
    if name not in TUNING:
        raise SystemExit(f"{name}: tuning sets only ({', '.join(TUNING)})")
    return name, per_class, snr, seed


def first_per_class(truth, n):
    """Sorted indices of the first ``n`` particles of every class in ``truth`` (nested in ``n``)."""
    n_classes = int(truth.max()) + 1
    return np.sort(np.concatenate([np.flatnonzero(truth == c)[:n] for c in range(n_classes)]))
