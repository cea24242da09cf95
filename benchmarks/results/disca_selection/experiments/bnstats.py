"""Iteration-0 features: BatchNorm at its initial identity statistics vs recalibrated on the data."""

import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from data import get
from sklearn.cluster import KMeans
from sklearn.metrics import homogeneity_score

from cryomine.sorting._mixture import COVARIANCE_TYPES, fit_pca, select_mixture
from cryomine.sorting._source import as_source
from cryomine.sorting._training import _to_device, extract_features
from cryomine.sorting._yopo import YOPO

torch.set_num_threads(int(os.environ.get("NT", "1")))
warnings.filterwarnings("ignore")
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
v, t = get(name, n, snr, seed)
K = t.max() + 1
src = as_source(v, lowpass_a="auto")
trunk = YOPO(width=0.25, init_generator=torch.Generator().manual_seed(seed)).to(
    memory_format=torch.channels_last_3d
)


def report(tag, F):
    R = fit_pca(F, 16).transform(F)
    sel = select_mixture(
        R,
        k_candidates=range(1, 11),
        rng=np.random.default_rng(seed),
        covariance_types=COVARIANCE_TYPES,
        n_init=3,
    )
    km = KMeans(K, n_init=10, random_state=0).fit_predict(R)
    print(
        f"{name} n={n} snr={snr} seed={seed} {tag}: BIC {sel.covariance_type} K={sel.n_clusters} hom={homogeneity_score(t, sel.labels):.3f}  kmeans@K hom={homogeneity_score(t, km):.3f}",
        flush=True,
    )


report("identity-BN", extract_features(trunk, src, batch_size=64, device=torch.device("cpu")))
for m in trunk.modules():
    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
        m.reset_running_stats()
        m.momentum = None
trunk.train()
trunk.dropout.rate = 0.0 if hasattr(trunk.dropout, "rate") else None
with torch.no_grad():
    for _idx, vol in src.batches(64):
        trunk.dropout.eval()
        trunk(_to_device(vol, torch.device("cpu")))
report("recalibrated-BN", extract_features(trunk, src, batch_size=64, device=torch.device("cpu")))
