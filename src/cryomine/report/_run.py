"""Gathering what a report shows: a sort run directory, its averages, its particle set, truth.

A sort run directory (``cryomine sort -o RUN_DIR``) holds ``particles.star`` (the particle set's
rows in stack order plus ``rlnClassNumber``, 1-based, and ``rlnMaxValueProbDistribution``),
``features.npy`` (``(N, 1024)`` float32, same row order), ``history.json`` (one entry per EM
iteration), ``model/``, ``checkpoints/`` and ``run.json``. Everything but ``particles.star`` is
optional here: a report shows what it finds and says what is missing.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryomine.errors import InputError
from cryomine.io import COLUMNS, ParticleSet, read_mrc, read_sorted_particles

__all__ = ["ClassAverageFiles", "RunData", "load_run", "read_fsc_csv"]

logger = logging.getLogger(__name__)

#: Truth columns, in the order they are preferred (same order as ``evaluate_sorting``).
TRUTH_COLUMNS = ("cmStructure", "cmTrueClass")


@dataclass(frozen=True)
class ClassAverageFiles:
    """One class's outputs of ``cryomine average``.

    Attributes
    ----------
    average : ndarray, shape (S, S, S)
        The class average, axes (z, y, x), protein bright.
    fsc : DataFrame or None
        Columns ``frequency_per_a``, ``resolution_a``, ``fsc`` (one row per Fourier shell).
    resolution_a : float or None
        Gold-standard resolution from ``summary.json`` (Å); ``None`` when not resolved.
    """

    average: np.ndarray
    fsc: pd.DataFrame | None
    resolution_a: float | None


@dataclass
class RunData:
    """Everything a report draws, read once from disk.

    Attributes
    ----------
    run_dir
        The sort run directory.
    table
        ``RUN_DIR/particles.star`` as a DataFrame (one row per particle, stack order).
    classes : ndarray of int, shape (N,)
        1-based class of each particle.
    record
        ``run.json`` as a dict, or ``None`` when absent or unreadable.
    history
        ``history.json`` entries (one per EM iteration); empty when absent.
    features : ndarray of float32, shape (N, F) or None
        ``features.npy`` of the final (best-DDBI) network; ``None`` when absent or mismatched.
    particles
        The particle set the run was sorted from, or ``None`` when it cannot be found.
    truth_column
        Name of the truth column of the particle set's table (``cmStructure`` or
        ``cmTrueClass``), or ``None``.
    truth : ndarray, shape (N,) or None
        True class of each particle (row order of ``table``), or ``None``.
    averages
        Class number → files of ``cryomine average`` (empty without ``averages_dir``).
    averages_dir
        The averages directory, or ``None``.
    notes
        Human-readable remarks about what was missing or skipped.
    """

    run_dir: Path
    table: pd.DataFrame
    classes: np.ndarray
    record: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    features: np.ndarray | None = None
    particles: ParticleSet | None = None
    truth_column: str | None = None
    truth: np.ndarray | None = None
    averages: dict[int, ClassAverageFiles] = field(default_factory=dict)
    averages_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def class_numbers(self) -> list[int]:
        """Sorted 1-based class numbers present in the run."""
        return [int(k) for k in np.unique(self.classes)]

    @property
    def voxel_size_a(self) -> float | None:
        """Å per voxel of the subtomograms (from the particle set), or ``None``."""
        return None if self.particles is None else self.particles.voxel_size_a


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        notes.append(f"{path.name} not found in the run directory")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        notes.append(f"{path.name} could not be read ({error})")
        return None


def _find_particle_set(run_dir: Path, record: dict[str, Any] | None) -> ParticleSet | None:
    """The particle set named by ``run.json`` (as given, then relative to the run's parent)."""
    try:
        named = record["parameters"]["particles_dir"] if record else None
    except (KeyError, TypeError):
        named = None
    if not named:
        return None
    for candidate in (Path(named), run_dir.parent / named, run_dir / named):
        if candidate.is_dir():
            try:
                return ParticleSet.open(candidate)
            except InputError as error:
                logger.warning("particle set %s cannot be opened: %s", candidate, error)
                return None
    return None


def read_fsc_csv(path: Path) -> pd.DataFrame | None:
    """Read ``fsc_class_NNN.csv`` (``frequency_per_a,resolution_a,fsc``); ``None`` if unreadable."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:
        logger.warning("%s: cannot read the FSC curve (%s)", path, error)
        return None
    if not {"frequency_per_a", "fsc"} <= set(frame.columns):
        logger.warning("%s: no frequency_per_a/fsc columns; FSC not shown", path)
        return None
    return frame


def _read_averages(averages_dir: Path, class_numbers: list[int]) -> dict[int, ClassAverageFiles]:
    if not averages_dir.is_dir():
        raise InputError(f"{averages_dir}: averages directory not found (from cryomine average)")
    summary: dict[str, Any] = {}
    summary_path = averages_dir / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InputError(f"{summary_path}: not valid JSON ({error})") from error
    resolutions = {
        int(entry["class"]): entry.get("resolution_a") for entry in summary.get("classes", [])
    }
    found: dict[int, ClassAverageFiles] = {}
    for k in class_numbers:
        map_path = averages_dir / f"class_{k:03d}.mrc"
        if not map_path.is_file():
            continue
        fsc_path = averages_dir / f"fsc_class_{k:03d}.csv"
        resolution = resolutions.get(k)
        found[k] = ClassAverageFiles(
            average=np.asarray(read_mrc(map_path, mmap=False)[0], dtype=np.float32),
            fsc=read_fsc_csv(fsc_path) if fsc_path.is_file() else None,
            resolution_a=None if resolution is None or not math.isfinite(resolution)
            else float(resolution),
        )  # fmt: skip
    if not found:
        raise InputError(
            f"{averages_dir}: no class_NNN.mrc for the run's classes {class_numbers}; "
            "expected the output directory of cryomine average"
        )
    return found


def _truth(table: pd.DataFrame, particles: ParticleSet | None) -> tuple[str | None, Any]:
    """The truth column and values in the run's row order (from the run table or particle set)."""
    for source in (table, None if particles is None else particles.table):
        if source is None:
            continue
        for column in TRUTH_COLUMNS:
            if column not in source.columns:
                continue
            if source is table:
                return column, source[column].to_numpy()
            ids = table[COLUMNS.particle_id].to_numpy()
            lookup = pd.Series(source[column].to_numpy(), index=source[COLUMNS.particle_id])
            if lookup.index.has_duplicates or not np.isin(ids, lookup.index).all():
                return None, None
            return column, lookup.loc[ids].to_numpy()
    return None, None


def load_run(run_dir: Path | str, *, averages_dir: Path | str | None = None) -> RunData:
    """Read a sort run directory (and optionally its averages) for a report.

    Parameters
    ----------
    run_dir
        Output directory of ``cryomine sort``; it must hold ``particles.star`` with
        ``rlnClassNumber``.
    averages_dir
        Output directory of ``cryomine average`` (``class_NNN.mrc``, ``fsc_class_NNN.csv``,
        ``summary.json``).

    Returns
    -------
    RunData

    Raises
    ------
    InputError
        No run directory, no ``particles.star`` or no class column; an averages directory that
        holds none of the run's class maps.
    """
    run_dir = Path(run_dir)
    table = read_sorted_particles(run_dir)
    notes: list[str] = []
    data = RunData(
        run_dir=run_dir, table=table, classes=table[COLUMNS.class_number].to_numpy(np.int64),
        notes=notes,
    )  # fmt: skip
    data.record = _read_json(run_dir / "run.json", notes)
    history = _read_json(run_dir / "history.json", notes)
    data.history = history if isinstance(history, list) else []
    features_path = run_dir / "features.npy"
    if features_path.is_file():
        features = np.load(features_path, allow_pickle=False)
        if features.ndim == 2 and len(features) == len(table):
            data.features = features
        else:
            notes.append(f"features.npy has shape {features.shape}; expected ({len(table)}, F)")
    else:
        notes.append("features.npy not found; no feature embedding")
    data.particles = _find_particle_set(run_dir, data.record)
    if data.particles is not None and data.particles.n_particles != len(table):
        notes.append(
            f"particle set {data.particles.directory} holds {data.particles.n_particles} "
            f"subtomograms, the run {len(table)}; subtomograms not shown"
        )
        data.particles = None
    if data.particles is None:
        notes.append("particle set of the run not found; no class means or member subtomograms")
    data.truth_column, data.truth = _truth(table, data.particles)
    if averages_dir is not None:
        data.averages_dir = Path(averages_dir)
        data.averages = _read_averages(data.averages_dir, data.class_numbers)
    return data
