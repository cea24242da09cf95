import sys

import torch

sys.path.insert(
    0, str(__import__("pathlib").Path(__file__).resolve().parents[4] / "tests" / "sorting")
)
from conftest import simulate
from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA

torch.set_num_threads(1)
vol, truth = simulate(60, 0.1, seed=0)
for lr in [float(x) for x in sys.argv[1].split(",")]:
    m = DISCA(
        width=0.25, k_range=(2, 6), max_iter=3, device="cpu", random_state=0, learning_rate=lr
    ).fit(vol)
    print(
        f"lr={lr}: K/it={[e['n_clusters'] for e in m.history_]} fchange={[e['feature_change'] for e in m.history_]} "
        f"label_change={[e['label_change'] for e in m.history_]} loss={[e.get('loss') for e in m.history_]} hom={sorting_metrics(truth, m.labels_).homogeneity:.3f} best_it={m.best_iteration_}",
        flush=True,
    )
