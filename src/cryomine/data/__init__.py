"""Data shipped with cryomine, and where to find it.

``mpneumoniae_ribosomes/``: 40 real *M. pneumoniae* 70S ribosomes (EMPIAR-10499) exported by
WarpTools as 2-D tilt stacks (read with :func:`cryomine.io.read_warp_tiltstacks`, reconstructed
with :func:`cryomine.reconstruct.reconstruct_tiltstack_particles`); see its ``PROVENANCE.md``.
:func:`example_warp_dataset` gives the paths (also re-exported by :mod:`cryomine.io`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryomine.errors import InputError

__all__ = ["WarpExample", "example_warp_dataset"]

_EXAMPLE_DIR = "mpneumoniae_ribosomes"
_EXAMPLE_STEM = "warptools_test_4-tomos_10-ptcls_box-32_angpix-12"


@dataclass(frozen=True)
class WarpExample:
    """Paths of the shipped M. pneumoniae 70S ribosome tilt-stack example (EMPIAR-10499)."""

    particles_star: Path
    tomograms_star: Path
    optimisation_set_star: Path
    reference_map: Path


def example_warp_dataset() -> WarpExample:
    """Paths of the shipped real example: 40 M. pneumoniae 70S ribosomes as 37-tilt 32×32 stacks.

    12 Å/px, 4 tomograms × 10 particles, CTF-premultiplied, with the reconstruction shipped
    alongside them (``reference_map``, 32³ at 12 Å).
    See ``data/mpneumoniae_ribosomes/PROVENANCE.md``.
    """
    root = Path(str(resources.files(__name__) / _EXAMPLE_DIR))
    example = WarpExample(
        particles_star=root / f"{_EXAMPLE_STEM}.star",
        tomograms_star=root / f"{_EXAMPLE_STEM}_tomograms.star",
        optimisation_set_star=root / f"{_EXAMPLE_STEM}_optimisation_set.star",
        reference_map=root / "warptools_test_box-32_angpix-12_reconstruct.mrc",
    )
    if not example.particles_star.is_file():
        raise InputError(f"{root}: the shipped example data are missing; reinstall cryomine")
    return example
