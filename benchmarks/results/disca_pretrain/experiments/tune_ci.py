"""The tuning CI case of tests/sorting/test_accuracy.py (4v4r, 3j9i, 1bxn x 60, 13 A, SNR 0.1)
with the cryomine preset: python tune_ci.py SEED [kwargs dict]. Run from the repository root.
"""

import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, ".")
from sklearn.metrics import homogeneity_score
from tests.sorting.conftest import simulate

from cryomine.sorting import DISCA

torch.set_num_threads(1)
warnings.simplefilter("ignore")
seed = int(sys.argv[1])
kw = eval(sys.argv[2]) if len(sys.argv) > 2 else {}
v, t = simulate(60, 0.1, seed=seed)
m = DISCA.from_preset(
    "cryomine", width=0.25, k_range=(2, 6), max_iter=8, device="cpu", random_state=seed, **kw
).fit(v)
for e in m.history_:
    print(
        e["iteration"],
        e["n_clusters"],
        e["covariance_type"],
        round(e["ddbi"], 3),
        e.get("label_change"),
        e.get("weight_change"),
        {k: round(b) for k, b in e["candidate_bic"].items()},
    )
tab = np.zeros((m.n_clusters_, 3), int)
np.add.at(tab, (m.labels_, t), 1)
print(tab)
print(
    "RESULT",
    seed,
    kw,
    m.n_clusters_,
    round(homogeneity_score(t, m.labels_), 3),
    "best",
    m.best_iteration_,
)
