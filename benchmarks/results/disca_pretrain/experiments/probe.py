"""Iteration-0 features of a trunk on a cached set: K by DISCA's model choice, homogeneity.

python probe.py TRUNK SET N SNR SEED   (TRUNK: a pretrained bundle, a pretraining checkpoint
directory, or "random"). Prints, for the trunk's own BatchNorm statistics ("as-is") and for
statistics re-estimated on the set ("recal"): K found and homogeneity by the cryomine preset's
select_mixture on 16 PCA components, and homogeneity of k-means at the true K.
"""

import os
import sys
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import homogeneity_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../disca_selection/experiments"))
from data import get

from cryomine.sorting._mixture import COVARIANCE_TYPES, fit_pca, select_mixture
from cryomine.sorting._persist import read_bundle
from cryomine.sorting._source import SubtomogramSource, lowpass_fraction
from cryomine.sorting._training import extract_features, recalibrate_batchnorm
from cryomine.sorting._yopo import YOPO

torch.set_num_threads(int(os.environ.get("NT", "1")))
warnings.simplefilter("ignore")
path, name, n, snr, seed = (
    sys.argv[1],
    sys.argv[2],
    int(sys.argv[3]),
    float(sys.argv[4]),
    int(sys.argv[5]),
)
voxel = float(os.environ.get("VOXEL", "16"))
v, t = get(name, n, snr, seed, voxel=voxel)
trunk = YOPO(width=0.25, init_generator=torch.Generator().manual_seed(seed))
if path != "random":
    _, tensors, _ = read_bundle(path)
    trunk.load_state_dict(tensors["trunk"])
trunk.eval()
source = SubtomogramSource(v, lowpass_fraction=lowpass_fraction("auto", voxel))
k = int(t.max()) + 1
out = []
for label in ("as-is", "recal"):
    if label == "recal":
        recalibrate_batchnorm(trunk, source, batch_size=32, device=torch.device("cpu"))
    f = extract_features(trunk, source, batch_size=32, device=torch.device("cpu"))
    pca = fit_pca(f, 16)
    r = pca.transform(f)
    sel = select_mixture(
        r,
        k_candidates=range(2, 11),
        rng=np.random.default_rng(seed),
        covariance_types=COVARIANCE_TYPES,
        n_init=3,
    )
    km = KMeans(k, n_init=10, random_state=seed).fit_predict(r)
    out.append(
        f"{label}: K={sel.n_clusters} ({sel.covariance_type}) hom={homogeneity_score(t, sel.labels):.3f}"
        f" kmeans@{k}={homogeneity_score(t, km):.3f}"
    )
print(
    f"PROBE {os.path.basename(path.rstrip('/'))} {name} n={n} snr={snr} seed={seed}: "
    + " | ".join(out),
    flush=True,
)
