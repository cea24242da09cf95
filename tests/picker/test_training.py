"""Training: the loss falls on simulated windows, the run is seeded and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cryomine.picker import (
    EXTRA_CLASSES,
    PickerConfig,
    TrainingConditions,
    TrainingOptions,
    load_picker,
    simulate_window_pool,
    train_picker,
)

CONFIG = PickerConfig(window=20, embedding_dim=8, channels=(4, 8, 16))
CONDITIONS = TrainingConditions(
    shape_zyx=(32, 64, 64),
    structures_per_tomogram=3,
    copies_per_structure=2,
    tomograms_per_structure=2,
    windows_per_extra_class=4,
    max_gold=2,
)


@pytest.fixture(scope="module")
def densities(make_blob) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return {f"blob{i}": 0.5 * make_blob(seed=i, box=16, reach=3.0) for i in range(3)}


def test_window_pool_has_every_class(densities: dict[str, np.ndarray]) -> None:
    pool = simulate_window_pool(densities, list(densities), conditions=CONDITIONS, seed=[0, 0])
    assert pool.class_names == [*densities, *EXTRA_CLASSES]
    counts = np.bincount(pool.labels, minlength=len(pool.class_names))
    assert np.all(counts[:3] == 4) and counts[-1] == 8  # 2 tomograms x 2 copies; background
    assert len(pool.tomograms) == 2
    for label in range(3):  # every structure in both tomograms, imaged differently
        assert set(pool.tomogram_index[pool.labels == label].tolist()) == {0, 1}
    assert pool.conditions[0]["snr"] != pool.conditions[1]["snr"]
    snr = pool.conditions[0]["snr"]
    assert CONDITIONS.snr_range[0] <= snr <= CONDITIONS.snr_range[1]
    windows = pool.windows(np.arange(len(pool)), 20, rng=None, shift_px=0)
    assert windows.shape == (len(pool), 20, 20, 20) and np.isfinite(windows).all()
    rows = pool.draw_batch(np.random.default_rng(0), n_classes=3, n_per_class=2)
    assert len(rows) == 6 and len(set(pool.labels[rows].tolist())) == 3


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


@pytest.mark.slow
def test_training_lowers_the_validation_loss_and_resumes_exactly(
    densities: dict[str, np.ndarray], tmp_path: Path
) -> None:
    options = TrainingOptions(epochs=3, steps_per_epoch=6, n_classes=6, n_per_class=4)
    full = train_picker(
        densities, tmp_path / "full", config=CONFIG, options=options, conditions=CONDITIONS, seed=3
    )
    first, last = full.history[0], full.history[-1]
    assert first["epoch"] == -1 and last["epoch"] == 2
    assert last["validation_loss"] < first["validation_loss"]
    assert last["train_loss"] < full.history[1]["train_loss"]

    # interrupted after the first epoch (wall-time limit 0), then resumed from its checkpoint
    stopped = TrainingOptions(**{**options.__dict__, "max_wall_s": 0.0})
    part = train_picker(
        densities, tmp_path / "part", config=CONFIG, options=stopped, conditions=CONDITIONS, seed=3
    )
    assert part.history[-1]["epoch"] == 0
    resumed = train_picker(
        densities, tmp_path / "part", config=CONFIG, options=options, conditions=CONDITIONS, seed=3
    )
    assert resumed.resumed_from_epoch == 1
    for a, b in zip(_weights(full.model), _weights(resumed.model), strict=True):
        torch.testing.assert_close(a, b)
    reloaded = load_picker(tmp_path / "part")
    for a, b in zip(_weights(full.model), _weights(reloaded), strict=True):
        torch.testing.assert_close(a, b)
