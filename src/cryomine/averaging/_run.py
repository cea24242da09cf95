"""Averaging the classes of a sort run directory and writing the results (``cryomine average``).

Inputs: ``RUN_DIR/particles.star`` (the particle set's rows in stack order plus
``rlnClassNumber``) and the particle set it was sorted from — by default the
``parameters.particles_dir`` that ``cryomine sort`` records in ``RUN_DIR/run.json`` (a path as
given on its command line: tried as it is, then relative to ``RUN_DIR``'s parent).

Where the sort aligned its particles (MPP, ``--method disca-mpp``, ``cryomine refine``: its
``particles.star`` has ``cmAlignmentScore`` and the angles), each class's refinement starts from
those orientations instead of a global search (``start="auto"``; ``docs/mpp.md`` has the
measurement).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from cryomine._runrecord import recording_run
from cryomine.averaging._average import ClassAverage, average_class
from cryomine.errors import InputError
from cryomine.io import (
    COLUMNS,
    ParticleSet,
    positions_zyx,
    read_sorted_particles,
    rotations_from_table,
    set_rotations,
    write_mrc,
    write_particles,
)
from cryomine.io._atomic import atomic_directory, atomic_write_text

__all__ = ["average_run", "oriented_rows", "particle_set_of_run", "write_class_outputs"]

logger = logging.getLogger(__name__)

#: RELION's half-set column (1 or 2).
RANDOM_SUBSET = "rlnRandomSubset"
#: Constrained cross-correlation of each particle with its class average.
ALIGNMENT_SCORE = "cmAlignmentScore"
#: Where a class's refinement starts: the run's orientations when it has them, or always a
#: global search, or always the run's orientations.
STARTS = ("auto", "global", "orientations")


def particle_set_of_run(run_dir: Path, particles_dir: Path | None = None) -> ParticleSet:
    """Open the particle set a sort run was made from (``particles_dir`` overrides run.json)."""
    if particles_dir is not None:
        return ParticleSet.open(particles_dir)
    record_path = run_dir / "run.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        named = record["parameters"]["particles_dir"]
    except FileNotFoundError as error:
        raise InputError(f"{record_path}: not found; pass --particles DIR") from error
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(f"{record_path}: names no particles_dir; pass --particles DIR") from error
    for candidate in (Path(named), run_dir.parent / named):
        if candidate.is_dir():
            return ParticleSet.open(candidate)
    raise InputError(f"{record_path}: particle set {named!r} not found; pass --particles DIR")


def _class_table(run_dir: Path, particles: ParticleSet) -> pd.DataFrame:
    table = read_sorted_particles(run_dir)
    if len(table) != particles.n_particles:
        raise InputError(
            f"{run_dir / 'particles.star'}: {len(table)} rows but the particle set "
            f"{particles.directory} holds {particles.n_particles} subtomograms"
        )
    ids = particles.table[COLUMNS.particle_id].to_numpy()
    if not np.array_equal(table[COLUMNS.particle_id].to_numpy(), ids):
        raise InputError(
            f"{run_dir / 'particles.star'}: cmParticleId does not match the particle set "
            f"{particles.directory} row by row"
        )
    return table


def oriented_rows(table: pd.DataFrame, result: ClassAverage, voxel_size_a: float) -> pd.DataFrame:
    """Rows with the found orientation, centre (as origin shifts) and half set."""
    rows = table.copy()
    pixel = rows[COLUMNS.pixel_size].to_numpy(dtype=np.float64)
    centres = positions_zyx(rows) + result.shifts_zyx * (voxel_size_a / pixel)[:, None]
    set_rotations(rows, result.rotations)  # zeroes subtomogram angles, so origins are unrotated
    coords_xyz = rows[list(COLUMNS.xyz)].to_numpy(dtype=np.float64)
    origin = (coords_xyz - centres[:, ::-1]) * pixel[:, None]
    for axis, name in enumerate(COLUMNS.origin_xyz_angst):
        rows[name] = origin[:, axis]
    rows[RANDOM_SUBSET] = result.half
    rows[ALIGNMENT_SCORE] = result.scores
    return rows


def found_orientations(
    rows: pd.DataFrame, particle_rows: pd.DataFrame, voxel_size_a: float
) -> tuple[Rotation, np.ndarray]:
    """The rotations and shifts (subtomogram voxels, z, y, x) that :func:`oriented_rows` wrote
    into ``rows``, recovered against the particle set's own ``particle_rows``."""
    pixel = particle_rows[COLUMNS.pixel_size].to_numpy(dtype=np.float64)
    moved = positions_zyx(rows) - positions_zyx(particle_rows)
    return rotations_from_table(rows), moved * (pixel / voxel_size_a)[:, None]


def has_found_orientations(table: pd.DataFrame) -> bool:
    """Whether a sort run's table carries orientations an alignment found (MPP's)."""
    return ALIGNMENT_SCORE in table.columns and set(COLUMNS.angles) <= set(table.columns)


def write_class_outputs(
    directory: Path, class_number: int, result: ClassAverage, voxel_size_a: float
) -> None:
    """Write ``class_NNN.mrc``, ``class_NNN_half1/2.mrc`` and ``fsc_class_NNN.csv``."""
    stem = f"class_{class_number:03d}"
    write_mrc(directory / f"{stem}.mrc", result.average, voxel_size_a)
    for h in (1, 2):
        write_mrc(directory / f"{stem}_half{h}.mrc", result.half_maps[h - 1], voxel_size_a)
    freqs = result.fsc_frequencies_per_a
    with np.errstate(divide="ignore"):
        resolution = np.where(freqs > 0, 1.0 / np.where(freqs > 0, freqs, 1.0), np.inf)
    lines = ["frequency_per_a,resolution_a,fsc"]
    lines += [
        f"{f:.6g},{r:.6g},{c:.6g}" for f, r, c in zip(freqs, resolution, result.fsc, strict=True)
    ]
    atomic_write_text(directory / f"fsc_{stem}.csv", "\n".join(lines) + "\n")


def average_run(
    run_dir: Path | str,
    output: Path | str,
    *,
    particles_dir: Path | str | None = None,
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
    iterations: int = 5,
    global_iterations: int = 2,
    angular_step_deg: float = 30.0,
    max_shift_a: float | None = None,
    classes: Sequence[int] | None = None,
    device: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    start: str = "auto",
) -> dict[str, Any]:
    """Average the classes of a sort run into ``output`` (see ``cryomine average --help``).

    ``start`` (:data:`STARTS`): ``"auto"`` refines from the run's orientations where the sort
    found them (:func:`has_found_orientations`) and searches globally otherwise.

    Returns the summary written to ``output/summary.json``: ``{"classes": [{"class",
    "n_particles", "resolution_a" (None when nothing is resolved)}, ...], "voxel_size_a"}``.
    ``progress`` is called with (classes done, classes).
    """
    run_dir, output = Path(run_dir), Path(output)
    read_sorted_particles(run_dir)  # a sort run, checked before the particle set is looked up
    particles = particle_set_of_run(run_dir, Path(particles_dir) if particles_dir else None)
    table = _class_table(run_dir, particles)
    voxel = particles.voxel_size_a
    labels = table[COLUMNS.class_number].to_numpy()
    present = sorted(int(k) for k in np.unique(labels))
    wanted = present if classes is None else sorted(set(int(k) for k in classes))
    missing = [k for k in wanted if k not in present]
    if missing:
        raise InputError(
            f"--classes: class(es) {missing} not in {run_dir / 'particles.star'} (has {present})"
        )
    max_shift_px = None if max_shift_a is None else float(max_shift_a) / voxel
    if start not in STARTS:
        raise InputError(f"--start {start!r}: expected one of {', '.join(STARTS)}")
    found = has_found_orientations(table)
    if start == "orientations" and not found:
        raise InputError(
            f"{run_dir / 'particles.star'}: --start orientations needs the angles and "
            f"{ALIGNMENT_SCORE} of an aligning sort (MPP); this run has none, use --start global"
        )
    from_orientations = found and start != "global"
    parameters = {
        "run_dir": str(run_dir),
        "particles_dir": str(particles.directory),
        "tilt_range_deg": list(tilt_range_deg),
        "iterations": iterations,
        "global_iterations": global_iterations,
        "angular_step_deg": angular_step_deg,
        "max_shift_a": max_shift_a,
        "classes": wanted,
        "device": device,
        "start": start,
        "from_orientations": from_orientations,
    }
    summary: dict[str, Any] = {"voxel_size_a": voxel, "classes": []}
    with atomic_directory(output, overwrite=overwrite) as tmp:
        with recording_run(
            tmp,
            "average",
            parameters,
            seed=seed,
            inputs=[run_dir / "particles.star", particles.directory],
        ) as record:
            oriented = []
            for done, k in enumerate(wanted):
                rows = np.flatnonzero(labels == k)
                if len(rows) < 2:
                    logger.warning(
                        "class %d has %d particle(s); at least 2 are needed, skipped", k, len(rows)
                    )
                    continue
                with record.timed(f"class_{k:03d}"):
                    initial = (None, None)
                    if from_orientations:
                        initial = found_orientations(table.iloc[rows],
                                                     particles.table.iloc[rows], voxel)  # fmt: skip
                    result = average_class(
                        particles.read(rows),
                        voxel_size_a=voxel,
                        tilt_range_deg=tilt_range_deg,
                        iterations=iterations,
                        global_iterations=global_iterations,
                        angular_step_deg=angular_step_deg,
                        max_shift_px=max_shift_px,
                        seed=seed,
                        device=device,
                        initial_rotations=initial[0],
                        initial_shifts_zyx=initial[1],
                    )
                    write_class_outputs(tmp, k, result, voxel)
                oriented.append(oriented_rows(table.iloc[rows], result, voxel))
                resolution = None if math.isinf(result.resolution_a) else result.resolution_a
                summary["classes"].append(
                    {"class": k, "n_particles": len(rows), "resolution_a": resolution}
                )
                if progress is not None:
                    progress(done + 1, len(wanted))
            if not oriented:
                raise InputError(f"{run_dir}: no selected class has 2 or more particles to average")
            write_particles(tmp / "particles.star", pd.concat(oriented, ignore_index=True))
            atomic_write_text(tmp / "summary.json", json.dumps(summary, indent=2) + "\n")
            record.results.update(summary)
    return summary
