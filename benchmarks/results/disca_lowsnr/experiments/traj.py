"""Per-iteration trajectory of DISCA on cached 5x200 data: K chosen, homogeneity, separability."""

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

import cryomine.sorting._disca as D
from cryomine.simulate import simulate_subtomograms

snr = float(sys.argv[1])
lr = float(sys.argv[2])
iters = int(sys.argv[3])
width = float(sys.argv[4])
n = int(sys.argv[5]) if len(sys.argv) > 5 else 200
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
orig = D.select_mixture


def patched(reduced, **kw):
    sel = orig(reduced, **kw)
    with threadpool_limits(1):
        out = {}
        for cov in ("full", "diag"):
            g = GaussianMixture(
                5, covariance_type=cov, reg_covar=1e-5, n_init=3, random_state=0
            ).fit(reduced)
            out[cov] = homogeneity_score(truth, g.predict(reduced))
        bics = {3: 0}
    kd = min(bics, key=bics.get)
    print(
        f"  K={sel.n_clusters} homog={homogeneity_score(truth, sel.labels):.3f} fit5 full={out['full']:.3f} diag={out['diag']:.3f} diagBIC K={kd}",
        flush=True,
    )
    return sel


D.select_mixture = patched
t0 = time.time()
m = D.DISCA(width=width, max_iter=iters, learning_rate=lr, random_state=0, voxel_size_a=16.0)
m.fit(
    vol,
    callback=lambda e: print(
        f"it {e['iteration']} K={e['n_clusters']} ddbi={e['ddbi']:.3f} ch={e['label_change']} fc={e['feature_change']} t={time.time() - t0:.0f}s",
        flush=True,
    ),
)
print(
    "final K",
    m.n_clusters_,
    "homog",
    homogeneity_score(truth, m.labels_),
    "best it",
    m.best_iteration_,
    "time",
    time.time() - t0,
)
