"""Iteration-0 separability of random-YOPO features vs input low-pass and width."""

import sys
import time

import numpy as np
import torch
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.sorting._mixture import fit_pca
from cryomine.sorting._source import as_source
from cryomine.sorting._training import extract_features
from cryomine.sorting._yopo import YOPO

d = np.load(sys.argv[1])
vol, truth = d["v"], d["t"]
for width in [float(w) for w in sys.argv[2].split(",")]:
    for lp in sys.argv[3].split(","):
        lp_a = None if lp == "none" else float(lp)
        scores = []
        for seed in (0, 1):
            g = torch.Generator().manual_seed(seed)
            net = YOPO(width=width, init_generator=g).to(memory_format=torch.channels_last_3d)
            src = as_source(vol, lowpass_a=lp_a, voxel_size_a=16.0)
            t0 = time.time()
            f = extract_features(
                net, src, batch_size=64, device=torch.device("cpu"), mixed_precision=False
            )
            r = fit_pca(f, 16).transform(f)
            with threadpool_limits(1):
                h = [
                    homogeneity_score(
                        truth,
                        GaussianMixture(
                            5, covariance_type=c, reg_covar=1e-5, n_init=3, random_state=0
                        )
                        .fit(r)
                        .predict(r),
                    )
                    for c in ("full", "diag")
                ]
            scores.append(h)
        s = np.array(scores)
        print(
            f"width {width} lowpass {lp}: fit5 full {s[:, 0].round(3)} diag {s[:, 1].round(3)} ({time.time() - t0:.0f}s/feature pass)",
            flush=True,
        )
