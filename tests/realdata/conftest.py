"""Fixtures for the real-data import tests: the shipped M. pneumoniae set and a synthetic export."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
import torch
from scipy.spatial.transform import Rotation

from cryomine.data import WarpExample, example_warp_dataset
from cryomine.geometry import transform_volumes
from cryomine.reconstruct import project, reconstruct_tiltstack_particles


@dataclass(frozen=True)
class Reconstructed:
    subtomograms: np.ndarray
    table: pd.DataFrame
    voxel_size_a: float


@pytest.fixture(scope="session")
def example() -> WarpExample:
    return example_warp_dataset()


@pytest.fixture(scope="session")
def reconstructed(example: WarpExample) -> Reconstructed:
    """All 40 shipped particles, default options (phase flip, box 32)."""
    subtomograms, table, voxel = reconstruct_tiltstack_particles(
        example.particles_star, example.tomograms_star
    )
    return Reconstructed(subtomograms, table, voxel)


@pytest.fixture(scope="session")
def reference_map(example: WarpExample) -> np.ndarray:
    with mrcfile.open(example.reference_map, permissive=True) as handle:
        return np.array(handle.data, dtype=np.float64)


def _blobs(box: int, rng: np.random.Generator) -> np.ndarray:
    """Eight Gaussian blobs (σ 1.3 voxels), random places within 7 voxels of the centre: chiral."""
    grid = np.stack(np.meshgrid(*(np.arange(box) - box // 2,) * 3, indexing="ij"), axis=-1).astype(
        float
    )
    volume = np.zeros((box, box, box))
    for centre in rng.uniform(-7, 7, size=(8, 3)):
        volume += np.exp(-((grid - centre) ** 2).sum(-1) / (2 * 1.3**2))
    return volume


@dataclass(frozen=True)
class SyntheticExport:
    particles_star: Path
    tomograms_star: Path
    truth_tomo_frame: np.ndarray  # (N, b, b, b) each particle in the tomogram frame
    reference: np.ndarray  # (b, b, b)
    angles_deg: np.ndarray  # (N, 3) RELION rot, tilt, psi


def write_synthetic_export(
    directory: Path,
    *,
    box: int = 24,
    n_particles: int = 3,
    premultiplied: int = 1,
    seed: int = 0,
) -> SyntheticExport:
    """A noise-free WarpTools-style 2-D stack export of a known chiral volume.

    Tilt images are projections (cryomine's projector) of each particle's tomogram-frame density
    through rotations ``R_t = R_z(80°) · R_y(θ_t)``, θ from −60° to 60° in 4° steps: the image
    axes are turned 80° in plane, as in real Warp exports.
    """
    rng = np.random.default_rng(seed)
    reference = _blobs(box, rng)
    angles = np.column_stack(
        [
            rng.uniform(-180, 180, n_particles),
            rng.uniform(20, 160, n_particles),
            rng.uniform(-180, 180, n_particles),
        ]
    )
    active = Rotation.from_euler("ZYZ", angles, degrees=True).inv()
    truth, _ = transform_volumes(
        torch.from_numpy(np.repeat(reference[None], n_particles, 0)).float(), active
    )
    thetas = np.arange(-60.0, 60.1, 4.0)
    rotations = (
        Rotation.from_euler("z", 80.0, degrees=True)
        * Rotation.from_euler("y", thetas[:, None], degrees=True)
    ).as_matrix()
    images = project(truth, rotations).numpy()  # (N, T, b, b)
    stack_dir = directory / "stacks"
    stack_dir.mkdir(parents=True)
    names = []
    for i in range(n_particles):
        path = stack_dir / f"ptcl_{i + 1:03d}.mrcs"
        with mrcfile.new(path) as handle:
            handle.set_data(images[i].astype(np.float32))
            handle.voxel_size = 12.0
        names.append(f"stacks/{path.name}")
    n_tilts = len(thetas)
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnImagePixelSize": [12.0],
            "rlnImageSize": [box],
            "rlnCtfDataAreCtfPremultiplied": [premultiplied],
        }
    )
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01"] * n_particles,
            "rlnCoordinateX": rng.uniform(50, 300, n_particles),
            "rlnCoordinateY": rng.uniform(50, 300, n_particles),
            "rlnCoordinateZ": rng.uniform(20, 80, n_particles),
            "rlnAngleRot": angles[:, 0],
            "rlnAngleTilt": angles[:, 1],
            "rlnAnglePsi": angles[:, 2],
            "rlnOpticsGroup": [1] * n_particles,
            "rlnImageName": names,
            "rlnOriginXAngst": 0.0,
            "rlnOriginYAngst": 0.0,
            "rlnOriginZAngst": 0.0,
            "rlnTomoVisibleFrames": ["[" + ",".join(["1"] * n_tilts) + "]"] * n_particles,
        }
    )
    particles_star = directory / "particles.star"
    starfile.write({"optics": optics, "particles": particles}, particles_star)
    global_table = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01"],
            "rlnTomoSizeX": [4000],
            "rlnTomoSizeY": [4000],
            "rlnTomoSizeZ": [1000],
            "rlnTomoTiltSeriesPixelSize": [1.5],
            "rlnVoltage": [300.0],
            "rlnSphericalAberration": [2.7],
            "rlnAmplitudeContrast": [0.07],
            "rlnTomoHand": [1.0],
        }
    )

    def row_text(matrix: np.ndarray, row: int) -> list[str]:
        return ["[" + ",".join(f"{v:.8f}" for v in (*m[row], 0.0)) + "]" for m in matrix]

    per_tilt = pd.DataFrame(
        {
            "rlnTomoProjX": row_text(rotations, 0),
            "rlnTomoProjY": row_text(rotations, 1),
            "rlnTomoProjZ": row_text(rotations, 2),
            "rlnTomoProjW": ["[0,0,0,1]"] * n_tilts,
            "rlnDefocusU": np.full(n_tilts, 30000.0),
            "rlnDefocusV": np.full(n_tilts, 29000.0),
            "rlnDefocusAngle": np.zeros(n_tilts),
            "rlnCtfScalefactor": np.cos(np.radians(thetas)),
            "rlnMicrographPreExposure": np.arange(n_tilts) * 3.0,
        }
    )
    tomograms_star = directory / "tomograms.star"
    starfile.write({"global": global_table, "TS_01": per_tilt}, tomograms_star)
    return SyntheticExport(particles_star, tomograms_star, truth.numpy(), reference, angles)


@pytest.fixture(scope="session")
def _synthetic_template(tmp_path_factory: pytest.TempPathFactory) -> SyntheticExport:
    return write_synthetic_export(tmp_path_factory.mktemp("synthetic_template"))


@pytest.fixture
def synthetic(tmp_path: Path, _synthetic_template: SyntheticExport) -> SyntheticExport:
    """A private copy of a 3-particle, 31-tilt, 24-px noise-free export (premultiplied)."""
    source = _synthetic_template.particles_star.parent
    shutil.copytree(source, tmp_path / "export")
    return dataclasses.replace(
        _synthetic_template,
        particles_star=tmp_path / "export" / _synthetic_template.particles_star.name,
        tomograms_star=tmp_path / "export" / _synthetic_template.tomograms_star.name,
    )
