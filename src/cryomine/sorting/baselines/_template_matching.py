"""Template-matching classification: every subtomogram against every reference, best one wins.

The baseline of the DISCA paper's Table 1. Each subtomogram is aligned to each of the ``K``
reference maps (clean structures filtered with the same CTF as the data) over rotations and
translations and is assigned to the reference with the highest score. Alignment is the
alignment engine shared with subtomogram averaging (:func:`cryomine.averaging.align_to_references`):
the constrained cross-correlation of Förster et al. (2008) over the Fourier voxels both volumes
observe (the particle's missing wedge and the scoring band ``max_frequency``), normalised by
both maps' power there, every integer translation within ``max_shift_px``; all subtomograms are
scored against all references at once, each reference rotated once per grid rotation.
Rotations are searched coarse to fine: a global uniform grid at ``angular_step_deg`` (scored at
the band the step resolves), then local lattices (33 rotations) with halving steps down to
``refine_to_deg`` — the first about the best ``n_hits`` distinct grid rotations, the rest about
the best of them — and a 19-rotation polish at half the finest step, at ``max_frequency``.

Cost per subtomogram and reference: ``uniform_rotation_grid_size(angular_step_deg)`` grid
rotations (551 at 30°, 1857 at 20°) plus ``33 · n_hits`` for the first refinement level, 33 for
each further one and 19 for the polish (at 30° → 7.5°: 551 + 66 + 33 + 19 = 669), each a
matrix-product row over the band's Fourier voxels; ``benchmarks/results/alignment_engine.md``
has the measured cost per pair.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from sklearn.base import BaseEstimator, ClassifierMixin

from cryomine._deprecation import renamed_property
from cryomine.errors import InputError
from cryomine.sorting._source import as_subtomogram_array
from cryomine.sorting.baselines._data import as_reference_stack

__all__ = ["TemplateMatchingClassifier", "TemplateMatchingResult", "template_matching_classify"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateMatchingResult:
    """Outcome of template-matching classification (:attr:`TemplateMatchingClassifier.result_`).

    Attributes
    ----------
    labels
        ``(N,)`` int64 0-based index of the best reference of each subtomogram.
    scores
        ``(N, K)`` float64 best constrained cross-correlation against each reference, in
        ``[-1, 1]``.
    rotations
        ``N`` active reference→particle rotations (x, y, z vectors) for the assigned reference.
    shifts_zyx
        ``(N, 3)`` float64 shifts in voxels, z, y, x order, for the assigned reference.
    reference_names
        Names of the ``K`` references, in column order of ``scores``.
    n_rotations_scored
        Rotations scored per subtomogram and reference (global grid plus refinements).
    timings_s
        Wall time in seconds of the whole search (``"total"``; all references are searched
        together).
    """

    labels: np.ndarray
    scores: np.ndarray
    rotations: Rotation
    shifts_zyx: np.ndarray
    reference_names: list[str]
    n_rotations_scored: int
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Number of references that received at least one subtomogram."""
        return int(np.unique(self.labels).size)

    n_clusters = renamed_property("n_clusters", "n_classes")

    @property
    def best_scores(self) -> np.ndarray:
        """``(N,)`` score of each subtomogram against its assigned reference."""
        return self.scores[np.arange(self.labels.size), self.labels]


class TemplateMatchingClassifier(ClassifierMixin, BaseEstimator):
    """Assign every subtomogram to the reference it matches best (missing-wedge aware).

    Nothing is learned: :meth:`fit` aligns the given subtomograms to the references and stores
    the outcome; :meth:`predict` does the same for new subtomograms.

    Parameters
    ----------
    references
        ``K`` maps ``(S, S, S)``, protein bright, on the subtomograms' grid: a mapping
        name → map, a sequence, or a ``(K, S, S, S)`` array. For simulated data use the maps
        filtered by the same CTF (``references_ctf``). They are taken as fully observed.
    tilt_range_deg
        Tilt range of the data, degrees; sets each particle's missing wedge (tilt axis y).
    angular_step_deg
        Spacing of the global rotation grid (:func:`cryomine.geometry.uniform_rotation_grid`),
        degrees.
    refine_to_deg
        Local refinements about the best grid rotation with steps ``angular_step_deg / 2``,
        ``/ 4``, … down to this step, degrees; ``None``: global grid only.
    max_shift_px
        Largest translation searched (radius), voxels.
    max_frequency
        Upper end of the scoring band, cycles per voxel (0.5 = Nyquist).
    n_hits
        Distinct grid rotations per subtomogram and reference that are refined.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda[:i]"``.

    Attributes
    ----------
    result_ : TemplateMatchingResult
        Everything the search found for the training subtomograms.
    labels_ : ndarray of int64, shape (N,)
        0-based index of the best reference of each subtomogram.
    scores_ : ndarray of float64, shape (N, K)
        Best constrained cross-correlation against each reference.
    classes_ : ndarray of int64, shape (K,)
        ``0 … K-1`` (scikit-learn's classifier convention).
    reference_names_ : list of str
        Names of the references, in column order of ``scores_``.
    n_classes_ : int
        Number of references that received at least one subtomogram.

    Examples
    --------
    >>> tm = TemplateMatchingClassifier(references, angular_step_deg=30.0)  # doctest: +SKIP
    >>> tm.fit(volumes).labels_[:5]  # doctest: +SKIP
    """

    def __init__(
        self,
        references: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray,
        *,
        tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
        angular_step_deg: float = 30.0,
        refine_to_deg: float | None = 7.5,
        max_shift_px: float = 3.0,
        max_frequency: float = 0.5,
        n_hits: int = 2,
        device: str = "auto",
    ) -> None:
        self.references = references
        self.tilt_range_deg = tilt_range_deg
        self.angular_step_deg = angular_step_deg
        self.refine_to_deg = refine_to_deg
        self.max_shift_px = max_shift_px
        self.max_frequency = max_frequency
        self.n_hits = n_hits
        self.device = device

    def fit(
        self, X: Any, y: Any = None, *, progress: Callable[[int, int], None] | None = None
    ) -> TemplateMatchingClassifier:
        """Align subtomograms ``X`` (``(N, S, S, S)`` array, particle, z, y, x, protein bright,
        or a :class:`cryomine.io.ParticleSet`) to every reference and keep the best.

        ``y`` is ignored (scikit-learn convention). ``progress(done, total)`` is called after
        each search stage (grid, each refinement). Returns ``self``.
        """
        result = self._classify(X, progress)
        self.result_ = result
        self.labels_ = result.labels
        self.scores_ = result.scores
        self.reference_names_ = result.reference_names
        self.classes_ = np.arange(len(result.reference_names), dtype=np.int64)
        self.n_classes_ = result.n_classes
        return self

    def predict(self, X: Any) -> np.ndarray:
        """0-based best reference ``(N,)`` of each subtomogram of ``X``."""
        return self._classify(X, None).labels

    def _classify(
        self, subtomograms: Any, progress: Callable[[int, int], None] | None
    ) -> TemplateMatchingResult:
        from cryomine._device import resolve_device
        from cryomine.averaging import align_to_references
        from cryomine.averaging._engine import check_rotation_steps

        volumes = as_subtomogram_array(subtomograms)
        size = volumes.shape[1]
        names, stack = as_reference_stack(self.references, size)
        step, refine_to = self.angular_step_deg, self.refine_to_deg
        check_rotation_steps(step, refine_to)
        if not 0.0 <= self.max_shift_px <= size / 2:
            raise InputError(f"maximum shift {self.max_shift_px} px: expected between 0 and box/2")
        if not 0.0 < self.max_frequency <= 0.5 * np.sqrt(3.0):
            raise InputError(
                f"maximum frequency {self.max_frequency}: expected (0, 0.866] cycles per voxel"
            )
        start = time.perf_counter()
        found = align_to_references(
            volumes, stack, angular_step_deg=step, refine_to_deg=refine_to,
            max_shift_px=self.max_shift_px, max_frequency=self.max_frequency,
            n_hits=self.n_hits, tilt_range_deg=self.tilt_range_deg,
            device=resolve_device(self.device), progress=progress,
        )  # fmt: skip
        timings = {"total": time.perf_counter() - start}
        for index, name in enumerate(names):
            logger.info("template %s: mean score %.4f", name, float(found.scores[:, index].mean()))
        labels = found.scores.argmax(axis=1).astype(np.int64)
        rows = np.arange(len(labels))
        return TemplateMatchingResult(
            labels=labels,
            scores=found.scores,
            rotations=Rotation.from_quat(found.quaternions[rows, labels].reshape(-1, 4)),
            shifts_zyx=found.shifts_zyx[rows, labels],
            reference_names=names,
            n_rotations_scored=found.n_rotations_scored,
            timings_s=timings,
        )


def template_matching_classify(
    subtomograms: Any,
    references: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> TemplateMatchingResult:
    """``TemplateMatchingClassifier(references, **options).fit(subtomograms).result_``.

    The one-call form of :class:`TemplateMatchingClassifier` (same parameters, keyword only).
    """
    model = TemplateMatchingClassifier(references, **options)
    return model.fit(subtomograms, progress=progress).result_
