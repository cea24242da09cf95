"""Per-tilt template weighting (tilt angles + dose): slices, exposure filter, CLI and job.json."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.geometry import frequency_grids, missing_wedge_mask
from cryomine.io import write_mrc
from cryomine.matching import (
    critical_exposure,
    make_template,
    read_job,
    read_tilt_file,
    tilt_weight,
)
from cryomine.matching._job import read_job_template

BOX = 32
VOXEL_A = 10.0
runner = CliRunner()


def _plane_distance(theta_deg: float) -> np.ndarray:
    """Distance (Fourier voxels) of each rfft voxel from the central plane of tilt ``theta``."""
    kz, _, kx = frequency_grids((BOX, BOX, BOX), rfft=True)
    theta = np.radians(theta_deg)
    distance = np.abs(kz * BOX * np.cos(theta) - kx * BOX * np.sin(theta))
    return np.broadcast_to(distance, (BOX, BOX, BOX // 2 + 1))


def test_zero_in_the_wedge_and_positive_on_the_tilt_planes():
    angles = np.arange(-60.0, 61.0, 15.0)
    weight = tilt_weight(BOX, VOXEL_A, angles, 3.0 * np.arange(len(angles)))
    assert weight.shape == (BOX, BOX, BOX // 2 + 1) and weight.dtype == np.float32
    assert 0.0 <= weight.min() and weight.max() <= 1.0
    wedge = missing_wedge_mask((BOX,) * 3, tilt_range_deg=(-60, 60), rfft=True)
    near_edge = np.minimum(_plane_distance(-60), _plane_distance(60)) < 1.0
    assert np.all(weight[(wedge == 0) & ~near_edge] == 0)  # the missing wedge
    for theta in angles:
        on_plane = _plane_distance(theta) < 1e-9
        assert np.all(weight[on_plane] > 0), theta
    assert weight[0, 0, 0] == pytest.approx(1.0)


def test_an_asymmetric_series_follows_the_wedge_sign_convention():
    angles = np.arange(0.0, 61.0, 2.0)
    weight = tilt_weight(BOX, VOXEL_A, angles, np.zeros(len(angles)))
    wedge = missing_wedge_mask((BOX,) * 3, tilt_range_deg=(0, 60), rfft=True)
    near_edge = np.minimum(_plane_distance(0), _plane_distance(60)) < 1.0
    assert np.all(weight[(wedge == 0) & ~near_edge] == 0)
    assert np.all(weight[wedge > 0] > 0)


def test_higher_dose_attenuates_high_frequencies_more():
    angles = np.array([-30.0, 0.0, 30.0])
    k = np.sqrt(sum(g**2 for g in frequency_grids((BOX,) * 3, rfft=True))) / VOXEL_A
    k = np.broadcast_to(k, (BOX, BOX, BOX // 2 + 1))
    on_zero_tilt = _plane_distance(0.0) < 1e-9
    low = on_zero_tilt & (k > 0.004) & (k < 0.016)
    high = on_zero_tilt & (k > 0.035)
    weights = [tilt_weight(BOX, VOXEL_A, angles, [0.0, dose, 0.0]) for dose in (0.0, 20, 80)]
    # only the 0° tilt's dose changes: compare away from the ±30° planes
    away = np.minimum(_plane_distance(-30), _plane_distance(30)) >= 1.0
    low, high = low & away, high & away
    assert low.sum() > 5 and high.sum() > 5
    assert np.allclose(weights[0][low | high], 1.0)
    for lighter, heavier in itertools.pairwise(weights):
        assert np.all(heavier[low | high] < lighter[low | high])
    # relative loss: high frequencies lose more than low ones
    assert weights[2][high].mean() < 0.5 * weights[2][low].mean()
    expected = np.exp(-80 / (2 * critical_exposure(k[high])))
    np.testing.assert_allclose(weights[2][high], expected, rtol=1e-5)
    assert critical_exposure(np.array([0.0]))[0] == np.inf


def test_with_no_dose_and_dense_tilts_the_support_is_the_binary_wedge():
    angles = np.arange(-60.0, 60.5, 1.0)
    weight = tilt_weight(BOX, VOXEL_A, angles, np.zeros(len(angles)))
    wedge = missing_wedge_mask((BOX,) * 3, tilt_range_deg=(-60, 60), rfft=True)
    near_edge = np.minimum(_plane_distance(-60), _plane_distance(60)) < 1.0
    assert np.array_equal((weight > 0)[~near_edge], (wedge > 0)[~near_edge])
    assert np.all(weight[wedge > 0] > 0)
    assert np.allclose(weight[wedge > 0], 1.0)  # dense slices overlap: clipped to 1


def test_make_template_uses_the_weight_and_rebuilds_it(blob, tmp_path):
    angles = np.arange(-60.0, 61.0, 10.0)
    doses = 4.0 * np.arange(len(angles))
    template = make_template(
        blob, voxel_size_a=VOXEL_A, defocus_um=3.0, tilt_angles_deg=angles,
        accumulated_dose=doses,
    )  # fmt: skip
    binary = make_template(blob, voxel_size_a=VOXEL_A, defocus_um=3.0)
    assert "tilt_weighting" in template.parameters and "tilt_weighting" not in binary.parameters
    weight = tilt_weight(16, VOXEL_A, angles, doses)
    ratio = np.divide(
        template.fourier_filter, binary.fourier_filter,
        out=np.zeros_like(weight), where=binary.fourier_filter != 0,
    )  # fmt: skip
    inside = (binary.fourier_filter != 0) & (weight > 0)
    np.testing.assert_allclose(ratio[inside], weight[inside], rtol=1e-5)  # weight x the same CTF
    from cryomine.matching._template import rebuild_template

    rebuilt = rebuild_template(template.density, template.mask, template.parameters)
    np.testing.assert_array_equal(rebuilt.fourier_filter, template.fourier_filter)


def test_dose_and_angle_counts_must_match(blob, tmp_path):
    with pytest.raises(InputError, match="3 values for 4 tilt angles"):
        tilt_weight(BOX, VOXEL_A, [-30, 0, 30, 45], [0, 1, 2])
    with pytest.raises(InputError, match="tilt_angles_deg"):
        make_template(blob, voxel_size_a=VOXEL_A, accumulated_dose=[0.0, 1.0])
    path = tmp_path / "mixed.tlt"
    path.write_text("-30 0\n0 3\n30\n")
    with pytest.raises(InputError, match="2 of 3 tilts give an accumulated dose"):
        read_tilt_file(path)
    path.write_text("-30 0\n0 -3\n")
    with pytest.raises(InputError, match="accumulated doses"):
        read_tilt_file(path)
    path.write_text("# angle dose\n-30 6\n0 0\n30 3\n")
    angles, doses = read_tilt_file(path)
    np.testing.assert_array_equal(angles, [-30, 0, 30])
    np.testing.assert_array_equal(doses, [6, 0, 3])
    from cryomine.matching import read_tilt_angles

    path.write_text("-30 0\n0 x\n30\n")  # without doses the second column is ignored
    np.testing.assert_array_equal(read_tilt_angles(path), [-30, 0, 30])


@pytest.fixture()
def small_inputs(tmp_path, blob):
    tomogram = np.random.default_rng(0).normal(size=(16, 20, 20)).astype(np.float32)
    write_mrc(tmp_path / "tomo.mrc", tomogram, VOXEL_A)
    write_mrc(tmp_path / "template.mrc", blob, VOXEL_A)
    (tmp_path / "order.tlt").write_text("0\n10\n-10\n20\n-20\n")
    return tmp_path


def _search(folder, *extra):
    return runner.invoke(
        app,
        ["match", "search", str(folder / "tomo.mrc"), "--template", str(folder / "template.mrc"),
         "--angular-step", "90", "--tile", "none", "--contrast", "bright", *extra],
    )  # fmt: skip


def test_cli_accepts_the_dose_and_records_it(small_inputs):
    folder = small_inputs
    job_dir = folder / "job"
    result = _search(
        folder, "-o", str(job_dir), "--tilt-angles", str(folder / "order.tlt"),
        "--dose-per-tilt", "3", "--defocus-um", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = read_job(job_dir)
    assert job["parameters"]["dose_per_tilt"] == 3.0
    assert job["parameters"]["accumulated_dose_source"] == "file order x --dose-per-tilt"
    weighting = job["template"]["tilt_weighting"]
    assert weighting["tilt_angles_deg"] == [0, 10, -10, 20, -20]
    assert weighting["accumulated_dose"] == [0, 3, 6, 9, 12]
    rebuilt = read_job_template(job_dir, job)
    expected = make_template(
        folder / "template.mrc", voxel_size_a=VOXEL_A, contrast="bright", defocus_um=2.0,
        tilt_angles_deg=[0, 10, -10, 20, -20], accumulated_dose=[0, 3, 6, 9, 12],
    )  # fmt: skip
    np.testing.assert_array_equal(rebuilt.fourier_filter, expected.fourier_filter)
    # without --dose-per-tilt: the binary wedge of the file's extremes, as before
    plain = folder / "plain"
    result = _search(folder, "-o", str(plain), "--tilt-angles", str(folder / "order.tlt"))
    assert result.exit_code == 0, result.output
    job = read_job(plain)
    assert "tilt_weighting" not in job["template"] and "dose_per_tilt" not in job["parameters"]
    assert job["template"]["tilt_range_deg"] == [-20.0, 20.0]


def test_cli_dose_errors_are_one_line(small_inputs):
    folder = small_inputs
    (folder / "mixed.tlt").write_text("0 0\n10 3\n-10\n")
    cases = [
        (["--dose-per-tilt", "3"], "--tilt-angles"),
        (["--tilt-angles", str(folder / "order.tlt"), "--dose-per-tilt", "-1"], "--dose-per-tilt"),
        (["--tilt-angles", str(folder / "mixed.tlt"), "--dose-per-tilt", "3"], "2 of 3 tilts"),
    ]
    for extra, expected in cases:
        result = _search(folder, "-o", str(folder / "bad"), *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert expected in result.output and len(result.output.strip().splitlines()) == 1
