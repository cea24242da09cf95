"""Multi-pattern pursuit (MPP): template-free classification by alignment to class averages.

Every subtomogram is aligned to every *pattern* (a class average with two half maps,
:mod:`cryomine.sorting._patterns`) with the alignment engine
(:func:`cryomine.averaging.align_to_references`: missing-wedge constrained correlation,
global grid then local refinement) and assigned to the pattern it matches best; each
pattern's half maps are re-averaged from its members; patterns are dropped, merged and split
until no split holds. ``K`` is found, not given. One iteration:

1. **Align and assign.** The particles are split once into two fixed random halves. A
   particle of half ``h`` is scored against the *other* half's maps of every pattern, so
   that no particle is ever compared with an average it is part of (at low SNR a particle's
   own noise in an average of ``n`` would otherwise weigh like the signal itself and pin it
   to its current pattern). Each particle goes to its best-scoring pattern (hard
   assignment).
2. **Drop** patterns with fewer than ``min_class_size`` members (or an empty half); their
   particles go to their next-best pattern.
3. **Re-average** each pattern's two half maps from its members at the orientations found
   (wedge-weighted averages). With ``assignment_temperature`` ``T`` the assignment used here
   is soft: every particle adds to every pattern with weight ``softmax_k(s_k / T)`` of its
   scores (terms below ``_SOFT_FLOOR`` are left out); labels, drops, merges and splits stay
   hard.
4. **Merge**, at a *stable point*: when no more than ``tol`` of the labels changed (or the
   change has not fallen for ``_PATIENCE`` iterations) and nothing was dropped. Two
   patterns of one structure are two noisy copies of one signal, so the correlation of
   their half maps across patterns is about ``sqrt(c_a c_b)``, where ``c`` is each
   pattern's own half-to-half correlation
   (:func:`~cryomine.sorting._patterns.pattern_similarity`). The most similar pair whose
   cross correlation reaches ``merge_threshold · sqrt(c_a c_b)`` is merged: the smaller
   pattern is dropped and its particles move to their next-best pattern. With
   ``judge_splits_early`` the two sides of a split on trial are tested at every iteration
   instead (faster; off by default, see ``docs/mpp.md`` for the case where it fails).
5. **Split**, at a stable point where nothing merged: the pattern with the lowest
   half-to-half correlation (the least consistent, most likely mixed) is split. Its members
   are divided in two by two-means on the principal components of their wedge-masked
   differences from it (:func:`~cryomine.sorting._patterns.split_members`), and it is
   replaced by two patterns built from each side alone (reference-free initial models). A
   split that loses a side (dropped or merged) by the next stable point is rejected, and
   what is left of it (the parent itself, if both sides were lost) is not split again until a
   split is accepted; the fit ends when no pattern is left to try (or at ``max_iter``). A
   split still on trial at ``max_iter`` has not been judged, so it is withdrawn: its parent
   pattern comes back and the two sides go.

Patterns start from given labels (``fit(..., init_labels=labels)``: a previous sort, e.g.
DISCA's), or from one pattern of all particles. See ``docs/mpp.md`` for the measurements.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from sklearn.exceptions import ConvergenceWarning

from cryomine._deprecation import renamed_property
from cryomine._device import resolve_device
from cryomine.averaging import align_to_references, lowpass, particle_mask
from cryomine.errors import InputError
from cryomine.geometry import missing_wedge_mask
from cryomine.io import normalize_subtomograms
from cryomine.sorting._patterns import (
    Pattern,
    half_correlation,
    half_maps,
    initial_pattern,
    pattern_similarity,
    split_members,
)
from cryomine.sorting._persist import read_bundle, write_bundle
from cryomine.sorting._state import with_class_counts

__all__ = ["MPP"]

logger = logging.getLogger(__name__)

#: Soft weights below this are left out of a pattern's average (they change it by less).
_SOFT_FLOOR = 1e-3


class MPP:
    """Multi-pattern pursuit, scikit-learn shaped (see the module docstring).

    Parameters
    ----------
    max_iter
        Most iterations (one alignment of every particle to every pattern each). A fit of
        five classes from one pattern needed 44–80+ at N = 500 (docs/mpp.md, "Iterations").
    angular_step_deg, refine_to_deg
        Global rotation grid step and finest local refinement step, degrees.
    max_shift_px
        Largest particle shift searched, voxels (default box / 8).
    max_frequency
        Scoring and averaging band, cycles per voxel (0.5 = Nyquist).
    initial_rounds
        Rounds of global alignment that build a pattern from unaligned particles.
    min_class_size
        Fewest members a pattern may keep (count).
    merge_threshold
        Two patterns merge when their cross correlation reaches this fraction of what two
        patterns of one structure would give, ``sqrt(c_a c_b)``.
    propose
        Split patterns to look for more classes (``False``: K can only fall).
    judge_splits_early
        Test the two sides of a split on trial for a merge at every iteration, not only at
        stable points (the same ``merge_threshold``; ``docs/mpp.md`` has the measurement);
        their ratio is recorded as ``trial_ratio`` either way.
    tol
        Fraction of labels that may change at a stable point.
    assignment_temperature
        ``None`` (default): hard assignment in the averages. A positive number ``T``, in units
        of the constrained correlation score: soft assignment (module docstring, step 3;
        ``docs/mpp.md`` has the measurement).
    tilt_range_deg
        ``(min, max)`` tilt of the data, degrees (tilt axis y): every particle's missing wedge.
    wiener_constant
        ``λ`` of the wedge-weighted averages (:func:`cryomine.averaging.map_from_sums`).
    random_state
        Seeds the half split.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda[:i]"``.

    Attributes (after ``fit``)
    --------------------------
    labels_
        ``(N,)`` 0-based class of each particle (classes numbered by decreasing size).
    n_classes_
        Number of classes found (``n_clusters_``: deprecated alias).
    scores_
        ``(N, K)`` constrained correlation of each particle with each class's other-half map.
    rotations_, shifts_zyx_
        Orientation (active, reference→particle, x, y, z vectors) and shift (voxels, z, y, x)
        of each particle in its class's frame.
    half_
        ``(N,)`` 1 or 2: the half each particle belongs to.
    half_maps_
        ``(K, 2, S, S, S)`` float32 half maps of each class; ``averages_`` their sums / 2.
    history_
        One dict per iteration: sizes, label change, what was dropped, merged or proposed,
        half-map correlations, timings.
    n_iter_, converged_
    """

    def __init__(
        self,
        *,
        max_iter: int = 100,
        angular_step_deg: float = 30.0,
        refine_to_deg: float | None = 15.0,
        max_shift_px: float | None = None,
        max_frequency: float = 0.25,
        initial_rounds: int = 2,
        min_class_size: int = 6,
        merge_threshold: float = 0.9,
        propose: bool = True,
        judge_splits_early: bool = False,
        tol: float = 0.01,
        assignment_temperature: float | None = None,
        tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
        wiener_constant: float = 1.0,
        random_state: int = 0,
        device: str = "auto",
    ) -> None:
        self.max_iter = max_iter
        self.angular_step_deg = angular_step_deg
        self.refine_to_deg = refine_to_deg
        self.max_shift_px = max_shift_px
        self.max_frequency = max_frequency
        self.initial_rounds = initial_rounds
        self.min_class_size = min_class_size
        self.merge_threshold = merge_threshold
        self.propose = propose
        self.judge_splits_early = judge_splits_early
        self.tol = tol
        self.assignment_temperature = assignment_temperature
        self.tilt_range_deg = tilt_range_deg
        self.wiener_constant = wiener_constant
        self.random_state = random_state
        self.device = device

    #: Deprecated alias (one release) of ``n_classes_``.
    n_clusters_ = renamed_property("n_clusters_", "n_classes_")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        names = (
            "max_iter", "angular_step_deg", "refine_to_deg", "max_shift_px", "max_frequency",
            "initial_rounds", "min_class_size", "merge_threshold", "propose",
            "judge_splits_early", "tol", "assignment_temperature", "tilt_range_deg", "wiener_constant", "random_state",
            "device",
        )  # fmt: skip
        return {name: getattr(self, name) for name in names}

    def _check(self, n: int) -> None:
        if self.max_iter < 1:
            raise InputError(f"max_iter: expected at least 1, got {self.max_iter}")
        if not 0.0 < self.max_frequency <= 0.5:
            raise InputError(f"max_frequency {self.max_frequency}: expected (0, 0.5] cycles/voxel")
        if self.min_class_size < 2:
            raise InputError(f"min_class_size: expected at least 2, got {self.min_class_size}")
        if n < 2 * self.min_class_size:
            raise InputError(
                f"{n} subtomograms: MPP needs at least 2 × min_class_size = "
                f"{2 * self.min_class_size}"
            )
        if self.assignment_temperature is not None and not self.assignment_temperature > 0.0:
            raise InputError(f"assignment_temperature: expected a positive number or None, got "
                             f"{self.assignment_temperature}")  # fmt: skip
        if not 0.0 < self.merge_threshold:
            raise InputError(f"merge_threshold: expected a positive number, got "
                             f"{self.merge_threshold}")  # fmt: skip

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        init_labels: np.ndarray | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_dir: Path | str | None = None,
        resume: bool = False,
    ) -> MPP:
        """Find the classes of ``X``: ``(N, S, S, S)`` subtomograms (z, y, x, protein bright)
        or a :class:`cryomine.io.ParticleSet`.

        ``init_labels`` ``(N,)``: start classes (default: one pattern of all particles).
        ``callback(entry)`` gets each history entry. With ``checkpoint_dir`` the loop state is
        written there after every iteration; ``resume=True`` continues from it (same data and
        parameters).
        """
        from cryomine.sorting._source import as_subtomogram_array

        data = normalize_subtomograms(as_subtomogram_array(X, minimum=2))
        n = data.shape[0]
        self._check(n)
        dev = resolve_device(self.device)
        self.device_ = str(dev)
        ctx = _Context.build(torch.as_tensor(data, device=dev), self)
        checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / "mpp"
        if resume and checkpoint is not None and checkpoint.exists():
            state = _read_state(checkpoint, self.get_params(), n, dev)
            logger.info("resuming at iteration %d", state.iteration + 1)
        else:
            state = self._start(ctx, init_labels)
        while state.iteration < self.max_iter and not state.converged:
            entry = self._iterate(ctx, state)
            state.history.append(entry)
            state.iteration += 1
            logger.info("iteration %d: K=%d sizes %s changed %.3f %s", state.iteration,
                        entry["n_classes"], entry["sizes"], entry["label_change"],
                        entry["events"])  # fmt: skip
            if checkpoint is not None:
                _write_state(checkpoint, self.get_params(), state)
            if callback is not None:
                callback(entry)
        if not state.converged:
            withdrawn = _withdraw_pending_split(state)
            warnings.warn(
                f"MPP stopped at max_iter={self.max_iter} before every pattern had been tried "
                f"for a split{withdrawn}; raise max_iter (or --max-iter) to let it finish",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._finish(ctx, state)
        return self

    def _start(self, ctx: _Context, init_labels: np.ndarray | None) -> _State:
        n = ctx.volumes.shape[0]
        if init_labels is None:
            start = np.zeros(n, dtype=np.int64)
        else:
            start = np.asarray(init_labels)
            if start.shape != (n,):
                raise InputError(f"init_labels: expected shape ({n},), got {start.shape}")
            start = np.unique(start, return_inverse=True)[1].astype(np.int64)
        t0 = time.perf_counter()
        patterns: dict[int, Pattern] = {}
        for k in range(int(start.max()) + 1):
            rows = np.flatnonzero(start == k)
            if rows.size >= 2:
                patterns[k] = ctx.new_pattern(rows, f"initial class {k + 1}")
        if not patterns:
            raise InputError("init_labels: no class has 2 or more particles")
        history = [{
            "iteration": -1, "event": "initial patterns", "n_classes": len(patterns),
            "n_clusters": len(patterns),  # former key, kept for one release
            "sizes": [int(np.sum(start == k)) for k in sorted(patterns)],
            "timings_s": {"initial": time.perf_counter() - t0},
        }]  # fmt: skip
        return _State(patterns, np.full(n, -1, dtype=np.int64), max(patterns) + 1, history)

    def _iterate(self, ctx: _Context, state: _State) -> dict[str, Any]:
        """One iteration (module docstring, steps 1-5); returns its history entry."""
        n = ctx.volumes.shape[0]
        t_align = time.perf_counter()
        ids = sorted(state.patterns)
        scores, quats, shifts = ctx.align([state.patterns[i] for i in ids])
        t_average = time.perf_counter()
        events: list[str] = []
        alive = np.ones(len(ids), dtype=bool)
        labels = self._drop_small(scores, ctx.halves, alive, ids, events)
        for j in np.flatnonzero(~alive):
            del state.patterns[ids[j]]
        previous = _relabel(state.labels, state.label_ids, ids)
        changed = float(np.mean(labels != previous))
        soft = None
        if self.assignment_temperature is not None:
            soft = _soft_assignment(scores, alive, self.assignment_temperature)
        for j in np.flatnonzero(alive):
            members = labels == j if soft is None else soft[:, j] >= _SOFT_FLOOR
            rows = (np.flatnonzero(members & (ctx.halves == 1)),
                    np.flatnonzero(members & (ctx.halves == 2)))  # fmt: skip
            pattern = state.patterns[ids[j]]
            pattern.maps, pattern.weights = half_maps(
                ctx.volumes, Rotation.from_quat(quats[:, j]), shifts[:, j], rows, ctx.wedge,
                wiener_constant=self.wiener_constant,
                particle_weights=None if soft is None else soft[:, j],
            )  # fmt: skip
        if changed < state.least_change:
            state.least_change, state.plateau = changed, 0
        else:
            state.plateau += 1
        stable = not events and (changed <= self.tol or state.plateau >= _PATIENCE)
        t_merge = time.perf_counter()
        own = {i: half_correlation(p, ctx.mask, self.max_frequency)
               for i, p in state.patterns.items()}  # fmt: skip
        similarities: dict[str, float] = {}
        trial_ratio = self._trial_ratio(ctx, state, own)
        if trial_ratio is not None and self.judge_splits_early and not stable:
            merged = self._merge_pair(state.pending, trial_ratio, state.patterns, labels, ids,
                                      alive, scores, events)  # fmt: skip
            if merged is not None:
                labels = merged
        if stable:
            merged = self._merge(ctx, state.patterns, own, labels, ids, alive, scores, events,
                                 similarities)  # fmt: skip
            if merged is not None:
                labels = merged
                stable = False
        entry: dict[str, Any] = {
            "iteration": state.iteration,
            "n_classes": len(state.patterns),
            "n_clusters": len(state.patterns),  # former key, kept for one release
            "pattern_ids": sorted(state.patterns),
            "sizes": [int(np.sum(labels == ids.index(i))) for i in sorted(state.patterns)],
            "label_change": changed,
            "stable": stable,
            "half_correlation": {str(i): own[i] for i in sorted(state.patterns)},
            "similarity_ratio": similarities,
            "trial_ratio": trial_ratio,
            "mean_best_score": float(np.mean(scores[np.arange(n), labels])),
            "median_score_margin": _median_margin(scores, alive),
            # the mean weight a particle's soft assignment gives to other than its best pattern
            "soft_weight_elsewhere": 0.0 if soft is None else float(np.mean(1 - soft.max(axis=1))),
            "events": events,
        }
        if events:
            state.least_change, state.plateau = math.inf, 0
        gone = [i for i in state.pending if i not in state.patterns]
        if gone:  # a split that lost a side: the rest of it is not split again for now
            events.append(f"rejected split {'+'.join(map(str, state.pending))}")
            state.tried.update(i for i in state.pending if i in state.patterns)
            if len(gone) == len(state.pending) and state.split_parent is not None:
                parent, pattern = state.split_parent  # both sides lost: trying must not
                state.patterns[parent] = pattern  # cost the class, so the parent comes back
                state.tried.add(parent)
                events.append(f"restored {parent}")
            state.pending, state.split_parent = [], None
        if stable:
            self._propose_or_stop(ctx, state, labels, ids, (scores, quats, shifts), own, events)
        state.labels, state.label_ids = labels, ids
        entry["timings_s"] = {
            "align": t_average - t_align,
            "average": t_merge - t_average,
            "merge_and_propose": time.perf_counter() - t_merge,
        }
        return entry

    def _drop_small(
        self,
        scores: np.ndarray,
        halves: np.ndarray,
        alive: np.ndarray,
        ids: list[int],
        events: list[str],
    ) -> np.ndarray:
        """Assign, dropping too small patterns one at a time (smallest first)."""
        labels = _assign(scores, alive)
        while alive.sum() > 1:
            totals = np.bincount(labels, minlength=len(ids))
            per_half = [np.bincount(labels[halves == h], minlength=len(ids)) for h in (1, 2)]
            small = [j for j in np.flatnonzero(alive)
                     if totals[j] < self.min_class_size or min(per_half[0][j], per_half[1][j]) == 0]  # fmt: skip
            if not small:
                break
            j = min(small, key=lambda j: totals[j])
            alive[j] = False
            events.append(f"dropped {ids[j]} ({totals[j]} members)")
            labels = _assign(scores, alive)
        return labels

    def _propose_or_stop(
        self,
        ctx: _Context,
        state: _State,
        labels: np.ndarray,
        ids: list[int],
        alignment: tuple[np.ndarray, np.ndarray, np.ndarray],
        own: dict[int, float],
        events: list[str],
    ) -> None:
        """At a stable point: judge the pending split, then split the next pattern or stop.

        ``alignment``: this iteration's scores, quaternions and shifts (``ctx.align``)."""
        _, quats, shifts = alignment
        if state.pending:
            events.append(f"accepted split {'+'.join(map(str, state.pending))}")
            state.tried.clear()
            state.pending, state.split_parent = [], None
        candidates = [
            i for i in sorted(state.patterns, key=lambda i: own[i])
            if i not in state.tried and np.sum(labels == ids.index(i)) >= 2 * self.min_class_size
        ]  # fmt: skip
        if not self.propose or not candidates:
            state.converged = True
            return
        parent = candidates[0]
        column = ids.index(parent)
        members = np.flatnonzero(labels == column)
        side = split_members(
            ctx.volumes[members], Rotation.from_quat(quats[members, column]),
            shifts[members, column], ctx.wedge, state.patterns[parent].maps.mean(dim=0),
            max_frequency=self.max_frequency, seed=self.random_state + state.iteration,
        )  # fmt: skip
        state.split_parent = (parent, state.patterns.pop(parent))
        children = []
        for rows in (members[side], members[~side]):
            state.patterns[state.next_id] = ctx.new_pattern(
                rows, f"split of {parent} at iteration {state.iteration + 1}"
            )
            children.append(state.next_id)
            state.next_id += 1
        events.append(f"split {parent} into {children[0]} ({side.sum()} members) and "
                      f"{children[1]} ({(~side).sum()})")  # fmt: skip
        state.pending = children
        state.least_change, state.plateau = math.inf, 0

    def _trial_ratio(self, ctx: _Context, state: _State, own: dict[int, float]) -> float | None:
        """Similarity ratio (to ``sqrt(c_a c_b)``) of the two sides of the split on trial;
        ``None`` when no split is on trial or a side is gone."""
        if len(state.pending) != 2 or any(i not in state.patterns for i in state.pending):
            return None
        a, b = state.pending
        expected = math.sqrt(max(own[a], 0.0) * max(own[b], 0.0))
        if expected <= 0:
            return None
        similarity = pattern_similarity(
            state.patterns[a], state.patterns[b], ctx.mask, max_frequency=self.max_frequency,
            angular_step_deg=self.angular_step_deg, max_shift_px=ctx.max_shift_px,
        )  # fmt: skip
        return float(similarity / expected)

    def _merge_pair(
        self,
        pair: list[int],
        ratio: float,
        patterns: dict[int, Pattern],
        labels: np.ndarray,
        ids: list[int],
        alive: np.ndarray,
        scores: np.ndarray,
        events: list[str],
    ) -> np.ndarray | None:
        """Merge ``pair`` if ``ratio`` reaches the threshold: drop the smaller pattern; return
        the new labels, or ``None``."""
        if ratio < self.merge_threshold:
            return None
        a, b = pair
        size_a = int(np.sum(labels == ids.index(a)))
        size_b = int(np.sum(labels == ids.index(b)))
        keep, gone = (a, b) if size_a >= size_b else (b, a)
        events.append(f"merged {gone} into {keep} (ratio {ratio:.2f})")
        alive[ids.index(gone)] = False
        del patterns[gone]
        return _assign(scores, alive)

    def _merge(
        self,
        ctx: _Context,
        patterns: dict[int, Pattern],
        own: dict[int, float],
        labels: np.ndarray,
        ids: list[int],
        alive: np.ndarray,
        scores: np.ndarray,
        events: list[str],
        similarities: dict[str, float],
    ) -> np.ndarray | None:
        """Merge the most similar pair of patterns at or above the threshold (one pair per
        call): drop the smaller one; return the new labels, or ``None`` when none merged.
        ``similarities`` receives every pair's ratio to ``sqrt(c_a c_b)``."""
        best: tuple[float, int, int] | None = None
        present = sorted(patterns)
        for a_index, a in enumerate(present):
            for b in present[a_index + 1 :]:
                expected = math.sqrt(max(own[a], 0.0) * max(own[b], 0.0))
                if expected <= 0:
                    continue
                similarity = pattern_similarity(
                    patterns[a], patterns[b], ctx.mask, max_frequency=self.max_frequency,
                    angular_step_deg=self.angular_step_deg, max_shift_px=ctx.max_shift_px,
                )  # fmt: skip
                ratio = similarity / expected
                similarities[f"{a}-{b}"] = ratio
                if ratio >= self.merge_threshold and (best is None or ratio > best[0]):
                    best = (ratio, a, b)
        if best is None:
            return None
        ratio, a, b = best
        return self._merge_pair([a, b], ratio, patterns, labels, ids, alive, scores, events)

    def _finish(self, ctx: _Context, state: _State) -> None:
        """Final alignment to the surviving patterns; classes numbered by decreasing size."""
        ids = sorted(state.patterns)
        scores, quats, shifts = ctx.align([state.patterns[i] for i in ids])
        alive = np.ones(len(ids), dtype=bool)
        labels = self._drop_small(scores, ctx.halves, alive, ids, [])
        kept = np.flatnonzero(alive)
        counts = np.bincount(labels, minlength=len(ids))[kept]
        order = kept[np.argsort(-counts, kind="stable")]
        rank = np.full(len(ids), -1)
        rank[order] = np.arange(len(order))
        n = ctx.volumes.shape[0]
        rows = np.arange(n)
        self.labels_ = rank[labels]
        self.n_classes_ = len(order)
        self.scores_ = scores[:, order]
        self.rotations_ = Rotation.from_quat(quats[rows, labels])
        self.shifts_zyx_ = shifts[rows, labels]
        self.half_ = ctx.halves.copy()
        self.half_maps_ = torch.stack([state.patterns[ids[j]].maps for j in order]).cpu().numpy()
        self.averages_ = self.half_maps_.mean(axis=1)
        self.pattern_origins_ = [state.patterns[ids[j]].origin for j in order]
        self.history_ = state.history
        self.n_iter_ = state.iteration
        self.converged_ = state.converged


def _withdraw_pending_split(state: _State) -> str:
    """Undo a split still on trial (its parent back, its sides gone, the event in the last
    history entry); returns a clause for the warning, ``""`` if none was pending."""
    if not state.pending or state.split_parent is None:
        return ""
    parent, pattern = state.split_parent
    for child in state.pending:
        state.patterns.pop(child, None)
    state.patterns[parent] = pattern
    sides = "+".join(map(str, state.pending))
    state.history[-1]["events"].append(f"withdrew split {sides} (not judged by max_iter)")
    state.pending, state.split_parent = [], None
    return f"; the split {sides} of pattern {parent} was still on trial and is withdrawn"


#: Iterations without a new least label change (since the last event) that count as stable:
#: at low SNR a few percent of the labels keep flipping between similar patterns.
_PATIENCE = 3


@dataclass
class _State:
    """Everything the loop carries from one iteration to the next (and checkpoints)."""

    patterns: dict[int, Pattern]
    labels: np.ndarray  # columns of label_ids; -1 before the first iteration
    next_id: int
    history: list[dict[str, Any]]
    label_ids: list[int] = field(default_factory=list)
    tried: set[int] = field(default_factory=set)
    pending: list[int] = field(default_factory=list)  # the two sides of a split not yet judged
    split_parent: tuple[int, Pattern] | None = None  # the pattern the pending split replaced
    iteration: int = 0
    least_change: float = math.inf
    plateau: int = 0
    converged: bool = False


@dataclass(frozen=True)
class _Context:
    """The data and fixed settings of one fit: particles, halves, wedge, mask, search."""

    volumes: torch.Tensor
    halves: np.ndarray
    wedge: torch.Tensor
    mask: torch.Tensor
    max_shift_px: float
    model: MPP

    @classmethod
    def build(cls, volumes: torch.Tensor, model: MPP) -> _Context:
        n, size = volumes.shape[0], volumes.shape[-1]
        dev = volumes.device
        wedge = missing_wedge_mask((size,) * 3, tilt_range_deg=tuple(model.tilt_range_deg))
        mask = particle_mask(size)
        rng = np.random.default_rng(model.random_state)
        halves = np.ones(n, dtype=np.int64)
        halves[rng.permutation(n)[n // 2 :]] = 2
        shift = float(size) / 8.0 if model.max_shift_px is None else float(model.max_shift_px)
        return cls(volumes, halves, torch.as_tensor(wedge, device=dev),
                   torch.as_tensor(mask, device=dev), shift, model)  # fmt: skip

    def new_pattern(self, rows: np.ndarray, origin: str) -> Pattern:
        m = self.model
        return initial_pattern(
            self.volumes[rows], self.halves[rows], self.wedge, self.mask, origin=origin,
            rounds=m.initial_rounds, angular_step_deg=m.angular_step_deg,
            max_frequency=m.max_frequency, max_shift_px=self.max_shift_px,
            wiener_constant=m.wiener_constant,
        )  # fmt: skip

    def align(self, patterns: list[Pattern]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores ``(N, K)``, quaternions ``(N, K, 4)``, shifts ``(N, K, 3)`` of every particle
        against the other half's map of every pattern (step 1)."""
        m = self.model
        n, k = self.volumes.shape[0], len(patterns)
        scores, quats, shifts = np.zeros((n, k)), np.zeros((n, k, 4)), np.zeros((n, k, 3))
        for h in (1, 2):
            rows = np.flatnonzero(self.halves == h)
            other = 2 - h  # index of the other half's map
            references = torch.stack([lowpass(p.maps[other], m.max_frequency) * self.mask
                                      for p in patterns])  # fmt: skip
            weights = torch.stack([p.weights[other] for p in patterns])
            found = align_to_references(
                self.volumes[rows], references, angular_step_deg=m.angular_step_deg,
                refine_to_deg=m.refine_to_deg, max_shift_px=self.max_shift_px,
                max_frequency=m.max_frequency, wedges=self.wedge, reference_weights=weights,
            )  # fmt: skip
            scores[rows], quats[rows], shifts[rows] = (
                found.scores,
                found.quaternions,
                found.shifts_zyx,
            )
        return scores, quats, shifts


def _assign(scores: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Best living pattern (column) of every particle."""
    masked = np.where(alive[None, :], scores, -np.inf)
    return masked.argmax(axis=1)


def _soft_assignment(scores: np.ndarray, alive: np.ndarray, temperature: float) -> np.ndarray:
    """``(N, K)`` weights ``softmax_k(s_k / T)`` over the living patterns (0 for the others)."""
    logits = np.where(alive[None, :], scores / temperature, -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def _median_margin(scores: np.ndarray, alive: np.ndarray) -> float | None:
    """Median over particles of best minus second-best living score (the scale of ``T``)."""
    if alive.sum() < 2:
        return None
    ranked = np.sort(scores[:, alive], axis=1)
    return float(np.median(ranked[:, -1] - ranked[:, -2]))


def _relabel(labels: np.ndarray, label_ids: list[int], ids: list[int]) -> np.ndarray:
    """``labels`` (columns of ``label_ids``) as columns of ``ids`` (-1 where gone)."""
    column = {pattern: j for j, pattern in enumerate(ids)}
    lookup = np.array([column.get(i, -1) for i in label_ids] + [-1], dtype=np.int64)
    return lookup[labels]


def _write_state(path: Path, params: dict[str, Any], state: _State) -> None:
    ids = sorted(state.patterns)
    meta = {
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "pattern_ids": ids,
        "origins": [state.patterns[i].origin for i in ids],
        "label_ids": state.label_ids,
        "next_id": state.next_id,
        "tried": sorted(state.tried),
        "pending": state.pending,
        "split_parent": None if state.split_parent is None else state.split_parent[0],
        "split_parent_origin": None if state.split_parent is None else state.split_parent[1].origin,
        "iteration": state.iteration,
        "least_change": None if math.isinf(state.least_change) else state.least_change,
        "plateau": state.plateau,
        "converged": state.converged,
        "history": state.history,
    }
    arrays = {"labels": state.labels}
    for i in ids:
        arrays[f"maps_{i}"] = state.patterns[i].maps.cpu().numpy()
        arrays[f"weights_{i}"] = state.patterns[i].weights.cpu().numpy()
    if state.split_parent is not None:
        arrays["maps_split_parent"] = state.split_parent[1].maps.cpu().numpy()
        arrays["weights_split_parent"] = state.split_parent[1].weights.cpu().numpy()
    write_bundle(path, meta=meta, tensors={}, arrays=arrays, overwrite=True)


def _read_state(path: Path, params: dict[str, Any], n: int, device: torch.device) -> _State:
    meta, _, arrays = read_bundle(path)
    saved = meta["params"]
    current = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    different = sorted(k for k in current if k not in ("max_iter", "device")
                       and saved.get(k) != current[k])  # fmt: skip
    if different:
        raise InputError(
            f"{path}: checkpoint was made with different settings ({', '.join(different)}); "
            "use the same settings or a new output directory"
        )
    if arrays["labels"].shape != (n,):
        raise InputError(f"{path}: checkpoint is for {arrays['labels'].shape[0]} subtomograms, "
                         f"not {n}")  # fmt: skip
    patterns = {
        i: Pattern(torch.as_tensor(arrays[f"maps_{i}"], device=device),
                   torch.as_tensor(arrays[f"weights_{i}"], device=device), origin)
        for i, origin in zip(meta["pattern_ids"], meta["origins"], strict=True)
    }  # fmt: skip
    split_parent = None
    if meta.get("split_parent") is not None:
        split_parent = (meta["split_parent"], Pattern(
            torch.as_tensor(arrays["maps_split_parent"], device=device),
            torch.as_tensor(arrays["weights_split_parent"], device=device),
            meta["split_parent_origin"]))  # fmt: skip
    least = meta["least_change"]
    return _State(
        patterns, arrays["labels"].astype(np.int64), meta["next_id"],
        with_class_counts(meta["history"]),
        label_ids=list(meta["label_ids"]), tried=set(meta["tried"]), pending=list(meta["pending"]),
        iteration=meta["iteration"], least_change=math.inf if least is None else least,
        plateau=meta["plateau"], converged=meta["converged"], split_parent=split_parent,
    )  # fmt: skip
