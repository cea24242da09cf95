"""The shipped M. pneumoniae 70S tilt stacks reconstruct into a ribosome average that matches the
reconstruction shipped with them (same particles, same angles)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from cryomine.geometry import (
    missing_wedge_mask,
    rotations_from_relion_euler,
    sphere_mask,
    transform_volumes,
)
from cryomine.io import read_warp_tiltstacks
from cryomine.reconstruct import observed_tilt_range_deg, reconstruct_tiltstack_particles
from cryomine.structures import structure_density


def _cc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _flip_z(volume: np.ndarray) -> np.ndarray:
    """Mirror z → −z about voxel n // 2 (n even)."""
    return np.roll(volume[::-1], 1, axis=0)


def _aligned(subtomograms: np.ndarray, table) -> np.ndarray:
    """Each subtomogram turned into the reference frame: ref(x) = particle(A x)."""
    active = rotations_from_relion_euler(
        table[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    )
    out, _ = transform_volumes(torch.from_numpy(subtomograms).double(), active.inv())
    return out.numpy()


def test_all_particles_reconstruct(reconstructed, example) -> None:
    vols, table, voxel = reconstructed.subtomograms, reconstructed.table, reconstructed.voxel_size_a
    assert vols.shape == (40, 32, 32, 32) and vols.dtype == np.float32
    assert np.all(np.isfinite(vols))
    np.testing.assert_allclose(vols.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(vols.std(axis=(1, 2, 3)), 1.0, atol=1e-3)
    assert voxel == 12.0
    assert len(table) == 40 and table["cmParticleId"].tolist() == list(range(1, 41))
    assert table["rlnImagePixelSize"].eq(12.0).all()
    assert table.groupby("rlnTomoName").size().tolist() == [10, 10, 10, 10]
    raw = read_warp_tiltstacks(example.particles_star, example.tomograms_star).particles
    np.testing.assert_allclose(table["rlnCoordinateX"], raw["rlnCoordinateX"].astype(float))
    np.testing.assert_allclose(table["rlnAnglePsi"], raw["rlnAnglePsi"].astype(float))


def test_average_matches_shipped_reconstruction(reconstructed, reference_map) -> None:
    """As written, the files give the z-mirror of the shipped map; aligned ≫ unaligned, others."""
    vols, table = reconstructed.subtomograms, reconstructed.table
    average = _aligned(vols, table).mean(axis=0)
    mirrored_reference = _flip_z(reference_map)
    aligned = _cc(average, mirrored_reference)
    unaligned = _cc(vols.mean(axis=0), mirrored_reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a cropped proteasome is fine as a control
        proteasome = structure_density("3j9i", voxel_size_a=12.0, box_size=32)
    assert aligned > 0.2, aligned  # measured 0.243
    assert aligned > unaligned + 0.15, (aligned, unaligned)  # unaligned 0.040
    assert aligned > _cc(average, reference_map) + 0.15  # the unmirrored map: 0.059
    assert aligned > _cc(average, proteasome) + 0.15
    # protein bright: the average is positive where the reference has its mass
    core = mirrored_reference > np.quantile(mirrored_reference, 0.9)
    assert average[core].mean() > 0.3 * average.std()


def test_flip_hand_reproduces_shipped_reconstruction(example, reconstructed, reference_map) -> None:
    vols, table, _ = reconstruct_tiltstack_particles(example.optimisation_set_star, flip_hand=True)
    average = _aligned(vols, table).mean(axis=0)
    assert _cc(average, reference_map) > 0.2  # measured 0.243
    assert _cc(average, reference_map) > _cc(average, _flip_z(reference_map)) + 0.15
    # the mirrored subtomograms are the z-mirrors of the plain ones (up to the edge plane)
    inner = sphere_mask((32, 32, 32), radius_px=14) > 0.5
    mirrored = np.array([_flip_z(v) for v in reconstructed.subtomograms])
    assert min(_cc(a[inner], b[inner]) for a, b in zip(vols, mirrored, strict=False)) > 0.99
    assert np.allclose(table["rlnAngleTilt"], reconstructed.table["rlnAngleTilt"])
    assert np.allclose(
        np.cos(np.radians(table["rlnAngleRot"] - reconstructed.table["rlnAngleRot"])), -1.0
    )


def test_wiener_restores_low_frequencies(example, reference_map, reconstructed) -> None:
    vols, table, _ = reconstruct_tiltstack_particles(
        example.particles_star, example.tomograms_star, ctf_correction="wiener", flip_hand=True
    )
    assert np.all(np.isfinite(vols))
    average = _aligned(vols, table).mean(axis=0)
    assert _cc(average, reference_map) > 0.4  # measured 0.489: the shipped map is CTF-corrected too


def test_missing_wedge_where_the_tilts_leave_it(reconstructed, example) -> None:
    """Mean power of the tomogram-frame subtomograms is low inside each tomogram's wedge."""
    stacks = read_warp_tiltstacks(example.particles_star, example.tomograms_star)
    shells = (
        np.sqrt(
            sum(
                g**2
                for g in np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(32)),) * 3, indexing="ij")
            )
        )
        * 32
    )
    band = (shells >= 3) & (shells <= 13)
    for name in stacks.particles["rlnTomoName"].unique():
        rows = np.flatnonzero(reconstructed.table["rlnTomoName"] == name)
        visible = stacks.visible[rows[0]]
        tilt_range = observed_tilt_range_deg(stacks.tomograms[name].rotations[visible])
        power = np.mean(
            [
                np.abs(np.fft.fftshift(np.fft.fftn(reconstructed.subtomograms[i]))) ** 2
                for i in rows
            ],
            axis=0,
        )
        observed = missing_wedge_mask((32, 32, 32), tilt_range_deg=tilt_range) > 0.5
        # stay clear of the wedge's edges
        inside = (
            missing_wedge_mask(
                (32, 32, 32),
                tilt_range_deg=(max(-90.0, tilt_range[0] - 8), min(90.0, tilt_range[1] + 8)),
            )
            < 0.5
        )
        assert power[band & inside].mean() < 0.1 * power[band & observed].mean(), name
        # the wedge is not symmetric about z: tilt 0 is ~6–18° off the beam here
        assert tilt_range[0] < -40 and tilt_range[1] > 40


@pytest.mark.parametrize("box", [24])
def test_box_option_crops_about_the_centre(example, reconstructed, box: int) -> None:
    vols, _, _ = reconstruct_tiltstack_particles(
        example.particles_star, example.tomograms_star, box_size=box
    )
    assert vols.shape == (40, box, box, box) and np.all(np.isfinite(vols))
    inner = sphere_mask((box, box, box), radius_px=9) > 0.5
    small, large = (
        (vols, reconstructed.subtomograms) if box < 32 else (reconstructed.subtomograms, vols)
    )
    n, m = small.shape[1], large.shape[1]
    start = m // 2 - n // 2
    cropped = large[:, start : start + n, start : start + n, start : start + n]
    inner = sphere_mask((n, n, n), radius_px=9) > 0.5
    assert min(_cc(a[inner], b[inner]) for a, b in zip(small, cropped, strict=False)) > 0.97
