"""The shipped structure library: known macromolecules as density maps at any voxel size.

Built-in structures (atomic models and density maps, see ``data/PROVENANCE.md``) and any
PDB/mmCIF model or MRC map become ``(z, y, x)`` float32 density maps in Da Å⁻³, protein positive,
low-passed to a resolution and centred on their centre of mass at voxel ``n // 2``.

>>> from cryomine.structures import list_structures, structure_density
>>> [s.name for s in list_structures()][:3]
['1bxn', '1qvr', '1s3x']
>>> structure_density("1bxn", voxel_size_a=12.0, box_size=24).shape
(24, 24, 24)
"""

from cryomine.structures._catalog import (
    StructureInfo,
    data_directory,
    list_structures,
    structure_info,
    structure_path,
)
from cryomine.structures._library import (
    StructureCroppedWarning,
    estimate_diameter_a,
    structure_density,
)
from cryomine.structures._resample import PROTEIN_DENSITY_DA_PER_A3

__all__ = [
    "PROTEIN_DENSITY_DA_PER_A3",
    "StructureCroppedWarning",
    "StructureInfo",
    "data_directory",
    "estimate_diameter_a",
    "list_structures",
    "structure_density",
    "structure_info",
    "structure_path",
]
