"""Which iteration should DISCA return? Tuning structures only (issue #11).

The loop keeps the lowest-DDBI iteration (DISCA.md, step 5). DDBI is a mean over classes of
each class's worst pair ratio, so with fewer classes there are fewer pairs to be worst: it is
not comparable across K. This records every iteration's labels of one `cryomine`-preset fit
(by wrapping the DDBI call the E-step makes) and scores three rules on them:

- ``ddbi``: the lowest DDBI over all iterations (the paper's rule, today's default);
- ``ddbi_final_k``: the lowest DDBI among the iterations whose K is the last iteration's K;
- ``last``: the last iteration.

    OMP_NUM_THREADS=1 .venv/bin/python \
        benchmarks/results/disca_best_iteration/experiments/best_iteration.py tune3b 60 0.01 0
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "results/disca_selection/experiments"))
from data import SETS, get, tuning_cell

import cryomine.sorting._disca as disca_module
from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    volumes, truth = get(name, per_class, snr, seed)
    recorded: list[tuple[float, np.ndarray]] = []
    original = disca_module.ddbi

    def recording_ddbi(features: np.ndarray, labels: np.ndarray) -> float:
        score = original(features, labels)
        recorded.append((score, np.asarray(labels).copy()))
        return score

    disca_module.ddbi = recording_ddbi
    # the paper's rule in the estimator, so that its best_iteration_ checks the recording
    model = DISCA.from_preset("cryomine", random_state=seed, voxel_size_a=16.0, ddbi_across_k=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(volumes)
    wall_s = time.perf_counter() - start
    ks = [int(labels.max()) + 1 for _, labels in recorded]
    scores = [score for score, _ in recorded]
    final_k = ks[-1]
    rules = {
        "ddbi": int(np.argmin(scores)),
        "ddbi_final_k": min(
            (i for i in range(len(ks)) if ks[i] == final_k), key=scores.__getitem__
        ),
        "last": len(ks) - 1,
    }
    assert rules["ddbi"] == model.best_iteration_, "the recording disagrees with the estimator"
    row = {
        "set": name, "structures": SETS[name], "per_class": per_class, "snr": snr, "seed": seed,
        "ks": ks, "ddbi": [round(s, 4) for s in scores], "wall_s": round(wall_s, 1),
        "homogeneity_per_iteration": [
            round(sorting_metrics(truth, labels).homogeneity, 4) for _, labels in recorded
        ],
        "rules": {
            rule: {"iteration": i, "k": ks[i],
                   "homogeneity": round(sorting_metrics(truth, recorded[i][1]).homogeneity, 4)}
            for rule, i in rules.items()
        },
    }  # fmt: skip
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
