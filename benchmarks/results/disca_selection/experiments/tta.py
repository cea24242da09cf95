import sys
import time

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from data import get

from cryomine.geometry import random_rotations, transform_volumes
from cryomine.sorting._source import as_source
from cryomine.sorting._training import _to_device
from cryomine.sorting._yopo import YOPO

torch.set_num_threads(1)
name, n, snr, seed, M = (
    sys.argv[1],
    int(sys.argv[2]),
    float(sys.argv[3]),
    int(sys.argv[4]),
    int(sys.argv[5]),
)
v, t = get(name, n, snr, seed)
src = as_source(v, lowpass_a="auto")
trunk = (
    YOPO(width=0.25, init_generator=torch.Generator().manual_seed(seed))
    .to(memory_format=torch.channels_last_3d)
    .eval()
)
rng = np.random.default_rng(0)
g = torch.Generator().manual_seed(0)
F = np.zeros((len(v), 1024), np.float32)
t0 = time.time()
with torch.inference_mode():
    for s in range(0, len(v), 64):
        idx = np.arange(s, min(s + 64, len(v)))
        x = torch.from_numpy(src.read(idx))
        acc = trunk(_to_device(x, torch.device("cpu"))).numpy()
        for _m in range(M - 1):
            xr, _ = transform_volumes(
                x, random_rotations(len(idx), rng=rng).as_matrix(), fill="noise", generator=g
            )
            acc = acc + trunk(_to_device(xr, torch.device("cpu"))).numpy()
        F[idx] = acc / M
print("s", time.time() - t0)
np.save(f"/tmp/cryomine_exp_cache/F0_{name}_{n}_{snr}_{seed}.npy".replace("F0_", f"FT{M}_"), F)
