"""Simulated subtomograms: realised SNR, the wedge in both modes, determinism, truth, writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cryomine.errors import InputError
from cryomine.geometry import transform_volumes
from cryomine.io import COLUMNS, ParticleSet, rotations_from_table
from cryomine.simulate import simulate_subtomograms, write_simulated_subtomograms

N_PER_CLASS = 8


def _realised_snr(noisy: np.ndarray, noise_free: np.ndarray) -> np.ndarray:
    """SNR per subtomogram, measured by regressing the noisy volume on the noise-free one."""
    snrs = []
    for x, s in zip(noisy, noise_free, strict=True):
        x, s = x - x.mean(), s - s.mean()
        gain = float((x * s).sum() / (s * s).sum())
        residual = x - gain * s
        snrs.append(gain**2 * s.var() / residual.var())
    return np.array(snrs)


@pytest.fixture(scope="module")
def simulated(two_structures):  # type: ignore[no-untyped-def]
    """Both modes at SNR 0.1: (subtomograms, noise-free) per mode, and the table."""
    out = {}
    for mode in ("tilt-series", "fourier"):
        sim = simulate_subtomograms(
            two_structures, n_per_class=N_PER_CLASS, snr=0.1, mode=mode, seed=7, batch_size=8
        )
        batches = list(sim.iter_batches(keep_noise_free=True, keep_densities=True))
        out[mode] = (
            sim,
            np.concatenate([b.subtomograms for b in batches]),
            np.concatenate([b.noise_free for b in batches]),  # type: ignore[misc]
            np.concatenate([b.densities for b in batches]),  # type: ignore[misc]
        )
    return out


@pytest.mark.parametrize("mode", ["tilt-series", "fourier"])
def test_realised_snr_hits_the_target(simulated, mode: str) -> None:  # type: ignore[no-untyped-def]
    _, noisy, noise_free, _ = simulated[mode]
    snr = _realised_snr(noisy, noise_free)
    assert np.mean(snr) == pytest.approx(0.1, rel=0.1)
    assert np.all(np.abs(snr / 0.1 - 1) < 0.3)  # each one, within the estimate's own noise
    np.testing.assert_allclose(noisy.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(noisy.std(axis=(1, 2, 3)), 1, atol=1e-4)


def test_protein_is_bright(simulated) -> None:  # type: ignore[no-untyped-def]
    for mode in ("tilt-series", "fourier"):
        _, noisy, noise_free, densities = simulated[mode]
        for x, s, d in zip(noisy, noise_free, densities, strict=True):
            assert np.corrcoef(s.ravel(), d.ravel())[0, 1] > 0.3
            assert np.corrcoef(x.ravel(), d.ravel())[0, 1] > 0


def _wedge_profile(volumes: np.ndarray, edges_deg: np.ndarray) -> np.ndarray:
    """Mean power by angle from k_z (bins ``edges_deg``); each k_⊥ shell scaled by its mean."""
    n = volumes.shape[-1]
    power = np.mean(
        np.abs(np.fft.fftshift(np.fft.fftn(volumes, axes=(1, 2, 3)), axes=(1, 2, 3))) ** 2, axis=0
    )
    kz, _, kx = np.mgrid[:n, :n, :n] - n // 2
    shell_index = np.rint(np.sqrt(kz**2 + kx**2)).astype(int)
    angle_from_kz = np.degrees(np.arctan2(np.abs(kx), np.abs(kz)))
    reference = angle_from_kz > 45  # well inside the observed region
    scaled = np.zeros_like(power)
    for k in range(2, n // 2):
        shell = shell_index == k
        scaled[shell] = power[shell] / power[shell & reference].mean()
    usable = (shell_index >= 2) & (shell_index < n // 2)
    bins = np.minimum(np.digitize(angle_from_kz, edges_deg) - 1, len(edges_deg) - 2)
    return np.array([scaled[usable & (bins == b)].mean() for b in range(len(edges_deg) - 1)])


def test_both_modes_have_the_same_wedge(simulated) -> None:  # type: ignore[no-untyped-def]
    edges = np.arange(0.0, 91.0, 5.0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    profiles = {
        mode: _wedge_profile(simulated[mode][1], edges) for mode in ("tilt-series", "fourier")
    }
    for profile in profiles.values():
        assert profile[centres < 20].max() < 0.1  # ~empty in the wedge (±60°: 30° about k_z)
        assert profile[centres > 40].min() > 0.5  # observed
        # the edge: where the power first reaches half of the observed level, same as the mask's 30°
        edge = centres[np.argmax(profile > 0.5)]
        assert 25.0 <= edge <= 40.0
    # (the k_z = 0 bin is left out: there the tilt-series planes pile up on the voxel grid)
    inner = centres < 85
    assert np.abs(profiles["tilt-series"][inner] - profiles["fourier"][inner]).max() < 0.4


def test_deterministic_and_independent_of_batch_size(two_structures) -> None:  # type: ignore[no-untyped-def]
    def run(seed: int, batch_size: int) -> np.ndarray:
        sim = simulate_subtomograms(
            two_structures, n_per_class=3, snr=0.05, seed=seed, batch_size=batch_size
        )
        return np.concatenate(list(sim.iter_subtomograms()))

    first = run(11, 4)
    np.testing.assert_array_equal(first, run(11, 4))
    np.testing.assert_allclose(first, run(11, 6), atol=1e-4)
    assert np.abs(first - run(12, 4)).max() > 1.0


def test_truth_columns(simulated, two_structures) -> None:  # type: ignore[no-untyped-def]
    sim, _, _, densities = simulated["fourier"]
    table = sim.table
    assert len(table) == 2 * N_PER_CLASS
    assert table[COLUMNS.structure].value_counts().to_dict() == {
        "alpha": N_PER_CLASS,
        "beta": N_PER_CLASS,
    }
    names = list(two_structures)
    assert all(
        names[k - 1] == s
        for k, s in zip(table[COLUMNS.true_class], table[COLUMNS.structure], strict=True)
    )
    # the table's angles and shifts reproduce the simulated clean densities
    rotations = rotations_from_table(table).as_matrix()
    shifts_zyx = table[["cmTrueShiftZ", "cmTrueShiftY", "cmTrueShiftX"]].to_numpy()
    assert np.abs(shifts_zyx).max() <= 2.0
    references = torch.from_numpy(np.stack([two_structures[s] for s in table[COLUMNS.structure]]))
    rebuilt, _ = transform_volumes(references, rotations, shifts_zyx)
    np.testing.assert_allclose(rebuilt.numpy(), densities, atol=1e-3)


def test_write_and_load_back(tmp_path: Path, two_structures) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "set"
    write_simulated_subtomograms(
        out, two_structures, n_per_class=3, snr=0.1, mode="fourier", seed=2
    )
    particles = ParticleSet.open(out)
    assert len(particles.table) == 6
    assert set(particles.table[COLUMNS.true_class]) == {1, 2}
    for name in two_structures:
        assert (out / "references" / f"{name}.mrc").is_file()
        assert (out / "references" / f"{name}_ctf.mrc").is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["parameters"]["snr"] == 0.1 and record["seed"] == 2
    with pytest.raises(InputError, match="already exists"):
        write_simulated_subtomograms(out, two_structures, n_per_class=1, snr=0.1, mode="fourier")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"snr": 0.0}, "SNR"),
        ({"defocus_um": -5.0}, "underfocus"),
        ({"mode": "magic"}, "mode"),
        ({"tilt_range_deg": (-100.0, 60.0)}, "tilt range"),
        ({"max_shift_px": 20.0}, "shift"),
    ],
)
def test_bad_input(two_structures, options: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    kwargs = {"n_per_class": 1, "snr": 0.1, **options}
    with pytest.raises(InputError, match=message):
        simulate_subtomograms(two_structures, **kwargs)


def test_wrong_density_shape(two_structures) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="shape"):
        simulate_subtomograms(two_structures, n_per_class=1, snr=0.1, box_size=32)
