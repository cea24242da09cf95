"""Iteration-0 model choice with the PCA dimension from parallel analysis against noise-only input.

Keep the principal components whose variance exceeds that of the same-rank component of the
features of pure-noise boxes (white noise, same low-pass and z-score) through the same untrained
network; then the joint-covariance BIC choice as in the default preset.
"""

import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from data import get
from sklearn.decomposition import PCA
from sklearn.metrics import homogeneity_score

from cryomine.sorting._mixture import COVARIANCE_TYPES, fit_pca, select_mixture
from cryomine.sorting._source import as_source
from cryomine.sorting._training import extract_features
from cryomine.sorting._yopo import YOPO

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
v, t = get(name, n, snr, seed)
cpu = torch.device("cpu")
trunk = YOPO(width=0.25, init_generator=torch.Generator().manual_seed(seed)).to(
    memory_format=torch.channels_last_3d
)
F = extract_features(trunk, as_source(v, lowpass_a="auto"), batch_size=64, device=cpu)
noise = np.random.default_rng(seed).standard_normal(v.shape).astype(np.float32)
G = extract_features(trunk, as_source(noise, lowpass_a="auto"), batch_size=64, device=cpu)
ev = PCA(40).fit(F).explained_variance_
en = PCA(40).fit(G).explained_variance_
d = int(np.argmax(ev <= en)) if (ev <= en).any() else 40
out = []
for dim in (d, 16):
    R = fit_pca(F, max(dim, 1)).transform(F)
    sel = select_mixture(
        R,
        k_candidates=range(1, 11),
        rng=np.random.default_rng(seed),
        covariance_types=COVARIANCE_TYPES,
        n_init=3,
    )
    out.append(
        f"d={dim}: K={sel.n_clusters} {sel.covariance_type} hom={homogeneity_score(t, sel.labels):.3f}"
    )
print(f"{name} n={n} snr={snr} seed={seed} trueK={t.max() + 1} | " + " | ".join(out), flush=True)
