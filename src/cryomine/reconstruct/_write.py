"""Write a reconstructed Warp/RELION 5 tilt-stack export as a cryomine particle set on disk."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryomine._runrecord import recording_run
from cryomine.io import atomic_directory, write_particle_set
from cryomine.reconstruct._tiltstacks import reconstruct_tiltstack_particles

__all__ = ["import_warp_tiltstacks"]


def import_warp_tiltstacks(
    out_dir: Path | str,
    particles_star: Path | str,
    tomograms_star: Path | str | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Path:
    """Reconstruct a tilt-stack export (:func:`reconstruct_tiltstack_particles`) as a particle set.

    ``out_dir`` becomes a particle set (``particles.star`` + subtomogram stack, readable with
    :meth:`cryomine.io.ParticleSet.open`) with a run record; it appears only once complete.
    ``particles_star``, ``tomograms_star``, ``progress`` and the keyword ``options``
    (``box_size``, ``ctf_correction``, ``wiener_constant``, ``flip_hand``, ``batch_size``,
    ``device``) are those of :func:`reconstruct_tiltstack_particles`, with its defaults; the run
    record lists them all. ``overwrite`` replaces an existing ``out_dir``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    # The run record lists every option, defaults included (those of the reconstruction).
    call = inspect.signature(reconstruct_tiltstack_particles).bind(
        particles_star, tomograms_star, **options
    )
    call.apply_defaults()
    parameters = {name: value for name, value in call.arguments.items() if name != "progress"}
    parameters["particles_star"] = str(particles_star)
    parameters["tomograms_star"] = None if tomograms_star is None else str(tomograms_star)
    inputs = [Path(particles_star)] + ([] if tomograms_star is None else [Path(tomograms_star)])
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with recording_run(tmp, "import warp", parameters, inputs=inputs) as record:
            with record.timed("reconstruct"):
                subtomograms, table, voxel_size_a = reconstruct_tiltstack_particles(
                    particles_star, tomograms_star, progress=progress, **options
                )
            with record.timed("write"):
                # The empty temporary directory is replaced by the complete particle set.
                write_particle_set(
                    tmp, table, subtomograms, voxel_size_a=voxel_size_a, overwrite=True
                )
            record.results.update(
                {
                    "n_particles": len(table),
                    "box_size": int(subtomograms.shape[1]),
                    "voxel_size_a": voxel_size_a,
                }
            )
    return out_dir
