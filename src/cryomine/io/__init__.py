"""File formats: MRC volumes, STAR particle tables, particle sets, plain coordinates, copick.

Inside cryomine volumes are ``(z, y, x)`` arrays and coordinates ``(..., 3)`` in z, y, x voxel
order; conversion to the on-disk x, y, z / Å / Euler-angle conventions happens in this package
only. See ``docs/conventions.md``.
"""

from cryomine.io._atomic import atomic_directory, atomic_path, atomic_write_text
from cryomine.io._mrc import MRC_SUFFIXES, read_mrc, read_mrc_header, write_mrc

__all__ = [
    "MRC_SUFFIXES",
    "atomic_directory",
    "atomic_path",
    "atomic_write_text",
    "read_mrc",
    "read_mrc_header",
    "write_mrc",
]
