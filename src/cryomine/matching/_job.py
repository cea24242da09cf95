"""The job folder of a search: resumable tile results, the score maps and ``job.json``.

::

    JOB_DIR/
      job.json        every parameter, the tomogram, the template, the score statistics
      scores.mrc      float32 (z, y, x): best FLCF over the rotations at every voxel
      angles.mrc      float32 (z, y, x): index (0-based) into rotations.csv of the best rotation
      rotations.csv   index, quaternion (qx, qy, qz, qw; active reference→particle, x, y, z
                      vectors), RELION rot, tilt, psi (degrees)
      template.mrc    the template (tomogram contrast, before the wedge/CTF filter)
      mask.mrc        the template's mask (reference frame)
      run.json        the run record (written by the command line)
      tiles/          while running: plan.json and one tile_NNNNN.npz per finished tile

A search that stops leaves ``tiles/``; running it again with the same parameters scores only the
missing tiles. Every file appears under its final name only once complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.matching._flcf import TileScores
from cryomine.matching._search import Tile, plan_tiles, score_statistics, search_tiles
from cryomine.matching._template import Template

__all__ = [
    "JOB_FILE",
    "read_job",
    "read_job_template",
    "read_rotations",
    "run_search",
    "write_rotations",
]

logger = logging.getLogger(__name__)

JOB_FILE = "job.json"
SCORES_FILE = "scores.mrc"
ANGLES_FILE = "angles.mrc"
ROTATIONS_FILE = "rotations.csv"
TEMPLATE_FILE = "template.mrc"
MASK_FILE = "mask.mrc"
_TILES = "tiles"
_PLAN = "plan.json"


def write_rotations(path: Path, rotations: Rotation) -> Path:
    """Write the rotation list (index, quaternion scalar last, RELION angles), atomically."""
    from cryomine.geometry import quaternions_from_rotations, relion_euler_from_rotations
    from cryomine.io import atomic_write_text

    quats = quaternions_from_rotations(rotations)
    angles = relion_euler_from_rotations(rotations)
    lines = ["index,qx,qy,qz,qw,rlnAngleRot,rlnAngleTilt,rlnAnglePsi"]
    for i, (q, a) in enumerate(zip(quats, angles, strict=True)):
        lines.append(",".join([str(i), *(repr(float(v)) for v in (*q, *a))]))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def read_rotations(path: Path) -> Rotation:
    """Read ``rotations.csv`` back as active reference→particle rotations, in index order."""
    if not path.is_file():
        raise InputError(f"{path}: rotation list not found")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as error:
        raise InputError(f"{path}: not a rotation list ({error})") from error
    if table.shape[1] != 8 or not np.array_equal(table[:, 0], np.arange(len(table))):
        raise InputError(f"{path}: expected columns index,qx,qy,qz,qw,rot,tilt,psi in order")
    return Rotation.from_quat(table[:, 1:5])


def read_job(job_dir: Path | str) -> dict[str, Any]:
    """The ``job.json`` of a finished search."""
    path = Path(job_dir) / JOB_FILE
    if not path.is_file():
        raise InputError(
            f"{job_dir}: no {JOB_FILE}; expected the folder of a finished `cryomine match search`"
        )
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from error


def read_job_template(job_dir: Path | str, job: dict[str, Any] | None = None) -> Template:
    """The template of a finished search, rebuilt from ``template.mrc``, ``mask.mrc`` and
    ``job.json``."""
    from cryomine.io import read_mrc
    from cryomine.matching._template import rebuild_template

    job_dir = Path(job_dir)
    job = read_job(job_dir) if job is None else job
    density, _ = read_mrc(job_dir / TEMPLATE_FILE, mmap=False)
    mask, _ = read_mrc(job_dir / MASK_FILE, mmap=False)
    return rebuild_template(density, mask, job["template"])


def _tile_path(tiles_dir: Path, tile: Tile) -> Path:
    return tiles_dir / f"tile_{tile.index:05d}.npz"


def _save_tile(path: Path, tile: Tile, scores: TileScores) -> None:
    from cryomine.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            start=np.array(tile.start),
            shape=np.array(tile.shape),
            scores=scores.scores,
            indices=scores.indices.astype(np.int32),
            stats=np.array([scores.sum, scores.sum_squares, float(scores.count)]),
        )


def _prepare_tiles_dir(job_dir: Path, plan: dict[str, Any], *, overwrite: bool) -> Path:
    from cryomine.io import atomic_write_text

    tiles_dir = job_dir / _TILES
    plan_path = tiles_dir / _PLAN
    if (job_dir / JOB_FILE).exists() and not overwrite:
        raise InputError(
            f"{job_dir}: holds a finished search; choose another folder or pass --overwrite"
        )
    if plan_path.is_file() and not overwrite:
        previous = json.loads(plan_path.read_text(encoding="utf-8"))
        if previous != plan:
            changed = sorted(k for k in set(plan) | set(previous) if plan.get(k) != previous.get(k))
            raise InputError(
                f"{job_dir}: holds an unfinished search with other parameters "
                f"({', '.join(changed)}); use the same options to resume, or pass --overwrite"
            )
        logger.info("resuming the search in %s", job_dir)
        return tiles_dir
    if tiles_dir.exists():
        shutil.rmtree(tiles_dir)
    tiles_dir.mkdir(parents=True)
    atomic_write_text(plan_path, json.dumps(plan, indent=2) + "\n")
    return tiles_dir


def _assemble(
    job_dir: Path, tiles_dir: Path, tiles: list[Tile], shape: tuple[int, ...], voxel_size_a: float
) -> tuple[float, float, int, dict[str, float]]:
    """Write scores.mrc and angles.mrc from the tile files; return the search statistics.

    The maps are filled one tile at a time, each through its own memory map that is closed
    afterwards, and the header statistics are accumulated per tile, so neither map is ever
    resident as a whole.
    """
    import mrcfile

    from cryomine.io import atomic_path

    total = total_sq = 0.0
    count = 0
    # min, max, sum, sum of squares of each map's values (for the MRC headers)
    moments = {"scores": [np.inf, -np.inf, 0.0, 0.0], "angles": [np.inf, -np.inf, 0.0, 0.0]}
    n_voxels = float(np.prod(shape))
    with (
        atomic_path(job_dir / SCORES_FILE) as scores_tmp,
        atomic_path(job_dir / ANGLES_FILE) as angles_tmp,
    ):
        for tmp in (scores_tmp, angles_tmp):
            with mrcfile.new_mmap(tmp, shape=shape, mrc_mode=2, overwrite=True) as handle:
                handle.voxel_size = voxel_size_a
                handle.header.ispg = 1
        for tile in tiles:
            # a fresh memory map per tile, closed at once: the maps never stay resident
            with (
                mrcfile.mmap(scores_tmp, mode="r+") as scores,
                mrcfile.mmap(angles_tmp, mode="r+") as angles,
                np.load(_tile_path(tiles_dir, tile)) as stored,
            ):
                region = tuple(slice(a, a + n) for a, n in zip(tile.start, tile.shape, strict=True))
                values = {
                    "scores": stored["scores"],
                    "angles": stored["indices"].astype(np.float32),
                }
                scores.data[region] = values["scores"]
                angles.data[region] = values["angles"]
                s, s2, c = stored["stats"]
            total, total_sq, count = total + s, total_sq + s2, count + int(c)
            for key, array in values.items():
                m = moments[key]
                m[0] = min(m[0], float(array.min()))
                m[1] = max(m[1], float(array.max()))
                m[2] += float(array.sum(dtype=np.float64))
                m[3] += float(np.square(array, dtype=np.float64).sum())
        for tmp, key in ((scores_tmp, "scores"), (angles_tmp, "angles")):
            low, high, sum_, sum_sq = moments[key]
            mean = sum_ / n_voxels
            with mrcfile.mmap(tmp, mode="r+") as handle:
                handle.header.dmin, handle.header.dmax = low, high
                handle.header.dmean = mean
                handle.header.rms = float(np.sqrt(max(sum_sq / n_voxels - mean**2, 0.0)))
    low, high, sum_, sum_sq = moments["scores"]
    mean_map = sum_ / n_voxels
    max_map = {
        "mean": mean_map,
        "max": high,
        "rms": float(np.sqrt(max(sum_sq / n_voxels - mean_map**2, 0.0))),
    }
    mean, std = score_statistics(total, total_sq, count)
    if not (np.isfinite(mean) and np.isfinite(std) and np.isfinite(high)):
        raise InputError("the scores are not finite: the tomogram holds NaN or Inf values")
    return mean, std, count, max_map


def run_search(
    tomogram: np.ndarray,
    template: Template,
    rotations: Rotation,
    job_dir: Path | str,
    *,
    voxel_size_a: float,
    tile_shape: tuple[int, int, int] | None = None,
    device: torch.device | str = "cpu",
    parameters: dict[str, Any] | None = None,
    overwrite: bool = False,
    keep_tiles: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Search a tomogram and write the job folder (see the module docstring).

    Parameters
    ----------
    tomogram
        ``(Z, Y, X)`` array (memory-mapped is fine).
    template
        The template, at ``voxel_size_a``.
    rotations
        The rotations searched (active reference→particle).
    job_dir
        Output folder; an unfinished search there with the same parameters is resumed.
    voxel_size_a
        Voxel size of the tomogram, Å.
    tile_shape
        Largest core tile, z, y, x voxels; ``None``: one tile.
    device
        Torch device.
    parameters
        Extra parameters stored in ``job.json`` (e.g. the command line's options).
    overwrite
        Replace a finished search, or restart an unfinished one with other parameters.
    keep_tiles
        Keep ``tiles/`` after the maps are written.
    progress
        ``progress(n_done, n_total)`` over tiles × rotations.

    Returns
    -------
    dict
        The content of ``job.json``.
    """
    from cryomine.geometry import quaternions_from_rotations
    from cryomine.io import atomic_write_text, write_mrc

    job_dir = Path(job_dir)
    if job_dir.exists() and not job_dir.is_dir():
        raise InputError(f"{job_dir}: exists and is not a folder")
    shape = tuple(int(n) for n in tomogram.shape)
    tiles = plan_tiles(shape, tile_shape, template.box_size)
    quats = quaternions_from_rotations(rotations)
    plan = {
        "tomogram_shape_zyx": list(shape),
        "voxel_size_a": float(voxel_size_a),
        "tile_shape_zyx": None if tile_shape is None else [int(n) for n in tile_shape],
        "n_tiles": len(tiles),
        "n_rotations": len(quats),
        "rotations_checksum": float(np.round(np.abs(quats).sum(), 6)),
        "template": template.parameters,
        "template_checksum": float(np.round(np.abs(template.density).sum(), 4)),
        "parameters": parameters or {},
    }
    plan = json.loads(json.dumps(plan, default=str))
    job_dir.mkdir(parents=True, exist_ok=True)
    tiles_dir = _prepare_tiles_dir(job_dir, plan, overwrite=overwrite)
    done_before = [t.index for t in tiles if _tile_path(tiles_dir, t).is_file()]
    start = time.perf_counter()
    matrices = np.asarray(rotations.as_matrix()).reshape(-1, 3, 3)
    search_tiles(
        tomogram,
        template,
        matrices,
        tiles,
        device=device,
        skip=lambda tile: _tile_path(tiles_dir, tile).is_file(),
        on_tile=lambda tile, scores: _save_tile(_tile_path(tiles_dir, tile), tile, scores),
        progress=progress,
    )
    search_s = time.perf_counter() - start
    mean, std, count, max_map = _assemble(job_dir, tiles_dir, tiles, shape, voxel_size_a)
    write_rotations(job_dir / ROTATIONS_FILE, rotations)
    write_mrc(job_dir / TEMPLATE_FILE, template.density, voxel_size_a)
    write_mrc(job_dir / MASK_FILE, template.mask, voxel_size_a)
    n_positions = int(np.prod(shape))
    job = {
        **plan,
        "n_positions": n_positions,
        "statistics": {
            "mean": mean,
            "std": std,
            "n_scores": count,
            "max_map": max_map,
        },
        "tiles_resumed": done_before,
        "search_seconds": search_s,
        "files": {
            "scores": SCORES_FILE,
            "angles": ANGLES_FILE,
            "rotations": ROTATIONS_FILE,
            "template": TEMPLATE_FILE,
            "mask": MASK_FILE,
        },
    }
    atomic_write_text(job_dir / JOB_FILE, json.dumps(job, indent=2) + "\n")
    if not keep_tiles:
        shutil.rmtree(tiles_dir, ignore_errors=True)
    logger.info(
        "search %s: %d positions x %d rotations, score std %.4g, max %.4g",
        job_dir,
        n_positions,
        len(quats),
        std,
        max_map["max"],
    )
    return job
