"""Subtomogram averaging: reference-free, missing-wedge-aware, gold-standard (two half sets).

:func:`average_class` aligns and averages the particles of one class and measures the
resolution by the Fourier shell correlation of independent half maps. The alignment engine
(:func:`align_to_references`, :func:`search_global`, :func:`refine_local`) aligns many particles
to many references at once, each with its own missing wedge; averaging and the
template-matching baseline both use it. See ``docs/averaging.md``.
"""

from cryomine.averaging._align import (
    AlignmentResult,
    accumulate_aligned,
    align_global,
    align_local,
    align_maps,
    aligned_spectra,
    compose_half_alignment,
    map_from_sums,
)
from cryomine.averaging._average import (
    ClassAverage,
    average_class,
    lowpass,
    particle_mask,
    principal_axis_flips,
)
from cryomine.averaging._engine import (
    EngineResult,
    align_to_references,
    local_rotation_offsets,
    refine_local,
    search_global,
)
from cryomine.averaging._fsc import fourier_shell_correlation, resolution_at
from cryomine.averaging._run import (
    average_run,
    oriented_rows,
    particle_set_of_run,
    write_class_outputs,
)

__all__ = [
    "AlignmentResult",
    "ClassAverage",
    "EngineResult",
    "accumulate_aligned",
    "align_global",
    "align_local",
    "align_maps",
    "align_to_references",
    "aligned_spectra",
    "average_class",
    "average_run",
    "compose_half_alignment",
    "fourier_shell_correlation",
    "local_rotation_offsets",
    "lowpass",
    "map_from_sums",
    "oriented_rows",
    "particle_mask",
    "particle_set_of_run",
    "principal_axis_flips",
    "refine_local",
    "resolution_at",
    "search_global",
    "write_class_outputs",
]
