"""One MPP fit on a cached simulated set: python run.py SET N SNR SEED [json kwargs]."""

import json
import logging
import os
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.metrics import homogeneity_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../disca_selection/experiments"))
from data import get

from cryomine.sorting._mpp import MPP

torch.set_num_threads(int(os.environ.get("NT", "2")))
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
kw = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
init = kw.pop("init", "one")
rare = kw.pop("rare", None)  # [class, count]: keep only the first `count` of that class
v, t = get(name, n, snr, seed)
if rare is not None:
    keep = np.flatnonzero(t != rare[0])
    keep = np.sort(np.concatenate([keep, np.flatnonzero(t == rare[0])[: rare[1]]]))
    v, t = v[keep], t[keep]
init_labels = None
if init == "truth30":  # 30 % of the true labels shuffled
    rng = np.random.default_rng(seed)
    init_labels = t.copy()
    rows = rng.choice(t.size, int(0.3 * t.size), replace=False)
    init_labels[rows] = rng.permutation(init_labels[rows])
elif init.startswith("random"):
    init_labels = np.random.default_rng(seed).integers(0, int(init[6:]), t.size)
logging.basicConfig(level=logging.INFO, format="%(message)s")
warnings.simplefilter("ignore")
t0 = time.time()
m = MPP(random_state=seed, device="cpu", **kw).fit(v, init_labels=init_labels)
for e in m.history_[1:]:
    cm = {str(i): round(c, 3) for i, c in e["half_correlation"].items()}
    print(
        e["iteration"],
        "K",
        e["n_clusters"],
        e["sizes"],
        "chg {:.3f}".format(e["label_change"]),
        "margin {}".format(e.get("median_score_margin")),
        cm,
        {p: round(r, 2) for p, r in e["similarity_ratio"].items()},
        e["events"],
        {k: round(x, 1) for k, x in e["timings_s"].items()},
    )
if init_labels is not None:
    print(f"start hom {homogeneity_score(t, init_labels):.3f}")
table = np.zeros((m.n_clusters_, t.max() + 1), int)
np.add.at(table, (m.labels_, t), 1)
print(table)
print(
    f"RESULT {name} n={n} snr={snr} seed={seed} init={init} rare={rare} {kw}: K={m.n_clusters_} "
    f"hom={homogeneity_score(t, m.labels_):.3f} n_iter={m.n_iter_} conv={m.converged_} "
    f"wall={time.time() - t0:.0f}s"
)
