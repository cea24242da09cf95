"""One DISCA sort (cryomine preset) on a cached set: python sort.py SET N SNR SEED [json kwargs].

kwargs go to DISCA.from_preset("cryomine", ...), e.g. '{"pretrained": null}' for random weights
or '{"pretrained": "/path/to/trunk"}'. Prints K and homogeneity per iteration and the answer.
"""

import json
import os
import sys
import time
import warnings

import torch
from sklearn.metrics import homogeneity_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../disca_selection/experiments"))
from data import get

from cryomine.sorting import DISCA

torch.set_num_threads(int(os.environ.get("NT", "1")))
warnings.simplefilter("ignore")
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
kw = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
voxel = float(os.environ.get("VOXEL", "16"))
v, t = get(name, n, snr, seed, voxel=voxel)
t0 = time.time()
m = DISCA.from_preset(
    "cryomine",
    k_range=(2, 10),
    max_iter=kw.pop("max_iter", 8),
    device="cpu",
    random_state=seed,
    voxel_size_a=voxel,
    **kw,
).fit(v)
per_it = [
    (e["n_clusters"], e["covariance_type"], round(e["ddbi"], 3), e.get("weight_change"))
    for e in m.history_
]
print("iterations", per_it)
print(
    f"RESULT {name} n={n} snr={snr} seed={seed} {sys.argv[5] if len(sys.argv) > 5 else ''}: "
    f"K={m.n_clusters_} hom={homogeneity_score(t, m.labels_):.3f} best_it={m.best_iteration_} "
    f"n_iter={m.n_iter_} wall={time.time() - t0:.0f}s",
    flush=True,
)
