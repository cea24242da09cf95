import sys
import warnings

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from data import get
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.sorting._mixture import fit_pca

warnings.filterwarnings("ignore")
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
d = int(sys.argv[5]) if len(sys.argv) > 5 else 16
_, t = get(name, n, snr, seed)
K = t.max() + 1
pre = sys.argv[6] if len(sys.argv) > 6 else "F0"
F = np.load(f"/tmp/cryomine_exp_cache/{pre}_{name}_{n}_{snr}_{seed}.npy")
R = fit_pca(F, d).transform(F)
rows = []
with threadpool_limits(1):
    for cov in ["full", "diag", "tied", "spherical"]:
        for k in range(1, 11):
            g = GaussianMixture(
                k, covariance_type=cov, reg_covar=1e-5, n_init=3, random_state=0
            ).fit(R)
            p = g.predict_proba(R)
            ent = -np.sum(p * np.log(np.clip(p, 1e-300, 1)))
            lab = p.argmax(1)
            minsize = np.bincount(lab, minlength=k).min()
            rows.append((cov, k, g.bic(R), g.bic(R) + 2 * ent, homogeneity_score(t, lab), minsize))
for crit, i in (("BIC", 2), ("ICL", 3)):
    best = min(rows, key=lambda r: r[i])
    print(crit, "overall", best[0], "K", best[1], f"hom {best[4]:.3f}")
    for cov in ["full", "diag", "tied", "spherical"]:
        rr = [r for r in rows if r[0] == cov]
        b = min(rr, key=lambda r: r[i])
        print("  ", crit, cov, "K", b[1], f"hom {b[4]:.3f}", f"score {b[i]:.0f}")
