"""The input low-pass of DISCA and the smallest-cluster rule of the mixture selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.sorting import select_mixture
from cryomine.sorting._source import as_source, lowpass_fraction, lowpass_transfer


def _wave(box: int, period_voxels: float) -> np.ndarray:
    x = np.arange(box, dtype=np.float32)
    return np.broadcast_to(np.cos(2 * np.pi * x / period_voxels), (box, box, box)).copy()


def test_lowpass_fraction_of_nyquist() -> None:
    assert lowpass_fraction(None, None) is None
    assert lowpass_fraction("auto", None) == pytest.approx(0.5)
    assert lowpass_fraction(40.0, 10.0) == pytest.approx(0.5)
    assert lowpass_fraction(15.0, 10.0) is None  # finer than Nyquist (20 Å): nothing to remove
    with pytest.raises(InputError, match="voxel size"):
        lowpass_fraction(40.0, None)
    with pytest.raises(InputError, match="positive"):
        lowpass_fraction(-5.0, 10.0)
    with pytest.raises(InputError, match="'auto'"):
        lowpass_fraction("half", 10.0)


def test_transfer_passes_low_and_stops_high_frequencies() -> None:
    box = 24
    transfer = lowpass_transfer(box, 0.5)
    assert transfer.shape == (box, box, box // 2 + 1)
    assert transfer[0, 0, 0] == 1.0
    assert transfer[0, 0, 4] == 1.0  # 4/24 = 0.167 cycles/voxel < 0.25 - 1/24
    assert transfer[0, 0, 8] == 0.0  # 8/24 = 0.333 > 0.25 + 1/24
    assert np.all(np.diff(transfer[0, 0, :]) <= 0)


def test_source_removes_high_frequency_noise_before_zscoring() -> None:
    box = 24
    low = _wave(box, 12.0)  # 0.083 cycles/voxel, kept
    high = 3.0 * _wave(box, 2.4)  # 0.417 cycles/voxel, beyond half Nyquist
    volumes = np.stack([low + high, low + high])
    filtered = as_source(volumes, lowpass_a="auto").read(np.array([1]))[0]
    unfiltered = as_source(volumes, lowpass_a=None).read(np.array([1]))[0]
    expected = (low - low.mean()) / low.std()
    np.testing.assert_allclose(filtered, expected, atol=1e-4)
    assert abs(np.corrcoef(unfiltered.ravel(), expected.ravel())[0, 1]) < 0.5
    assert filtered.std() == pytest.approx(1.0, abs=1e-4)


def test_a_particle_set_brings_its_own_voxel_size(tiny_particle_set: Path) -> None:
    from cryomine.io import ParticleSet

    particles = ParticleSet.open(tiny_particle_set)
    resolution_a = 4 * particles.voxel_size_a
    source = as_source(particles, lowpass_a=resolution_a, voxel_size_a=1.0)  # array-only option
    assert source.lowpass_fraction == pytest.approx(0.5)
    array = np.stack([particles.read(np.array([i]))[0] for i in range(3)])
    np.testing.assert_allclose(
        source.read(np.arange(3)), as_source(array, lowpass_a="auto").read(np.arange(3)), atol=1e-5
    )


def test_clusters_smaller_than_the_dimension_are_not_eligible() -> None:
    # two clusters of 100 in 4-d and 3 far outliers: a third component of 3 samples has a
    # singular covariance (3 < d + 1), so BIC would reward it; it is not eligible by default
    rng = np.random.default_rng(0)
    data = np.concatenate(
        [
            rng.normal(0.0, 1.0, (100, 4)),
            rng.normal(8.0, 1.0, (100, 4)),
            rng.normal(40.0, 1.0, (3, 4)),
        ]
    )
    default = select_mixture(data, k_candidates=[2, 3], rng=np.random.default_rng(1))
    assert default.n_classes == 2 and 3 in default.rejected
    permissive = select_mixture(
        data, k_candidates=[2, 3], rng=np.random.default_rng(1), min_class_size=1
    )
    assert permissive.n_classes == 3 and permissive.rejected == []
    assert permissive.bic[3] < permissive.bic[2]


def test_saved_model_applies_the_same_lowpass(
    tiny_set: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import json

    from cryomine.sorting import DISCA

    volumes, _ = tiny_set
    fast = {
        "width": 0.0625,
        "pretrained": None,
        "k_range": (2, 4),
        "batch_size": 16,
        "pca_components": 4,
    }
    model = DISCA(
        **fast, device="cpu", max_iter=1, random_state=3, lowpass_a=39.0, voxel_size_a=13.0
    ).fit(volumes)
    assert model.lowpass_fraction_ == pytest.approx(2 / 3)
    model.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "state.json").read_text())["lowpass_fraction"] == (
        pytest.approx(2 / 3)
    )
    loaded = DISCA.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.transform(volumes), model.features_, rtol=1e-5, atol=1e-5)
    unfiltered = DISCA.load(tmp_path / "model")
    unfiltered.lowpass_a = None
    assert not np.allclose(unfiltered.transform(volumes), model.features_, atol=1e-3)
    with pytest.raises(InputError, match="voxel size"):
        DISCA(**fast, device="cpu", max_iter=1, lowpass_a=39.0).fit(volumes)
