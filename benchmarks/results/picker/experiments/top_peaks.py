"""What the 14 best peaks of each simulated-reference similarity map are: the target, another
structure's particle (``other:NAME``), or near a membrane, gold bead, other particle or
background (``near:…``), from the simulator's label volume cached by ``similarity_maps.py``.

    python benchmarks/results/picker/experiments/top_peaks.py /tmp/picker_maps
"""

import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from picker_f1 import STRIDE

from cryomine.picker import find_similarity_peaks

summary = collections.Counter()
for label in ("tune", "train", "unseen"):
    d = np.load(f"{sys.argv[1]}/{label}.npz")
    lab = d["labels"]
    lname = dict(zip(d["label_values"], d["label_names"], strict=True))
    allc = d["all_centres"]
    alln = d["all_names"]
    names = sorted({k.split("/")[0] for k in d.files if "/" in k and not k.startswith("all")})
    for name in names:
        sim = d[f"{name}/simulated"]
        diam = float(d[f"{name}/diameter_a"])
        p = find_similarity_peaks(
            sim,
            stride=STRIDE,
            voxel_size_a=10.0,
            min_distance_a=0.8 * diam,
            threshold=float(np.median(sim)),
            tomogram_shape=tuple(d["shape"]),
            border_a=0.5 * diam,
        )
        cats = []
        for pos in p.positions_zyx[:14]:
            dist = np.linalg.norm(allc - pos, axis=1)
            j = dist.argmin()
            if dist[j] <= 0.25 * diam / 10:
                cat = "TARGET" if alln[j] == name else "other:" + alln[j]
            else:
                z, y, x = np.clip(np.round(pos).astype(int), 0, np.array(lab.shape) - 1)
                v = lab[z, y, x]
                cat = "near:" + (lname.get(v, "bg") if v else "bg")
            cats.append(cat)
        for c in cats:
            summary[
                (
                    label,
                    c.split(":")[0]
                    if not c.startswith("near:membrane") and not c.startswith("near:gold")
                    else c,
                )
            ] += 1
        print(label, name, " ".join(c[:14] for c in cats))
print(summary)
