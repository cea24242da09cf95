"""A multi-pattern pursuit run directory (``cryomine sort --method mpp``, ``cryomine refine``).

``RUN_DIR`` gets what ``cryomine sort`` writes, so ``average``, ``embed``, ``report`` and
``evaluate`` read it the same way, plus the alignments MPP found:

* ``particles.star``: the particle set's rows in stack order plus ``rlnClassNumber``
  (1-based, by decreasing size), the orientation in the class's frame
  (``rlnAngleRot/Tilt/Psi``, origins ``rlnOriginX/Y/ZAngst``), ``rlnRandomSubset`` (the half),
  ``cmAlignmentScore`` (constrained correlation with the class's other-half map) and
  ``cmScoreMargin`` (best minus second-best class score; 0 with one class);
* ``classes/class_NNN.mrc``, ``class_NNN_half1/2.mrc`` and ``fsc_class_NNN.csv``;
* ``history.json`` (one entry per iteration), ``checkpoints/mpp/`` (for ``--resume``) and
  ``run.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryomine._runrecord import recording_run
from cryomine.averaging import (
    ClassAverage,
    fourier_shell_correlation,
    oriented_rows,
    particle_mask,
    resolution_at,
    write_class_outputs,
)
from cryomine.errors import InputError
from cryomine.io import COLUMNS, ParticleSet, write_particles
from cryomine.io._atomic import atomic_write_text
from cryomine.sorting._mpp import MPP

__all__ = ["SCORE_MARGIN", "class_averages", "write_mpp_run"]

#: Best minus second-best class score of each particle.
SCORE_MARGIN = "cmScoreMargin"


def class_averages(model: MPP, voxel_size_a: float) -> list[ClassAverage]:
    """One :class:`cryomine.averaging.ClassAverage` per class of a fitted ``model``: its half
    maps, their FSC (soft-masked, as ``cryomine average``) and its members' alignments."""
    mask = particle_mask(model.half_maps_.shape[-1])
    results = []
    for k in range(model.n_classes_):
        members = model.labels_ == k
        half_maps = model.half_maps_[k]
        freqs, fsc = fourier_shell_correlation(
            half_maps[0] * mask, half_maps[1] * mask, voxel_size_a=voxel_size_a
        )
        results.append(
            ClassAverage(
                average=model.averages_[k].astype(np.float32),
                half_maps=half_maps.astype(np.float32),
                fsc_frequencies_per_a=freqs,
                fsc=fsc,
                resolution_a=float(resolution_at(freqs, fsc)),
                rotations=model.rotations_[np.flatnonzero(members)],
                shifts_zyx=model.shifts_zyx_[members],
                half=model.half_[members],
                scores=model.scores_[members, k],
            )
        )
    return results


def _score_margin(scores: np.ndarray) -> np.ndarray:
    if scores.shape[1] < 2:
        return np.zeros(scores.shape[0])
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]


def write_mpp_run(
    particles: ParticleSet,
    output: Path,
    model: MPP,
    *,
    init_labels: np.ndarray | None,
    parameters: dict[str, Any],
    seed: int,
    resume: bool = False,
    overwrite: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
    inputs: list[Path] | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on ``particles`` (from ``init_labels`` or from the data alone) and write
    the run directory ``output`` (module docstring). Returns the run record's results."""
    output = Path(output)
    if (output / "particles.star").exists() and not (resume or overwrite):
        raise InputError(
            f"{output}: already holds a finished sort; pass --resume or --overwrite, "
            "or choose another -o"
        )
    output.mkdir(parents=True, exist_ok=True)
    voxel = particles.voxel_size_a
    with recording_run(
        output, "sort", {**parameters, **model.get_params()}, seed=seed,
        inputs=inputs or [particles.directory],
    ) as record:  # fmt: skip
        with record.timed("fit"):
            model.fit(particles, init_labels=init_labels, callback=callback,
                      checkpoint_dir=output / "checkpoints", resume=resume)  # fmt: skip
        with record.timed("write"):
            averages = class_averages(model, voxel)
            (output / "classes").mkdir(exist_ok=True)
            rows = []
            margin = _score_margin(model.scores_)
            for k, result in enumerate(averages):
                write_class_outputs(output / "classes", k + 1, result, voxel)
                members = np.flatnonzero(model.labels_ == k)
                part = oriented_rows(particles.table.iloc[members], result, voxel)
                part[COLUMNS.class_number] = k + 1
                part[SCORE_MARGIN] = margin[members]
                rows.append(part)
            table = pd.concat(rows).loc[particles.table.index]
            write_particles(output / "particles.star", table.reset_index(drop=True))
            atomic_write_text(output / "history.json", json.dumps(model.history_, indent=1) + "\n")
        counts = np.bincount(model.labels_, minlength=model.n_classes_)
        record.results.update({
            "method": "mpp", "n_particles": int(model.labels_.size),
            "n_classes": model.n_classes_, "class_sizes": counts.tolist(),
            "resolution_a": [None if math.isinf(r.resolution_a) else r.resolution_a
                             for r in averages],
            "pattern_origins": model.pattern_origins_, "n_iter": model.n_iter_,
            "converged": model.converged_, "device": model.device_,
        })  # fmt: skip
    return record.results
