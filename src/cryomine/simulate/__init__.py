"""Simulation with ground truth: imaging model, subtomogram sets (projection noise model, or the
DISCA paper's 3-D one) and crowded tomograms. See ``docs/simulation.md``.

The imaging pieces it is built on (CTF, projector, weighted back-projector, tilt geometry) live in
:mod:`cryomine.reconstruct`; they, and the tilt-stack import that moved there, are re-exported
here under their old names.

Conventions (``docs/conventions.md``): volumes ``(z, y, x)``, rotations active on x, y, z
vectors, box centre ``n // 2``, tilt axis y, beam along z; defocus in µm with underfocus
positive; simulated subtomograms and references protein bright, tomograms protein dark.
"""

from cryomine.reconstruct import (
    CtfCorrection,
    backproject,
    ctf,
    ctf_2d,
    electron_wavelength_a,
    import_warp_tiltstacks,
    observed_tilt_range_deg,
    project,
    reconstruct_tiltstack_particles,
    spatial_frequency_squared,
    tilt_angles,
    tilt_axis_xyz,
    tilt_rotations,
)
from cryomine.simulate._imaging import (
    IMAGING_MODES,
    ImagingMode,
    ImagingParameters,
    add_noise_at_snr,
    image_volumes,
)
from cryomine.simulate._paper_noise import NOISE_MODELS
from cryomine.simulate._subtomograms import (
    DEFAULT_VOXEL_SIZE_A,
    NoiseModel,
    SimulatedSubtomograms,
    SubtomogramBatch,
    load_structure_densities,
    simulate_subtomograms,
)
from cryomine.simulate._tomogram import SimulatedTomogram, simulate_tomogram
from cryomine.simulate._write import write_simulated_subtomograms, write_simulated_tomogram

__all__ = [
    "DEFAULT_VOXEL_SIZE_A",
    "IMAGING_MODES",
    "NOISE_MODELS",
    "CtfCorrection",
    "ImagingMode",
    "ImagingParameters",
    "NoiseModel",
    "SimulatedSubtomograms",
    "SimulatedTomogram",
    "SubtomogramBatch",
    "add_noise_at_snr",
    "backproject",
    "ctf",
    "ctf_2d",
    "electron_wavelength_a",
    "image_volumes",
    "import_warp_tiltstacks",
    "load_structure_densities",
    "observed_tilt_range_deg",
    "project",
    "reconstruct_tiltstack_particles",
    "simulate_subtomograms",
    "simulate_tomogram",
    "spatial_frequency_squared",
    "tilt_angles",
    "tilt_axis_xyz",
    "tilt_rotations",
    "write_simulated_subtomograms",
    "write_simulated_tomogram",
]
