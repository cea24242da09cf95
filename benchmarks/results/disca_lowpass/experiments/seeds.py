import sys
import time

import torch

sys.path.insert(
    0, str(__import__("pathlib").Path(__file__).resolve().parents[4] / "tests" / "sorting")
)
from conftest import simulate
from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA

torch.set_num_threads(1)
lp = None if sys.argv[1] == "none" else sys.argv[1]
for seed in [int(x) for x in sys.argv[2].split(",")]:
    vol, truth = simulate(60, 0.1, seed=seed)
    t = time.perf_counter()
    m = DISCA(
        width=0.25,
        k_range=(2, 6),
        max_iter=2,
        pca_components=16,
        device="cpu",
        random_state=seed,
        lowpass_a=lp,
    ).fit(vol)
    dt = time.perf_counter() - t
    met = sorting_metrics(truth, m.labels_)
    print(
        f"lowpass={lp} seed={seed} K={m.n_clusters_} hom={met.homogeneity:.3f} acc={met.accuracy} best_it={m.best_iteration_} "
        f"K/it={[e['n_clusters'] for e in m.history_]} rejected={[e['rejected_k'] for e in m.history_]} fchange={[e['feature_change'] for e in m.history_]} fit_s={dt:.0f}",
        flush=True,
    )
