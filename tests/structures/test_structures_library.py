"""structure_density and the catalogue: every built-in, centring, units, axes, paths, errors."""

from __future__ import annotations

import gzip
import shutil
import warnings

import gemmi
import numpy as np
import pytest
from scipy import ndimage

from cryomine.errors import InputError
from cryomine.io import read_mrc, write_mrc
from cryomine.structures import (
    PROTEIN_DENSITY_DA_PER_A3,
    StructureCroppedWarning,
    estimate_diameter_a,
    list_structures,
    structure_density,
    structure_info,
    structure_path,
)

NAMES = [info.name for info in list_structures()]

# Approximate masses (kDa) from the shared data set's MANIFEST.md (those include crystal waters,
# which cryomine removes; hence the tolerance).
MANIFEST_MASS_KDA = {
    "1bxn": 240,
    "1qvr": 260,
    "1s3x": 46,
    "1u6g": 205,
    "2cg9": 157,
    "3cf3": 227,
    "3d2f": 215,
    "3gl1": 88,
    "3h84": 73,
    "3qm1": 30,
    "3j9i": 610,
    "5gjv": 290,
    "6v8o": 331,
}


def test_catalogue_has_the_required_structures() -> None:
    required = {
        "6v8o",
        "atp_synthase",
        "3j9i",
        "4v94",
        "4v4r",
        "1bxn",
        "1qvr",
        "3cf3",
        "2cg9",
        "1u6g",
        "3d2f",
        "1s3x",
        "3gl1",
        "3h84",
        "3qm1",
        "5gjv",
        "4v7r",
        "4cr2",
    }
    assert required <= set(NAMES)
    for info in list_structures():
        assert structure_path(info.name).is_file()
        assert info.kind in ("atomic", "map")
        assert info.license and info.source and info.provenance and info.description
        assert info.mass_kda > 0 and info.diameter_a > 0


def test_shipped_data_stay_small() -> None:
    data = structure_path("1bxn").parent
    total = sum(p.stat().st_size for p in data.iterdir())
    assert total < 4.2e6


@pytest.mark.parametrize("name", NAMES)
def test_every_builtin_loads_centred_with_its_mass(name: str) -> None:
    voxel = 12.0
    density = structure_density(name, voxel_size_a=voxel, box_size=32)
    assert density.shape == (32, 32, 32) and density.dtype == np.float32
    assert np.all(np.isfinite(density))
    mass_kda = float(density.sum()) * voxel**3 / 1000.0
    assert mass_kda == pytest.approx(structure_info(name).mass_kda, rel=0.02)
    centre = np.array(ndimage.center_of_mass(density))
    np.testing.assert_allclose(centre, 16.0, atol=0.5)
    # Protein positive; peaks near (not far above) the protein density.
    assert density.max() > 5 * abs(density.min())
    assert 0.3 < density.max() < 1.6 * PROTEIN_DENSITY_DA_PER_A3


@pytest.mark.parametrize("name", sorted(MANIFEST_MASS_KDA))
def test_catalogue_masses_match_the_manifest_and_the_atoms(name: str) -> None:
    info = structure_info(name)
    assert info.mass_kda == pytest.approx(MANIFEST_MASS_KDA[name], rel=0.15)
    if info.kind == "atomic":
        structure = gemmi.read_structure(str(structure_path(name)))
        structure.remove_waters()
        assert info.mass_kda == pytest.approx(structure[0].calculate_mass() / 1000.0, abs=0.1)


@pytest.mark.parametrize("name", ["1bxn", "3qm1", "4v94", "atp_synthase"])
def test_catalogue_diameter_is_the_envelope_extent(name: str) -> None:
    info = structure_info(name)
    density = structure_density(name, voxel_size_a=10.0, resolution_a=20.0)
    assert estimate_diameter_a(density, voxel_size_a=10.0, mass_kda=info.mass_kda) == pytest.approx(
        info.diameter_a, abs=10.0
    )


def test_diameter_of_a_known_shape() -> None:
    # A ball of radius 10 voxels holding its own mass at protein density: extent = 21 voxels.
    grid = np.indices((40, 40, 40)) - 20
    ball = ((grid**2).sum(axis=0) <= 100).astype(float)
    mass_kda = ball.sum() * 8.0 * PROTEIN_DENSITY_DA_PER_A3 / 1000.0  # 2 Å voxels
    assert estimate_diameter_a(ball, voxel_size_a=2.0, mass_kda=mass_kda) == pytest.approx(
        42.0, abs=0.5
    )


def test_gzipped_and_plain_pdb_paths_match_the_builtin(rubisco_copies: dict) -> None:
    builtin = structure_density("1bxn", voxel_size_a=12.0, box_size=24)
    for path in rubisco_copies.values():
        np.testing.assert_allclose(
            structure_density(path, voxel_size_a=12.0, box_size=24), builtin, atol=1e-6
        )
    as_text = structure_density(str(rubisco_copies["gz"]), voxel_size_a=12.0, box_size=24)
    np.testing.assert_allclose(as_text, builtin, atol=1e-6)


def test_map_path_matches_the_builtin_and_estimates_its_mass(tmp_path) -> None:
    info = structure_info("3j9i")
    copy = tmp_path / "proteasome.mrc.gz"
    shutil.copyfile(structure_path("3j9i"), copy)
    builtin = structure_density("3j9i", voxel_size_a=12.0, box_size=24)
    given_mass = structure_density(copy, voxel_size_a=12.0, box_size=24, mass_kda=info.mass_kda)
    np.testing.assert_allclose(given_mass, builtin, atol=1e-6)
    estimated = structure_density(copy, voxel_size_a=12.0, box_size=24)
    assert float(estimated.sum()) * 12.0**3 / 1000.0 == pytest.approx(info.mass_kda, rel=0.25)
    np.testing.assert_allclose(estimated / estimated.sum(), builtin / builtin.sum(), atol=1e-6)


def test_uncompressed_map_with_solvent_offset_and_two_copies(tmp_path) -> None:
    data, voxel = read_mrc(structure_path("4v94"))
    offset = tmp_path / "tric_offset.mrc"
    write_mrc(
        offset, np.asarray(data) - 0.25, voxel
    )  # mean-subtracted maps have a negative solvent
    builtin = structure_density("4v94", voxel_size_a=12.0, box_size=36)
    both = structure_density(
        offset, voxel_size_a=12.0, box_size=36, mass_kda=2 * structure_info("4v94").mass_kda
    )
    # Both copies kept from the file, one from the built-in: the file holds twice the density.
    assert float(both.sum()) == pytest.approx(2 * float(builtin.sum()), rel=0.02)


def test_atoms_along_x_extend_along_the_last_axis(write_pdb) -> None:
    x_line = write_pdb(np.array([[-20.0, 0.0, 0.0], [0.0, 0.0, 0.0], [20.0, 0.0, 0.0]]), "x.pdb")
    density = structure_density(x_line, voxel_size_a=4.0, resolution_a=8.0, box_size=24)
    profiles = [density.sum(axis=tuple(a for a in range(3) if a != axis)) for axis in range(3)]
    widths = [np.sqrt((p * (np.arange(24) - 12) ** 2).sum() / p.sum()) for p in profiles]
    assert widths[2] > 2.5 * widths[0] and widths[2] > 2.5 * widths[1]
    # Three separate peaks along x, 5 voxels apart, centred on n // 2.
    row = density[12, 12]
    peaks = [
        i
        for i in range(1, 23)
        if row[i] > row[i - 1] and row[i] > row[i + 1] and row[i] > 0.1 * row.max()
    ]
    assert peaks == [7, 12, 17]


def test_atoms_along_z_extend_along_the_first_axis(write_pdb) -> None:
    z_line = write_pdb(np.array([[5.0, 5.0, -16.0], [5.0, 5.0, 0.0], [5.0, 5.0, 16.0]]), "z.pdb")
    density = structure_density(z_line, voxel_size_a=4.0, resolution_a=8.0, box_size=24)
    column = density[:, 12, 12]
    peaks = [
        i
        for i in range(1, 23)
        if column[i] > column[i - 1]
        and column[i] > column[i + 1]
        and column[i] > 0.1 * column.max()
    ]
    assert peaks == [8, 12, 16]


def test_names_are_case_insensitive_with_aliases() -> None:
    reference = structure_density("4v94", voxel_size_a=15.0, box_size=20)
    np.testing.assert_array_equal(
        structure_density("TRiC", voxel_size_a=15.0, box_size=20), reference
    )
    np.testing.assert_array_equal(
        structure_density(" 4V94 ", voxel_size_a=15.0, box_size=20), reference
    )


def test_results_are_copies_of_the_cache() -> None:
    first = structure_density("3qm1", voxel_size_a=12.0, box_size=16)
    first[:] = 0.0
    second = structure_density("3qm1", voxel_size_a=12.0, box_size=16)
    assert second.sum() > 0


def test_default_box_holds_the_structure_with_a_margin() -> None:
    for name in ("3qm1", "6v8o", "atp_synthase"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            density = structure_density(name, voxel_size_a=10.0)
        n = density.shape[0]
        assert n % 2 == 0 and n * 10.0 >= structure_info(name).diameter_a
        faces = np.concatenate(
            [density[[0, -1]].ravel(), density[:, [0, -1]].ravel(), density[:, :, [0, -1]].ravel()]
        )
        assert np.abs(faces).max() < 0.02 * density.max()


def test_too_small_box_warns_and_crops() -> None:
    with pytest.warns(StructureCroppedWarning, match="box_size"):
        density = structure_density("4v4r", voxel_size_a=12.0, box_size=12)
    assert density.shape == (12, 12, 12)
    assert float(density.sum()) * 12.0**3 / 1000.0 < structure_info("4v4r").mass_kda


def test_resolution_is_a_gaussian_low_pass() -> None:
    # From a map (fixed source): going from 30 Å to 40 Å multiplies every Fourier amplitude by
    # exp(-2 π² (σ40² − σ30²) f²), σ = resolution / (π √2).
    sharp = structure_density("3j9i", voxel_size_a=10.0, resolution_a=30.0, box_size=40)
    soft = structure_density("3j9i", voxel_size_a=10.0, resolution_a=40.0, box_size=40)
    freqs = np.fft.fftfreq(40, d=10.0)
    f2 = freqs[:, None, None] ** 2 + freqs[None, :, None] ** 2 + freqs[None, None, :] ** 2
    sharp_f, soft_f = np.fft.fftn(sharp), np.fft.fftn(soft)
    expected = np.exp(
        -2 * np.pi**2 * ((40 / (np.pi * np.sqrt(2))) ** 2 - (30 / (np.pi * np.sqrt(2))) ** 2) * f2
    )
    strong = np.abs(sharp_f) > 1e-3 * np.abs(sharp_f).max()
    np.testing.assert_allclose(
        np.abs(soft_f[strong]),
        np.abs(sharp_f[strong]) * expected[strong],
        rtol=0.02,
        atol=1e-4 * np.abs(sharp_f).max(),
    )


def test_voxel_sizes_agree() -> None:
    fine = structure_density("1u6g", voxel_size_a=6.0, resolution_a=30.0, box_size=48)
    coarse = structure_density("1u6g", voxel_size_a=12.0, resolution_a=30.0, box_size=24)
    # Fine voxel 2 i lies where coarse voxel i does (both centres at n // 2).
    assert np.corrcoef(fine[::2, ::2, ::2].ravel(), coarse.ravel())[0, 1] > 0.99
    assert float(fine.sum()) * 6.0**3 == pytest.approx(float(coarse.sum()) * 12.0**3, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"voxel_size_a": 0.0}, "voxel size"),
        ({"voxel_size_a": float("nan")}, "voxel size"),
        ({"voxel_size_a": 10.0, "resolution_a": -5.0}, "resolution"),
        ({"voxel_size_a": 10.0, "box_size": 0}, "box size"),
        ({"voxel_size_a": 10.0, "box_size": 12.5}, "box size"),
        ({"voxel_size_a": 10.0, "mass_kda": 0.0}, "mass"),
    ],
)
def test_bad_parameters_raise_input_error(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        structure_density("1bxn", **kwargs)


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(InputError, match=r"unknown structure 'ribosome_90s'.*1bxn.*atp_synthase"):
        structure_density("ribosome_90s", voxel_size_a=10.0)


def test_bad_files_raise_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="file not found"):
        structure_density(tmp_path / "missing.pdb", voxel_size_a=10.0)
    garbage = tmp_path / "garbage.cif.gz"
    with gzip.open(garbage, "wt") as handle:
        handle.write("this is not an mmCIF file\n")
    with pytest.raises(InputError, match=r"garbage\.cif\.gz"):
        structure_density(garbage, voxel_size_a=10.0)
    no_atoms = tmp_path / "empty.pdb"
    no_atoms.write_text(
        "HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00 20.00           O\nEND\n"
    )
    with pytest.raises(InputError, match="no atoms"):
        structure_density(no_atoms, voxel_size_a=10.0)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="unknown structure file type"):
        structure_density(text, voxel_size_a=10.0)


def test_mmcif_path_matches_the_pdb(tmp_path) -> None:
    structure = gemmi.read_structure(str(structure_path("3qm1")))
    structure.setup_entities()
    cif = tmp_path / "esterase.cif"
    structure.make_mmcif_document().write_file(str(cif))
    cif_gz = tmp_path / "esterase.mmcif.gz"
    with cif.open("rb") as source, gzip.open(cif_gz, "wb") as target:
        shutil.copyfileobj(source, target)
    builtin = structure_density("3qm1", voxel_size_a=8.0, box_size=20)
    for path in (cif, cif_gz):
        np.testing.assert_allclose(
            structure_density(path, voxel_size_a=8.0, box_size=20), builtin, atol=1e-6
        )


def test_structure_info_is_frozen() -> None:
    info = structure_info("1bxn")
    with pytest.raises(AttributeError):
        info.mass_kda = 1.0  # type: ignore[misc]


def test_map_without_positive_density_is_rejected(tmp_path) -> None:
    data, voxel = read_mrc(structure_path("3j9i"))
    inverted = tmp_path / "inverted.mrc"
    write_mrc(inverted, -np.asarray(data), voxel)  # protein dark: wrong contrast for a reference
    with pytest.raises(InputError, match="no positive density"):
        structure_density(inverted, voxel_size_a=12.0, box_size=24)
