"""Iteration-0 K selection by BIC with full / tied / diagonal covariances (16 PCA)."""

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.simulate import simulate_subtomograms
from cryomine.sorting._mixture import fit_pca
from cryomine.sorting._source import as_source
from cryomine.sorting._training import extract_features
from cryomine.sorting._yopo import YOPO

snr = float(sys.argv[1])
n = int(sys.argv[2])
width = float(sys.argv[3])
cache = Path(f"/tmp/exp/data_{snr}_{n}.npz")
if not cache.exists():
    s = simulate_subtomograms(
        ["6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"],
        n_per_class=n,
        snr=snr,
        mode="tilt-series",
        tilt_range_deg=(-60, 60),
        seed=0,
        voxel_size_a=16.0,
    )
    np.savez(
        cache, v=np.concatenate(list(s.iter_subtomograms())), t=s.table["cmTrueClass"].to_numpy()
    )
d = np.load(cache)
vol, truth = d["v"], d["t"]
for sub in sorted({min(n, m) for m in (60, 100, 200, 400)}):
    idx = np.concatenate([np.flatnonzero(truth == k)[:sub] for k in np.unique(truth)])
    net = YOPO(width=width, init_generator=torch.Generator().manual_seed(0)).to(
        memory_format=torch.channels_last_3d
    )
    f = extract_features(
        net,
        as_source(vol[idx], lowpass_a="auto"),
        batch_size=64,
        device=torch.device("cpu"),
        mixed_precision=False,
    )
    t = truth[idx]
    for dim in (16, 8):
        r = fit_pca(f, dim).transform(f)
        out = []
        with threadpool_limits(1):
            for cov in ("full", "tied", "diag"):
                best = None
                for k in range(2, 21):
                    g = GaussianMixture(
                        k, covariance_type=cov, reg_covar=1e-5, random_state=0, n_init=2
                    ).fit(r)
                    w_min = g.weights_.min() * len(r)
                    if cov == "full" and w_min < dim + 1:
                        continue
                    b = g.bic(r)
                    if best is None or b < best[0]:
                        best = (b, k, homogeneity_score(t, g.predict(r)))
                out.append(f"{cov}: K={best[1]} h={best[2]:.3f}")
        print(f"SNR {snr} N={len(idx)} PCA {dim}: " + "; ".join(out), flush=True)
