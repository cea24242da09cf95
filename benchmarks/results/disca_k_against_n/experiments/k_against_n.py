"""Does DISCA's K hold as N grows? Tuning structures only (issue #11).

One simulated set of ``PER_CLASS`` particles per structure; nested subsets of its first ``n``
particles per class (``n`` in ``SIZES``) are each sorted by ``DISCA(preset cryomine)``, so the
particles of a smaller N are a subset of those of a larger one and only N changes. Per subset:
K and homogeneity of the answer, and per iteration the chosen K and covariance model, with the
lowest BIC of each covariance model at the true K and at the chosen K. Printed as one JSON line
per subset.

    OMP_NUM_THREADS=1 .venv/bin/python \
        benchmarks/results/disca_k_against_n/experiments/k_against_n.py tune5 400 0.1 0 60,100,200,400
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "results/disca_selection/experiments"))
from data import first_per_class, get, tuning_cell

from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA


def best_bic(candidates: list[dict], k: int) -> dict[str, float]:
    """The lowest BIC of each covariance model at ``k`` among eligible starts."""
    out: dict[str, float] = {}
    for row in candidates:
        if row["k"] == k and row["eligible"]:
            out[row["covariance"]] = min(out.get(row["covariance"], np.inf), row["bic"])
    return {c: round(b, 1) for c, b in out.items()}


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    sizes = [int(s) for s in sys.argv[5].split(",")]
    torch.set_num_threads(1)
    volumes, truth = get(name, per_class, snr, seed)
    true_k = int(truth.max()) + 1
    for n in sizes:
        keep = first_per_class(truth, n)
        model = DISCA.from_preset("cryomine", random_state=seed, voxel_size_a=16.0)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(volumes[keep])
        metrics = sorting_metrics(truth[keep], model.labels_)
        iterations = [
            {"k": e["n_classes"], "cov": e["covariance_type"], "ddbi": round(e["ddbi"], 4),
             "bic_true_k": best_bic(e["candidates"], true_k),
             "bic_chosen_k": best_bic(e["candidates"], e["n_classes"])}
            for e in model.history_
        ]  # fmt: skip
        print(json.dumps({
            "set": name, "snr": snr, "seed": seed, "per_class": n, "n": int(keep.size),
            "k": model.n_classes_, "homogeneity": round(metrics.homogeneity, 3),
            "best_iteration": model.best_iteration_, "wall_s": round(time.perf_counter() - start),
            "iterations": iterations,
        }), flush=True)  # fmt: skip
        np.save(f"/tmp/cryomine_exp_cache/kn_F_{name}_{n}_{snr}_{seed}.npy", model.features_)


if __name__ == "__main__":
    main()
