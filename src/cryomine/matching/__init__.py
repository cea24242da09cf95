"""Template matching in tomograms: FLCF search, the false-alarm cut-off, a significance test.

A template (a structure at the tomogram's voxel size, filtered by the missing wedge and the CTF,
under a mask) is correlated with the whole tomogram at every voxel and every rotation of a
uniform SO(3) grid (:func:`search_tiles`, the locally normalised cross-correlation of Roseman
2003); peaks of the best score above a statistical cut-off become picks (:func:`extract_peaks`,
:func:`false_alarm_threshold`); a Monte Carlo test against pseudo-structures gives each pick a
p-value (:func:`template_p_values`). See ``docs/matching.md``.

Conventions (``docs/conventions.md``): volumes ``(z, y, x)``; rotations active on x, y, z vectors
about the box centre ``n // 2``, mapping the template onto the particle; protein dark in the
tomogram unless ``contrast="bright"``.
"""

from cryomine.matching._extract import Peaks, extract_peaks, false_alarm_threshold
from cryomine.matching._flcf import TileScores, flcf_max, prepare_rotated, score_tile
from cryomine.matching._job import JOB_FILE, read_job, read_rotations, run_search, write_rotations
from cryomine.matching._rotations import parse_symmetry, search_rotations
from cryomine.matching._search import Tile, plan_tiles, read_tile, search_tiles, tomogram_mean
from cryomine.matching._template import (
    Template,
    critical_exposure,
    make_template,
    read_tilt_angles,
    read_tilt_file,
    tilt_weight,
)

__all__ = [
    "JOB_FILE",
    "Peaks",
    "Template",
    "Tile",
    "TileScores",
    "critical_exposure",
    "extract_peaks",
    "false_alarm_threshold",
    "flcf_max",
    "make_template",
    "parse_symmetry",
    "plan_tiles",
    "prepare_rotated",
    "read_job",
    "read_rotations",
    "read_tile",
    "read_tilt_angles",
    "read_tilt_file",
    "run_search",
    "score_tile",
    "search_rotations",
    "search_tiles",
    "tilt_weight",
    "tomogram_mean",
    "write_rotations",
]
