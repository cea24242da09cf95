"""DEMP merging (Hennig 2010) of the BIC-chosen mixture on iteration-0 features."""

import os
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from data import CACHE, get
from sklearn.metrics import adjusted_rand_score, completeness_score, homogeneity_score

from cryomine.sorting._mixture import COVARIANCE_TYPES, fit_pca, select_mixture
from cryomine.sorting._source import as_source
from cryomine.sorting._training import extract_features
from cryomine.sorting._yopo import YOPO

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
types = tuple(sys.argv[5].split(",")) if len(sys.argv) > 5 else COVARIANCE_TYPES
v, t = get(name, n, snr, seed)
f = CACHE / f"F0_{name}_{n}_{snr}_{seed}.npy"
if not f.exists():
    src = as_source(v, lowpass_a="auto")
    trunk = YOPO(width=0.25, init_generator=torch.Generator().manual_seed(seed)).to(
        memory_format=torch.channels_last_3d
    )
    t0 = time.time()
    F = extract_features(trunk, src, batch_size=64, device=torch.device("cpu"))
    print("feat s", round(time.time() - t0))
    np.save(f, F)
F = np.load(f)
R = fit_pca(F, 16).transform(F)
sel = select_mixture(
    R, k_candidates=range(1, 11), rng=np.random.default_rng(seed), covariance_types=types, n_init=3
)
P = sel.probabilities


def demp(P):
    K = P.shape[1]
    q = np.zeros((K, K))
    for i in range(K):
        for j in range(K):
            if i != j:
                m = P[:, j] > P[:, i]
                q[i, j] = P[m, i].sum() / max(P[:, i].sum(), 1e-12)
    return np.maximum(q, q.T)


def merged(P, cutoff):
    P = P.copy()
    steps = []
    while P.shape[1] > 1:
        q = demp(P)
        np.fill_diagonal(q, -1)
        i, j = np.unravel_index(q.argmax(), q.shape)
        if q[i, j] <= cutoff:
            break
        steps.append(round(float(q[i, j]), 3))
        P[:, i] += P[:, j]
        P = np.delete(P, j, axis=1)
    return P, steps


def h(lab):
    return f"K={lab.max() + 1} hom={homogeneity_score(t, lab):.3f} com={completeness_score(t, lab):.3f} ari={adjusted_rand_score(t, lab):.2f}"


print(
    f"{name} n={n} snr={snr} seed={seed} trueK={t.max() + 1} BIC {sel.covariance_type}: {h(sel.labels)}"
)
q = demp(P)
np.fill_diagonal(q, 0)
print("  pair q max per comp", np.round(q.max(1), 3))
for c in (0.01, 0.025, 0.05, 0.1):
    Pm, steps = merged(P, c)
    lab = Pm.argmax(1)
    lab = np.unique(lab, return_inverse=True)[1]
    print(f"  demp {c}: {h(lab)} merges {steps}")
