"""BatchNorm statistics re-estimated on the data: features depend on the weights, not on history."""

from __future__ import annotations

import copy

import numpy as np
import torch

from cryomine.sorting._source import as_source
from cryomine.sorting._training import extract_features, recalibrate_batchnorm
from cryomine.sorting._yopo import YOPO


def test_recalibrated_features_forget_the_training_batches_seen(
    tiny_set: tuple[np.ndarray, np.ndarray],
) -> None:
    volumes, _ = tiny_set
    source = as_source(volumes, lowpass_a="auto", voxel_size_a=13.0)
    cpu = torch.device("cpu")
    trunk = YOPO(width=0.0625, init_generator=torch.Generator().manual_seed(0))
    drifted = copy.deepcopy(trunk)
    drifted.train()
    with torch.no_grad():  # running statistics move towards other data; weights do not
        for _ in range(5):
            drifted(3.0 * torch.randn(8, 1, 24, 24, 24) + 1.0)
    before = extract_features(drifted, source, batch_size=8, device=cpu)
    assert not np.allclose(before, extract_features(trunk, source, batch_size=8, device=cpu))

    for model in (trunk, drifted):
        recalibrate_batchnorm(model, source, batch_size=8, device=cpu)
    np.testing.assert_allclose(
        extract_features(drifted, source, batch_size=8, device=cpu),
        extract_features(trunk, source, batch_size=8, device=cpu),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip
    norm = trunk.merge_norm
    assert norm.momentum == 0.01 and not trunk.training  # settings restored
    assert int(norm.num_batches_tracked) == int(np.ceil(len(volumes) / 8))
