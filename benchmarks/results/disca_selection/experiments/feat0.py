import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from data import get
from sklearn.cluster import KMeans
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.sorting._mixture import fit_pca
from cryomine.sorting._source import as_source
from cryomine.sorting._training import extract_features
from cryomine.sorting._yopo import YOPO

torch.set_num_threads(1)
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
v, t = get(name, n, snr, seed)
K = t.max() + 1
src = as_source(v, lowpass_a="auto")
trunk = YOPO(width=0.25, init_generator=torch.Generator().manual_seed(seed)).to(
    memory_format=torch.channels_last_3d
)
t0 = time.time()
F = extract_features(trunk, src, batch_size=64, device=torch.device("cpu"))
print("feat s", time.time() - t0)
np.save(f"/tmp/cryomine_exp_cache/F0_{name}_{n}_{snr}_{seed}.npy", F)
R = fit_pca(F, 16).transform(F)
warnings.filterwarnings("ignore")
with threadpool_limits(1):
    km = KMeans(K, n_init=10, random_state=0).fit_predict(R)
    print("kmeans trueK hom", round(homogeneity_score(t, km), 3))
    for cov in ["full", "diag", "tied", "spherical"]:
        bics = {}
        homs = {}
        for k in range(1, 9):
            g = GaussianMixture(
                k, covariance_type=cov, reg_covar=1e-5, n_init=3, random_state=0
            ).fit(R)
            bics[k] = g.bic(R)
            homs[k] = homogeneity_score(t, g.predict(R))
        kb = min(bics, key=bics.get)
        print(
            cov,
            "K*",
            kb,
            "hom",
            round(homs[kb], 3),
            "bic",
            round(bics[kb]),
            "hom@trueK",
            round(homs[K], 3),
        )
