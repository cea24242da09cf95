"""Split-test probe: which PCA dimensions tell pure classes from classes with a minority mixed in.

Run: ``python benchmarks/results/stages/experiments/split_dimensions.py SNR`` (log:
``split_dimensions.log``). Four tuning structures × 100 at the SNR, pretrained-trunk features;
each test set is one structure alone or with 10 or 25 particles of another mixed in.
"""

import sys

import numpy as np
import torch

from cryomine.simulate import simulate_subtomograms
from cryomine.sorting._pretrain import pretrained_features
from cryomine.sorting._stages import split_test

torch.set_num_threads(1)
snr = float(sys.argv[1])
names = ["4v4r", "3j9i", "atp_synthase", "6v8o"]
sim = simulate_subtomograms(names, n_per_class=100, snr=snr, tilt_range_deg=(-60, 60),
                            voxel_size_a=16, mode="fourier", seed=2, device="cpu")  # fmt: skip
volumes = np.concatenate(list(sim.iter_subtomograms()))
truth = sim.table["cmTrueClass"].to_numpy() - 1
features = pretrained_features(volumes, device="cpu")
for dims in (2, 4, 8, 16):
    out = []
    for a in range(4):
        for b in range(4):
            for minority in (0, 10, 25):
                if a == b or (minority == 0 and b != (a + 1) % 4):
                    continue
                rows = [*np.flatnonzero(truth == a), *np.flatnonzero(truth == b)[:minority]]
                test = split_test(features[rows], np.zeros(len(rows), int), dimensions=dims)[0]
                name = f"{a}+{b}x{minority}" if minority else f"{a}"
                out.append(f"{name}:{1 if test['homogeneous'] else 2}")
    print(snr, dims, " ".join(out), flush=True)
