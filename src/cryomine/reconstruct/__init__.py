"""Reconstruction: projection, weighted back-projection and the CTF, and real tilt-stack import.

The imaging geometry that both the simulator (:mod:`cryomine.simulate`) and the import of real
data use, and the reconstruction of Warp/RELION 5 2-D tilt-stack particles as subtomograms:

- :func:`ctf`, :func:`ctf_2d` — the weak-phase CTF (defocus in µm, underfocus positive; Å, kV,
  mm), :func:`electron_wavelength_a`, :func:`spatial_frequency_squared` (1/Å²);
- :func:`project`, :func:`backproject` — a real-space ray projector along z and its (ramp-)weighted
  back-projector for any per-image rotation; :func:`tilt_angles`, :func:`tilt_rotations` — a
  single-axis series about y (degrees);
- :func:`tilt_axis_xyz`, :func:`observed_tilt_range_deg` — the tilt axis and range of a measured
  series from its projection matrices;
- :func:`reconstruct_tiltstack_particles` — tilt stacks (read by
  :func:`cryomine.io.read_warp_tiltstacks`) to z-scored subtomograms in the tomogram frame;
  :func:`import_warp_tiltstacks` writes them as a particle set (``cryomine import warp``).

Conventions (``docs/conventions.md``): volumes ``(z, y, x)`` in voxels, images ``(y, x)``;
rotations active on x, y, z column vectors; box and image centre ``n // 2``; beam along z, tilt
axis y for simulated series; voxel and pixel sizes in Å. See ``docs/real_data.md``.
"""

from cryomine.reconstruct._ctf import ctf, ctf_2d, electron_wavelength_a, spatial_frequency_squared
from cryomine.reconstruct._filters import CtfCorrection
from cryomine.reconstruct._projection import backproject, project, tilt_angles, tilt_rotations
from cryomine.reconstruct._tilt_axis import observed_tilt_range_deg, tilt_axis_xyz
from cryomine.reconstruct._tiltstacks import reconstruct_tiltstack_particles
from cryomine.reconstruct._write import import_warp_tiltstacks

__all__ = [
    "CtfCorrection",
    "backproject",
    "ctf",
    "ctf_2d",
    "electron_wavelength_a",
    "import_warp_tiltstacks",
    "observed_tilt_range_deg",
    "project",
    "reconstruct_tiltstack_particles",
    "spatial_frequency_squared",
    "tilt_angles",
    "tilt_axis_xyz",
    "tilt_rotations",
]
