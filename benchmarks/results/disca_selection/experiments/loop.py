import json
import sys
import time
import warnings

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from data import get
from sklearn.metrics import homogeneity_score

from cryomine.sorting import DISCA

torch.set_num_threads(int(__import__("os").environ.get("NT", "1")))
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
kw = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
v, t = get(name, n, snr, seed)
kw.setdefault("width", 0.25)
kw.setdefault("k_range", (2, 10))
kw.setdefault("max_iter", 6)
preset = kw.pop("preset", "cryomine")
m = DISCA.from_preset(preset, device="cpu", random_state=seed, **kw)
t0 = time.time()
warnings.simplefilter("ignore")
m.fit(v)
for e in m.history_:
    print(
        e["iteration"],
        "K",
        e["n_clusters"],
        e["covariance_type"],
        "ddbi {:.3f}".format(e["ddbi"]),
        "chg",
        e["label_change"],
        "fchg",
        e["feature_change"] and round(e["feature_change"], 3),
        "steps",
        e.get("steps"),
        "wchg",
        e.get("weight_change") and round(e["weight_change"], 4),
        "loss",
        e.get("loss") and round(e["loss"], 3),
        {k: round(x, 1) for k, x in e["timings_s"].items()},
    )
print(
    f"RESULT {name} n={n} snr={snr} seed={seed} {kw} preset={preset}: K={m.n_clusters_} hom={homogeneity_score(t, m.labels_):.3f} best_it={m.best_iteration_} n_iter={m.n_iter_} conv={m.converged_} wall={time.time() - t0:.0f}s"
)
