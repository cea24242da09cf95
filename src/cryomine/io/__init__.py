"""File formats: MRC volumes, STAR particle tables, particle sets, plain coordinates, copick.

Inside cryomine volumes are ``(z, y, x)`` arrays and coordinates ``(..., 3)`` in z, y, x voxel
order; conversion to the on-disk x, y, z / Å / Euler-angle conventions happens in this package
only. See ``docs/conventions.md``.
"""

from cryomine.data import WarpExample, example_warp_dataset
from cryomine.io._atomic import atomic_directory, atomic_path, atomic_write_text
from cryomine.io._coords import read_coords, write_coords
from cryomine.io._copick import COPICK_INSTANCE_ID, read_copick_picks, write_copick_picks
from cryomine.io._mrc import MRC_SUFFIXES, read_mrc, read_mrc_header, write_mrc
from cryomine.io._normalize import normalize_subtomograms, volume_statistics
from cryomine.io._particle_set import (
    FORMAT_VERSION,
    ParticleSet,
    merge_particle_sets,
    write_particle_set,
)
from cryomine.io._particle_table import (
    COLUMNS,
    canonical_particles,
    new_particle_table,
    positions_zyx,
    rescale_positions,
    rotations_from_table,
    set_positions_zyx,
    set_rotations,
    tomogram_name,
)
from cryomine.io._stack import as_subtomogram_stack
from cryomine.io._star import (
    TomogramShapes,
    read_particles,
    read_sorted_particles,
    read_star_blocks,
    read_tomogram_sizes,
    write_particles,
    write_sorted_particles,
)
from cryomine.io._warp_tiltstacks import TiltSeriesGeometry, WarpTiltStackSet, read_warp_tiltstacks

__all__ = [
    "COLUMNS",
    "COPICK_INSTANCE_ID",
    "FORMAT_VERSION",
    "MRC_SUFFIXES",
    "ParticleSet",
    "TiltSeriesGeometry",
    "TomogramShapes",
    "WarpExample",
    "WarpTiltStackSet",
    "as_subtomogram_stack",
    "atomic_directory",
    "atomic_path",
    "atomic_write_text",
    "canonical_particles",
    "example_warp_dataset",
    "merge_particle_sets",
    "new_particle_table",
    "normalize_subtomograms",
    "positions_zyx",
    "read_coords",
    "read_copick_picks",
    "read_mrc",
    "read_mrc_header",
    "read_particles",
    "read_sorted_particles",
    "read_star_blocks",
    "read_tomogram_sizes",
    "read_warp_tiltstacks",
    "rescale_positions",
    "rotations_from_table",
    "set_positions_zyx",
    "set_rotations",
    "tomogram_name",
    "volume_statistics",
    "write_coords",
    "write_copick_picks",
    "write_mrc",
    "write_particle_set",
    "write_particles",
    "write_sorted_particles",
]
