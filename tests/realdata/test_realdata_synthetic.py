"""Geometry, options and bad input of the tilt-stack import, on small synthetic exports."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import starfile
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import sphere_mask
from cryomine.io import read_warp_tiltstacks
from cryomine.reconstruct import (
    observed_tilt_range_deg,
    reconstruct_tiltstack_particles,
    tilt_axis_xyz,
    tilt_rotations,
)


def _cc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _flip_z(volume: np.ndarray) -> np.ndarray:
    return np.roll(volume[::-1], 1, axis=0)


def test_reconstruction_matches_truth_not_its_mirror(synthetic) -> None:
    """Stacks projected with cryomine's projector through R_t come back in the tomogram frame."""
    vols, table, voxel = reconstruct_tiltstack_particles(
        synthetic.particles_star, synthetic.tomograms_star
    )
    assert vols.shape == (3, 24, 24, 24) and voxel == 12.0
    for rec, truth in zip(vols, synthetic.truth_tomo_frame, strict=False):
        assert _cc(rec, truth) > 0.75  # measured 0.83–0.87 (missing wedge ±60°)
        assert _cc(rec, truth) > _cc(rec, _flip_z(truth)) + 0.4
    np.testing.assert_allclose(
        table[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]], synthetic.angles_deg
    )


def test_origin_shift_recentres_the_particle(tmp_path: Path, synthetic) -> None:
    """A particle at −origin from the stack centre moves to the box centre; coordinates follow."""
    plain, plain_table, _ = reconstruct_tiltstack_particles(
        synthetic.particles_star, synthetic.tomograms_star
    )
    text = synthetic.particles_star.read_text()
    origin_a = np.array([24.0, -12.0, 36.0])  # x, y, z Å = (2, -1, 3) px
    shifted_star = synthetic.particles_star.with_name("shifted.star")
    lines = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 10 and fields[0] == "TS_01":
            fields[-4:-1] = [f"{v:.1f}" for v in origin_a]
        lines.append(" ".join(fields) if len(fields) > 10 and fields[0] == "TS_01" else line)
    shifted_star.write_text("\n".join(lines) + "\n")
    assert "36.0" in shifted_star.read_text()
    shifted, table, _ = reconstruct_tiltstack_particles(shifted_star, synthetic.tomograms_star)
    shift_zyx = (origin_a / 12.0)[::-1].astype(int)  # content moves by +origin
    inner = sphere_mask((24, 24, 24), radius_px=7) > 0.5
    for rec, ref in zip(shifted, plain, strict=False):
        moved = np.roll(ref, tuple(shift_zyx), axis=(0, 1, 2))
        assert _cc(rec[inner], moved[inner]) > 0.95
        assert _cc(rec[inner], moved[inner]) > _cc(rec[inner], ref[inner]) + 0.2
    np.testing.assert_allclose(
        table[["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]].to_numpy(),
        plain_table[["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]].to_numpy()
        - origin_a / 12.0,
    )


def test_box_larger_than_the_stacks_pads(synthetic) -> None:
    small, _, _ = reconstruct_tiltstack_particles(
        synthetic.particles_star, synthetic.tomograms_star
    )
    large, _, _ = reconstruct_tiltstack_particles(
        synthetic.particles_star, synthetic.tomograms_star, box_size=30
    )
    assert large.shape == (3, 30, 30, 30) and np.all(np.isfinite(large))
    inner = sphere_mask((24, 24, 24), radius_px=8) > 0.5
    for a, b in zip(small, large[:, 3:27, 3:27, 3:27], strict=False):
        assert _cc(a[inner], b[inner]) > 0.97


def test_ctf_modes(tmp_path: Path, synthetic) -> None:
    """Premultiplied: phase flip is a no-op. Not premultiplied: it flips beyond the first zero."""
    pre = synthetic
    blocks = starfile.read(pre.particles_star, always_dict=True)
    blocks["optics"]["rlnCtfDataAreCtfPremultiplied"] = 0
    plain_star = pre.particles_star.with_name("not_premultiplied.star")
    starfile.write(blocks, plain_star)
    plain = dataclasses.replace(pre, particles_star=plain_star)
    none, _, _ = reconstruct_tiltstack_particles(
        pre.particles_star, pre.tomograms_star, ctf_correction="none"
    )
    flipped, _, _ = reconstruct_tiltstack_particles(pre.particles_star, pre.tomograms_star)
    np.testing.assert_array_equal(none, flipped)
    flipped_plain, _, _ = reconstruct_tiltstack_particles(
        plain.particles_star, plain.tomograms_star
    )
    assert not np.array_equal(flipped_plain, none)
    # 3 µm at 12 Å/px: the first CTF zero is near Nyquist, so flipping changes little
    assert min(_cc(a, b) for a, b in zip(flipped_plain, none, strict=False)) > 0.9
    for mode in ("wiener",):
        vols, _, _ = reconstruct_tiltstack_particles(
            plain.particles_star, plain.tomograms_star, ctf_correction=mode
        )
        assert np.all(np.isfinite(vols))


def test_invisible_tilts_are_ignored(tmp_path: Path, synthetic) -> None:
    """Garbage in frames marked invisible must not reach the reconstruction."""
    import mrcfile

    stacks = read_warp_tiltstacks(synthetic.particles_star, synthetic.tomograms_star)
    n_tilts = len(stacks.visible[0])
    hidden = [0, 5, n_tilts - 1]
    flags = ["0" if t in hidden else "1" for t in range(n_tilts)]
    text = synthetic.particles_star.read_text().replace(
        "[" + ",".join(["1"] * n_tilts) + "]", "[" + ",".join(flags) + "]"
    )
    masked_star = synthetic.particles_star.with_name("masked.star")
    masked_star.write_text(text)
    reference, _, _ = reconstruct_tiltstack_particles(masked_star, synthetic.tomograms_star)
    for path in stacks.image_paths:
        with mrcfile.open(path, mode="r+") as handle:
            data = handle.data.copy()
            data[hidden] = np.random.default_rng(1).normal(0, 100, size=data[hidden].shape)
            handle.set_data(data)
    vols, _, _ = reconstruct_tiltstack_particles(masked_star, synthetic.tomograms_star)
    np.testing.assert_allclose(vols, reference, atol=1e-5)


def test_tilt_axis_and_range() -> None:
    rotations = tilt_rotations(np.arange(-50.0, 61.0, 10.0))
    np.testing.assert_allclose(tilt_axis_xyz(rotations), [0.0, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(observed_tilt_range_deg(rotations), (-50.0, 60.0))
    about_x = Rotation.from_euler(
        "x", np.arange(-60.0, 61.0, 10.0)[:, None], degrees=True
    ).as_matrix()
    with pytest.raises(InputError, match="not within 10° of the y axis"):
        observed_tilt_range_deg(about_x)


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("tomograms", ",0.00000000]", ",0.00000000,1]", "4 numbers per tilt"),
        ("tomograms", "[", "(", "not a bracketed list"),
        ("particles", ",1,1,1]", ",1,1]", "must hold 31 zeros and ones"),
        ("particles", "stacks/ptcl_002.mrcs", "stacks/missing.mrcs", "missing.mrcs not found"),
        ("particles", "TS_01", "TS_99", "TS_99 are not in"),
        ("particles", "rlnImagePixelSize", "rlnSomethingElse", "rlnImagePixelSize"),
    ],
)
def test_bad_files_raise_input_error(
    synthetic, file: str, old: str, new: str, message: str
) -> None:
    _edit(synthetic.particles_star if file == "particles" else synthetic.tomograms_star, old, new)
    with pytest.raises(InputError, match=re.escape(message)):
        reconstruct_tiltstack_particles(synthetic.particles_star, synthetic.tomograms_star)


def test_non_rotation_matrix_rejected(synthetic) -> None:
    text = synthetic.tomograms_star.read_text()
    first = re.search(r"\[([-0-9.e]+),", text)
    assert first is not None
    synthetic.tomograms_star.write_text(text.replace(first.group(0), "[3.0,", 1))
    with pytest.raises(InputError, match="not rotations"):
        reconstruct_tiltstack_particles(synthetic.particles_star, synthetic.tomograms_star)


def test_bad_options_and_missing_tomograms(synthetic) -> None:
    with pytest.raises(InputError, match="tomograms STAR must be given"):
        reconstruct_tiltstack_particles(synthetic.particles_star)
    with pytest.raises(InputError, match="ctf correction"):
        reconstruct_tiltstack_particles(
            synthetic.particles_star, synthetic.tomograms_star, ctf_correction="flip"
        )  # type: ignore[arg-type]
    with pytest.raises(InputError, match="box size"):
        reconstruct_tiltstack_particles(
            synthetic.particles_star, synthetic.tomograms_star, box_size=2
        )
    with pytest.raises(InputError, match="wiener constant"):
        reconstruct_tiltstack_particles(
            synthetic.particles_star, synthetic.tomograms_star, wiener_constant=0.0
        )
    with pytest.raises(InputError, match="file not found"):
        reconstruct_tiltstack_particles(
            synthetic.particles_star, synthetic.tomograms_star.with_name("nope.star")
        )


def test_batching_does_not_change_the_result(synthetic) -> None:
    """Particles are batched by tomogram and visible tilts; batch size 1 gives the same volumes."""
    n_tilts = 31
    all_visible = "[" + ",".join(["1"] * n_tilts) + "]"
    some_hidden = "[" + ",".join("0" if t in (3, 17) else "1" for t in range(n_tilts)) + "]"
    text = synthetic.particles_star.read_text()
    first = text.index(all_visible)
    second = text.index(all_visible, first + 1)
    synthetic.particles_star.write_text(
        text[:second] + some_hidden + text[second + len(all_visible) :]
    )
    calls: list[tuple[int, int]] = []
    batched, _, _ = reconstruct_tiltstack_particles(
        synthetic.particles_star,
        synthetic.tomograms_star,
        progress=lambda done, total: calls.append((done, total)),
    )
    single, _, _ = reconstruct_tiltstack_particles(
        synthetic.particles_star, synthetic.tomograms_star, batch_size=1
    )
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert calls[-1] == (3, 3) and len(calls) == 3  # particles 1 | 2 | 3: the middle one differs
    with pytest.raises(InputError, match="batch size"):
        reconstruct_tiltstack_particles(
            synthetic.particles_star, synthetic.tomograms_star, batch_size=0
        )
