"""What a reference is (one decision), and example windows simulated from a structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cryomine.simulate
from cryomine.errors import InputError
from cryomine.io import write_mrc
from cryomine.picker import REFERENCE_ORIENTATIONS, reference_kind, simulate_reference_windows
from cryomine.structures import structure_path


def test_reference_kind_tells_subvolumes_structures_and_bad_values(tmp_path: Path) -> None:
    subvolume = tmp_path / "ref.mrc"
    write_mrc(subvolume, np.zeros((24, 24, 24), np.float32), 10.0)
    assert reference_kind(subvolume) == "subvolume"
    assert reference_kind(str(subvolume)) == "subvolume"
    for name in ("4v4r", "3J9I", "ribosome_70s", "cav1.1"):  # names, aliases, any case
        assert reference_kind(name) == "structure", name
    model = structure_path("1bxn")  # a shipped .pdb.gz atomic model
    assert reference_kind(model) == "structure" and reference_kind(str(model)) == "structure"
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    bad = {
        str(tmp_path / "missing.mrc"): "MRC subvolume file not found",
        str(tmp_path / "missing.cif"): "atomic model file not found",
        "no_such_structure": "expected an MRC subvolume file",
        str(notes): "a built-in structure name (1bxn",
    }
    for value, message in bad.items():
        with pytest.raises(InputError, match="--ref") as caught:
            reference_kind(value, what="--ref")
        assert repr(value) in str(caught.value) and message in str(caught.value)
    with pytest.raises(InputError, match="expected an MRC"):
        reference_kind(Path("4v4r"))  # a Path is a file, never a name


def test_simulated_windows_are_centred_protein_dark_at_the_given_voxel_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a spherical blob: every orientation images the same, so each window must match it
    z, y, x = np.mgrid[:20, :20, :20] - 10
    blob = np.exp(-(z**2 + y**2 + x**2) / (2 * 2.5**2)).astype(np.float32)
    path = tmp_path / "blob.mrc"
    write_mrc(path, blob, 12.0)
    calls: list[dict[str, object]] = []
    original = cryomine.simulate.simulate_subtomograms

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cryomine.simulate, "simulate_subtomograms", spy)
    windows, parameters = simulate_reference_windows(
        path, window=16, voxel_size_a=12.0, n_orientations=3, seed=1
    )
    assert len(calls) == 1
    assert calls[0]["voxel_size_a"] == 12.0 and calls[0]["max_shift_px"] == 0.0
    assert windows.shape == (3, 16, 16, 16) and windows.dtype == np.float32
    np.testing.assert_allclose(windows.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(windows.std(axis=(1, 2, 3)), 1.0, atol=1e-4)
    assert parameters["voxel_size_a"] == 12.0 and parameters["box_size"] >= 16
    assert parameters["n_orientations"] == 3 and parameters["snr"] is None
    assert parameters["window"] == 16 and parameters["seed"] == 1
    # protein dark and centred at window // 2: anti-correlated with the blob's central window
    low = parameters["box_size"] // 2 - 8
    z, y, x = np.mgrid[:16, :16, :16] + low - parameters["box_size"] // 2
    sphere = np.exp(-(z**2 + y**2 + x**2) / (2 * 2.5**2)).ravel()
    for window in windows:
        assert np.corrcoef(window.ravel(), sphere)[0, 1] < -0.7  # measured -0.82
    assert np.corrcoef(windows.reshape(3, -1)).min() > 0.99  # same image in every orientation
    noisy, noisy_parameters = simulate_reference_windows(
        path, window=16, voxel_size_a=12.0, n_orientations=3, snr=0.1, seed=1
    )
    assert noisy_parameters["snr"] == 0.1
    assert np.corrcoef(noisy[0].ravel(), windows[0].ravel())[0, 1] < 0.5  # measured 0.28


def test_a_built_in_name_gives_the_default_number_of_windows() -> None:
    windows, parameters = simulate_reference_windows("3j9i", window=24, voxel_size_a=10.0)
    assert windows.shape == (REFERENCE_ORIENTATIONS, 24, 24, 24)
    assert parameters["structures"] == ["3j9i"] and parameters["box_size"] >= 24
    assert parameters["tilt_range_deg"] == [-60.0, 60.0] and parameters["defocus_um"] == 5.0
    with pytest.raises(InputError, match="orientations 0"):
        simulate_reference_windows("3j9i", window=24, voxel_size_a=10.0, n_orientations=0)
