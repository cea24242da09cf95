"""Threshold rules on the cached similarity maps of ``similarity_maps.py``: median F1 per set.

Rules: ``madK`` (median + K·1.4826·MAD of the map, the shipped rule with K = 12), ``absT`` (a
fixed cosine T), ``pkK`` (median + K·1.4826·MAD of the peak scores), ``best`` (the best
threshold per structure, a ceiling). Then, per structure of the simulated reference, every rule.

    python benchmarks/results/picker/experiments/threshold_rules.py /tmp/picker_maps
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from picker_f1 import STRIDE, _scores, _without_examples

from cryomine.picker import find_similarity_peaks


def peaks_all(sim, diameter, shape):
    p = find_similarity_peaks(
        sim,
        stride=STRIDE,
        voxel_size_a=10.0,
        min_distance_a=0.8 * diameter,
        threshold=float(np.median(sim)),
        tomogram_shape=tuple(shape),
        border_a=0.5 * diameter,
    )
    return p.positions_zyx, p.scores


def f1_at(pos, sc, t, truth, ex, r):
    keep = sc >= t
    found = _without_examples(pos[keep], ex, r)
    return _scores(truth, found, r)["f1"]


rows = {}
for label in ("tune", "train", "unseen"):
    d = np.load(f"{sys.argv[1]}/{label}.npz")
    names = sorted({k.split("/")[0] for k in d.files if "/" in k})
    for name in names:
        for kind in ("example", "simulated"):
            sim = d[f"{name}/{kind}"]
            c = d[f"{name}/centres"]
            diam = float(d[f"{name}/diameter_a"])
            r = 0.25 * diam / 10
            ex, truth = c[:1], c[1:]
            pos, sc = peaks_all(sim, diam, d["shape"])
            med = np.median(sim)
            mad = 1.4826 * np.median(np.abs(sim - med))
            pmed = np.median(sc)
            pmad = 1.4826 * np.median(np.abs(sc - pmed))
            res = {}
            for k in (8, 10, 12, 15, 20):
                res[f"mad{k}"] = f1_at(pos, sc, med + k * mad, truth, ex, r)
            for t in (0.3, 0.4, 0.5, 0.6, 0.7):
                res[f"abs{t}"] = f1_at(pos, sc, t, truth, ex, r)
            for k in (3, 4, 5, 6, 8):
                res[f"pk{k}"] = f1_at(pos, sc, pmed + k * pmad, truth, ex, r)
            best = max(f1_at(pos, sc, t, truth, ex, r) for t in np.unique(sc))
            res["best"] = best
            # true-particle scores vs others for insight
            rows[(label, name, kind)] = (res, len(sc), med, mad, pmed, pmad, sc[:10].round(2))
for label in ("tune", "train", "unseen"):
    for kind in ("example", "simulated"):
        keys = [k for k in rows if k[0] == label and k[2] == kind]
        rules = list(rows[keys[0]][0].keys())
        print(
            label,
            kind,
            " ".join(f"{r}:{np.median([rows[k][0][r] for k in keys]):.2f}" for r in rules),
        )
for k, v in rows.items():
    if k[2] == "simulated":
        print(
            k,
            {a: round(b, 2) for a, b in v[0].items()},
            v[1],
            round(v[2], 3),
            round(v[3], 3),
            round(v[4], 3),
            round(v[5], 3),
            v[6],
        )
