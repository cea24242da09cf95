"""Writing simulated data sets to disk: particle sets with references, tomograms with truth.

Output trees (each appears complete or not at all)::

    <out_dir>/                      simulate subtomograms (a particle set, cryomine.io)
        particles.star              truth: RELION angles, cmTrueShiftX/Y/Z, cmStructure, cmTrueClass;
                                    provenance: cmNoiseModel, cmNormalized (1 z-scored, 0 not)
        subtomograms.zarr/          (n, z, y, x) float32, protein bright; z-scored unless
                                    simulated with normalize=False (attrs: normalized)
        references/<name>.mrc       clean density of each structure (same voxel size and box)
        references/<name>_ctf.mrc   the same filtered by the 3-D CTF (contrast bright)
        run.json                    run record

    <out_dir>/                      simulate tomogram
        tomogram.mrc                float32, protein dark, z-scored
        labels.mrc                  int16 label per voxel (see labels.json)
        labels.json                 label value → name
        truth.star                  truth table (coordinates in voxels, RELION angles, classes)
        clean.mrc                   noise-free density (only with ``write_clean``)
        run.json                    run record
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cryomine.simulate._subtomograms import simulate_subtomograms
from cryomine.simulate._tomogram import simulate_tomogram

__all__ = ["write_simulated_subtomograms", "write_simulated_tomogram"]

logger = logging.getLogger(__name__)


def _write_labels_mrc(path: Path, labels: np.ndarray, voxel_size_a: float) -> None:
    import mrcfile

    from cryomine.io import atomic_path

    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as handle:
        handle.set_data(labels.astype(np.int16))
        handle.voxel_size = voxel_size_a


def _structure_files(structures: Sequence[str | Path] | Mapping[str, np.ndarray]) -> list[Path]:
    """The map/model files among ``structures`` (the run record's inputs); none for arrays."""
    if isinstance(structures, Mapping):
        return []
    return [Path(s) for s in structures if Path(s).exists()]


def _restore_scale(stack_dir: Path, means: list[float], sds: list[float]) -> None:
    """Undo the z-scoring of ``write_particle_set``: ``x = z · sd + mean`` per subtomogram.

    ``write_particle_set`` always z-scores; for ``normalize=False`` the simulated scale is put
    back from each subtomogram's mean and standard deviation (float64, as it was removed), so the
    stored values equal the simulated ones to float32 rounding. Marks the stack
    ``normalized: false``.
    """
    import zarr

    array = zarr.open_array(str(stack_dir), mode="r+")
    mean = np.asarray(means, dtype=np.float64)
    sd = np.asarray(sds, dtype=np.float64)
    step = max(1, int(array.chunks[0]))
    for start in range(0, array.shape[0], step):
        stop = min(start + step, array.shape[0])
        z = np.asarray(array[start:stop], dtype=np.float64)
        scale = sd[start:stop, None, None, None]
        array[start:stop] = (z * scale + mean[start:stop, None, None, None]).astype(np.float32)
    array.attrs["normalized"] = False


def write_simulated_subtomograms(
    out_dir: Path | str,
    structures: Sequence[str | Path] | Mapping[str, np.ndarray],
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Path:
    """Simulate subtomograms (:func:`simulate_subtomograms`) and write them as a particle set.

    Parameters
    ----------
    out_dir
        Output directory (tree in the module docstring); it is the particle set itself, so
        ``ParticleSet.open(out_dir)`` reads it.
    structures
        As for :func:`simulate_subtomograms`.
    overwrite
        Replace an existing ``out_dir`` once the new one is complete.
    progress
        ``progress(n_done, n_total)`` after each batch.
    **options
        Keyword options of :func:`simulate_subtomograms` (``n_per_class``, ``snr``, ...).

    Returns
    -------
    Path
        ``out_dir``.
    """
    from cryomine._runrecord import recording_run
    from cryomine.io import atomic_directory, write_mrc, write_particle_set

    out_dir = Path(out_dir)
    simulated = simulate_subtomograms(structures, progress=progress, **options)
    voxel_size_a = simulated.parameters["voxel_size_a"]
    normalize = bool(simulated.parameters["normalize"])
    means: list[float] = []
    sds: list[float] = []

    def batches() -> Iterator[np.ndarray]:
        for batch in simulated.iter_subtomograms():
            if not normalize:
                flat = batch.reshape(len(batch), -1).astype(np.float64)
                means.extend(flat.mean(axis=1).tolist())
                sds.extend(flat.std(axis=1).tolist())
            yield batch

    inputs = _structure_files(structures)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with recording_run(
            tmp,
            "simulate subtomograms",
            simulated.parameters,
            seed=simulated.parameters["seed"],
            inputs=inputs,
        ) as record:
            with record.timed("simulate_and_write"):
                # The empty temporary directory is replaced by the complete particle set.
                write_particle_set(
                    tmp,
                    simulated.table,
                    batches(),
                    voxel_size_a=voxel_size_a,
                    overwrite=True,
                )
                if not normalize:
                    _restore_scale(tmp / "subtomograms.zarr", means, sds)
            for name, volume in simulated.references.items():
                write_mrc(tmp / "references" / f"{name}.mrc", volume, voxel_size_a)
                write_mrc(
                    tmp / "references" / f"{name}_ctf.mrc",
                    simulated.references_ctf[name],
                    voxel_size_a,
                )
            record.results.update(
                {
                    "n_particles": len(simulated),
                    "classes": list(simulated.references),
                    "noise_model": simulated.parameters["noise_model"],
                    "normalized": normalize,
                }
            )
    logger.info("wrote %d simulated subtomograms to %s", len(simulated), out_dir)
    return out_dir


def write_simulated_tomogram(
    out_dir: Path | str,
    structures: Sequence[str | Path] | Mapping[str, np.ndarray],
    *,
    overwrite: bool = False,
    write_clean: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Path:
    """Simulate a crowded tomogram (:func:`simulate_tomogram`) and write it with its truth.

    Parameters
    ----------
    out_dir
        Output directory (tree in the module docstring).
    structures
        As for :func:`simulate_tomogram`.
    overwrite
        Replace an existing ``out_dir`` once the new one is complete.
    write_clean
        Also write the noise-free density ``clean.mrc``.
    progress
        ``progress(n_done, n_total)``.
    **options
        Keyword options of :func:`simulate_tomogram` (``shape_zyx``, ``n_particles``, ``snr``, ...).

    Returns
    -------
    Path
        ``out_dir``.
    """
    from cryomine._runrecord import recording_run
    from cryomine.io import atomic_directory, write_mrc, write_particles

    out_dir = Path(out_dir)
    inputs = _structure_files(structures)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with recording_run(
            tmp, "simulate tomogram", dict(options), seed=options.get("seed"), inputs=inputs
        ) as record:
            with record.timed("simulate"):
                simulated = simulate_tomogram(structures, progress=progress, **options)
            record.parameters = simulated.parameters
            voxel_size_a = simulated.parameters["voxel_size_a"]
            write_mrc(tmp / "tomogram.mrc", simulated.tomogram, voxel_size_a)
            _write_labels_mrc(tmp / "labels.mrc", simulated.labels, voxel_size_a)
            (tmp / "labels.json").write_text(
                json.dumps({str(k): v for k, v in simulated.label_names.items()}, indent=2) + "\n",
                encoding="utf-8",
            )
            write_particles(tmp / "truth.star", simulated.table)
            if write_clean:
                write_mrc(tmp / "clean.mrc", simulated.clean, voxel_size_a)
            record.results.update(
                {
                    "n_particles": len(simulated.table),
                    "label_names": simulated.label_names,
                    "voxels_per_label": np.bincount(
                        simulated.labels.ravel().astype(np.int64)
                    ).tolist(),
                }
            )
    logger.info("wrote simulated tomogram to %s", out_dir)
    return out_dir
