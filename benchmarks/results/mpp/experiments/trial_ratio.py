"""The similarity ratio of a split's two sides, iteration by iteration, and how the split ended.

python trial_ratio.py SET N SNR SEED [json kwargs]   (tuning sets only; kwargs go to MPP)

Prints one line per split: the iteration it was made, the ratio of its two sides after each
later iteration (``trial_ratio`` of the history), and whether it was accepted, rejected or
withdrawn; then the result. Writes the history to ``../logs/trial_SET_N_SNR_SEED[_TAG].json``.
"""

import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from sklearn.metrics import homogeneity_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../disca_selection/experiments"))
from data import get

from cryomine.sorting._mpp import MPP

torch.set_num_threads(int(os.environ.get("NT", "1")))
name, n, snr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
kw = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
tag = kw.pop("tag", "")
assert name.startswith("tune"), "tuning sets only (BENCHMARKS.md §6)"
v, t = get(name, n, snr, seed)
warnings.simplefilter("ignore")
t0 = time.time()
m = MPP(random_state=seed, device="cpu", **kw).fit(v)
wall = time.time() - t0
trials = []
for e in m.history_[1:]:
    # an entry's trial_ratio is that of the trial open before its events (merge, then propose)
    if trials and trials[-1]["end"] is None and e.get("trial_ratio") is not None:
        trials[-1]["ratios"].append(round(e["trial_ratio"], 3))
    for event in e["events"]:
        if event.startswith("split "):
            trials.append({"made": e["iteration"], "event": event, "ratios": [], "end": None})
        elif (
            trials
            and trials[-1]["end"] is None
            and event.split()[0] in ("accepted", "rejected", "withdrew")
        ):
            trials[-1]["end"] = f"{event} (iteration {e['iteration']})"
for trial in trials:
    print(f"  {trial['made']:3d} {trial['event']:45s} {trial['ratios']} -> {trial['end']}")
print(
    f"RESULT {name} n={n} snr={snr} seed={seed} {kw}: K={m.n_classes_} "
    f"hom={homogeneity_score(t, m.labels_):.3f} iterations={m.n_iter_} "
    f"converged={m.converged_} wall={wall:.0f}s",
    flush=True,
)
out = (
    Path(__file__).parents[1]
    / "logs"
    / f"trial_{name}_{n}_{snr}_{seed}{'_' + tag if tag else ''}.json"
)
out.write_text(json.dumps({"kwargs": kw, "trials": trials, "k": m.n_classes_,
                           "homogeneity": homogeneity_score(t, m.labels_), "n_iter": m.n_iter_,
                           "converged": m.converged_, "wall_s": wall}, indent=1) + "\n")  # fmt: skip
