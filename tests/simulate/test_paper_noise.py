"""The paper noise model (``noise_model="paper"``) and unnormalized output (``normalize=False``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.io import ParticleSet, read_particles
from cryomine.simulate import simulate_subtomograms, write_simulated_subtomograms
from cryomine.simulate._imaging import ImagingParameters
from cryomine.simulate._paper_noise import (
    paper_bandpass_radius,
    paper_filters,
    raised_sphere,
)

# Effective / nominal SNR of 4v94 (median over 40 subtomograms, ±60°, SNR 0.01, 24³) by voxel
# size (Å) and signal_variance, measured by `python benchmarks/paper_noise_snr.py`
# (benchmarks/results/paper_noise_snr.json).
MEASURED_RATIO_4V94 = {
    (12.0, "subtomogram"): 4.19,
    (16.0, "subtomogram"): 2.17,
    (12.0, "structure"): 3.01,
    (16.0, "structure"): 1.35,
}


def _effective_over_nominal(sim, snr: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``var(noise-free part) / var(noise part) / snr`` per unnormalized subtomogram."""
    ratios = []
    for batch in sim.iter_batches(keep_noise_free=True):
        signal = batch.noise_free.astype(np.float64)
        noise = batch.subtomograms.astype(np.float64) - signal
        ratios.append(signal.var(axis=(1, 2, 3)) / noise.var(axis=(1, 2, 3)) / snr)
    return np.concatenate(ratios)


@pytest.mark.parametrize(("voxel_size_a", "signal_variance"), list(MEASURED_RATIO_4V94))
def test_effective_snr_follows_the_measured_mapping(
    voxel_size_a: float, signal_variance: str
) -> None:
    snr = 0.01
    sim = simulate_subtomograms(
        ["4v94"], n_per_class=8, snr=snr, voxel_size_a=voxel_size_a, noise_model="paper",
        signal_variance=signal_variance, normalize=False, seed=21, device="cpu",
    )  # fmt: skip
    ratio = float(np.median(_effective_over_nominal(sim, snr)))
    assert ratio == pytest.approx(MEASURED_RATIO_4V94[voxel_size_a, signal_variance], rel=0.1)


def test_filters_follow_the_protocol() -> None:
    # R = floor((box / 8) / Ny), Ny = 1 / (2 · voxel size in nm)
    assert paper_bandpass_radius(24, 12.0) == 7
    assert paper_bandpass_radius(24, 16.0) == 9
    assert paper_bandpass_radius(32, 10.0) == 8
    with pytest.raises(InputError, match="band-pass radius"):
        paper_bandpass_radius(24, 1.0)
    radii = torch.tensor([0.0, 7.0, 8.0, 9.0, 7.0 + 2.0 * np.sqrt(3.0) + 0.01])
    np.testing.assert_allclose(
        raised_sphere(radii, 7.0, 2.0).numpy(), [1, 1, np.exp(-0.25), np.exp(-1), 0], rtol=1e-6
    )
    filters = paper_filters(24, 12.0, ImagingParameters())
    assert float(filters.ctf[0, 0, 0]) == 0.0  # no amplitude contrast: nothing at zero frequency
    assert 0 < filters.white_fraction < 1
    assert float(filters.noise_lowpass.max()) == 1.0 and float(filters.noise_lowpass.min()) == 0.0


@pytest.fixture(scope="module")
def two_masses(make_blob):  # type: ignore[no-untyped-def]
    """A light (2 blobs) and a heavy (10 blobs) synthetic structure in a 24³ box."""
    return {"light": make_blob(3, n_blobs=2), "heavy": make_blob(4, n_blobs=10)}


@pytest.mark.parametrize("noise_model", ["paper", "projection"])
def test_unnormalized_keeps_class_scale(two_masses, noise_model: str) -> None:  # type: ignore[no-untyped-def]
    options = {"n_per_class": 6, "snr": 0.01, "voxel_size_a": 16.0, "seed": 5,
               "noise_model": noise_model, "device": "cpu"}  # fmt: skip
    if noise_model == "projection":
        options["mode"] = "fourier"
    raw_sim = simulate_subtomograms(two_masses, normalize=False, **options)
    raw = np.concatenate(list(raw_sim.iter_subtomograms())).astype(np.float64)
    std = raw.std(axis=(1, 2, 3))
    heavy = raw_sim.table["cmStructure"].to_numpy() == "heavy"
    assert std[heavy].min() > 1.5 * std[~heavy].max()  # the scale alone tells the classes
    zscored = np.concatenate(
        list(simulate_subtomograms(two_masses, normalize=True, **options).iter_subtomograms())
    )
    np.testing.assert_allclose(zscored.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(zscored.std(axis=(1, 2, 3)), 1.0, atol=1e-4)
    # the same data up to each subtomogram's affine scale
    for x, z in zip(raw, zscored, strict=True):
        assert np.corrcoef(x.ravel(), z.ravel())[0, 1] > 0.9999


def test_paper_model_is_deterministic_and_batch_independent(two_masses) -> None:  # type: ignore[no-untyped-def]
    def run(batch_size: int) -> np.ndarray:
        sim = simulate_subtomograms(
            two_masses, n_per_class=3, snr=0.05, noise_model="paper", normalize=False,
            voxel_size_a=16.0, seed=9, batch_size=batch_size, device="cpu",
        )  # fmt: skip
        return np.concatenate(list(sim.iter_subtomograms()))

    first = run(4)
    np.testing.assert_array_equal(first, run(4))
    np.testing.assert_allclose(first, run(6), rtol=1e-4, atol=1e-5 * float(np.abs(first).max()))


def test_paper_model_records_its_settings(two_masses) -> None:  # type: ignore[no-untyped-def]
    sim = simulate_subtomograms(
        two_masses, n_per_class=1, snr=0.1, noise_model="paper", normalize=False,
        voxel_size_a=12.0, device="cpu",
    )  # fmt: skip
    params = sim.parameters
    assert params["noise_model"] == "paper" and params["normalize"] is False
    assert params["mode"] is None and params["amplitude_contrast"] == 0.0
    assert params["paper_bandpass_radius_voxels"] == 7
    assert params["paper_signal_variance"] == "subtomogram"
    by_structure = params["paper_structure_signal_variance"]
    assert by_structure["heavy"] > by_structure["light"] > 0
    assert set(sim.table["cmNoiseModel"]) == {"paper"} and set(sim.table["cmNormalized"]) == {0}
    default = simulate_subtomograms(two_masses, n_per_class=1, snr=0.1, device="cpu")
    assert default.parameters["noise_model"] == "projection"
    assert default.parameters["mode"] == "tilt-series" and default.parameters["normalize"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise_model": "gaussian"}, "noise model"),
        ({"noise_model": "paper", "mode": "fourier"}, "projection noise model only"),
        ({"noise_model": "paper", "voxel_size_a": 1.0}, "band-pass radius"),
        ({"normalize": "yes"}, "normalize"),
        ({"noise_model": "paper", "signal_variance": "tomogram"}, "signal variance"),
    ],
)
def test_bad_options(two_masses, options: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        simulate_subtomograms(two_masses, n_per_class=1, snr=0.1, **options)


def test_unnormalized_set_on_disk_keeps_the_raw_values(tmp_path: Path, two_masses) -> None:  # type: ignore[no-untyped-def]
    options = {"n_per_class": 3, "snr": 0.01, "voxel_size_a": 16.0, "noise_model": "paper",
               "normalize": False, "seed": 3, "device": "cpu"}  # fmt: skip
    out = write_simulated_subtomograms(tmp_path / "raw", two_masses, **options)
    expected = np.concatenate(
        list(simulate_subtomograms(two_masses, **options).iter_subtomograms())
    )
    stored = np.asarray(zarr.open_array(str(out / "subtomograms.zarr"), mode="r")[:])
    np.testing.assert_allclose(
        stored, expected, rtol=1e-5, atol=1e-6 * float(np.abs(expected).max())
    )
    assert zarr.open_array(str(out / "subtomograms.zarr"), mode="r").attrs["normalized"] is False
    assert len(ParticleSet.open(out)) == 6
    table = read_particles(out / "particles.star")
    assert set(table["cmNoiseModel"]) == {"paper"} and set(table["cmNormalized"]) == {0}
    record = json.loads((out / "run.json").read_text())
    assert record["parameters"]["noise_model"] == "paper"
    assert record["parameters"]["normalize"] is False
    assert record["results"]["normalized"] is False


def _cli(out: Path, *extra: str) -> list[str]:
    return ["-q", "simulate", "subtomograms", "-s", "3j9i", "-s", "4v94", "--per-class", "2",
            "--snr", "0.01", "--voxel-size", "16", "--seed", "1", "--device", "cpu",
            "-o", str(out), *extra]  # fmt: skip


def test_cli_round_trip_of_noise_model_and_normalize(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, _cli(tmp_path / "paper", "--noise-model", "paper", "--no-normalize")
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "paper" / "run.json").read_text())
    assert record["parameters"]["noise_model"] == "paper"
    assert record["parameters"]["normalize"] is False
    table = read_particles(tmp_path / "paper" / "particles.star")
    assert set(table["cmNoiseModel"]) == {"paper"} and set(table["cmNormalized"]) == {0}
    raw = ParticleSet.open(tmp_path / "paper").read(np.arange(4))
    assert np.abs(raw.std(axis=(1, 2, 3)) - 1.0).min() > 0.01  # not z-scored

    result = runner.invoke(app, _cli(tmp_path / "default"))
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "default" / "run.json").read_text())
    assert record["parameters"]["noise_model"] == "projection"
    assert record["parameters"]["normalize"] is True
    assert record["parameters"]["mode"] == "tilt-series"
    zscored = ParticleSet.open(tmp_path / "default").read(np.arange(4))
    np.testing.assert_allclose(zscored.std(axis=(1, 2, 3)), 1.0, atol=1e-4)
    table = read_particles(tmp_path / "default" / "particles.star")
    assert set(table["cmNoiseModel"]) == {"projection"} and set(table["cmNormalized"]) == {1}

    for extra in (["--noise-model", "magic"], ["--noise-model", "paper", "--mode", "fourier"]):
        result = runner.invoke(app, _cli(tmp_path / "bad", *extra))
        assert result.exit_code == 2, (extra, result.output)
        assert "error:" in result.output
        assert not (tmp_path / "bad").exists()
