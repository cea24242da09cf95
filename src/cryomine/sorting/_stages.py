"""Multi-stage sorting: set aside the classes that are homogeneous, sort the rest again.

The DISCA paper's suggestion for rare structures: an abundant class found in the first sort is
removed, and the remaining particles are sorted again, where a rare class no longer has to win
against the abundant ones for the model choice (BIC charges every class the same number of
parameters whatever its size, so at a fixed N a 5 % class is the first to be merged away).

Which classes are set aside is decided by a **split test** on each class alone: the particles
of class ``c`` are reduced by a PCA fitted to them, and the same model choice the sort uses
(:func:`cryomine.sorting.select_mixture`: BIC over K and covariance models, every component of at
least ``d + 1`` particles) decides between one and two Gaussian components. A class whose
members are better described by one component is *homogeneous* and set aside; the others are
pooled and sorted again from scratch (new features, new K). The last stage keeps all its classes.
Stopping early: when every class passes, when none passes (sorting the same particles again
would repeat the same answer) or when fewer particles remain than a sort needs.

The stage loop is :func:`sort_in_stages` (the CLI's ``cryomine sort --stages`` calls it with a
function that writes each stage's run directory); :class:`StagedSorter` wraps any estimator
with ``fit(X)`` / ``labels_`` for use from Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone

from cryomine._deprecation import renamed_property
from cryomine.errors import InputError
from cryomine.sorting._mixture import COVARIANCE_TYPES, fit_pca, select_mixture

__all__ = ["SPLIT_DIMENSIONS", "StagedSorter", "StagesResult", "sort_in_stages", "split_test"]

#: Dimensions of the split test's PCA. Measured on the tuning structures (pretrained-trunk
#: features, SNR 0.03, 100 per class; ``benchmarks/results/stages/``): at 4 and 8 every pure
#: class passed and every class with 10 or 25 particles of another structure mixed in failed;
#: at 16 the 10-particle minorities went unseen (a component needs 17 members), at 2 one pure
#: class failed. 8 lets a minority of 9 particles be seen.
SPLIT_DIMENSIONS = 8

#: A stage: ``fit_stage(indices, stage)`` sorts the particles at ``indices`` (0-based rows of
#: the whole set, ascending) and returns their 0-based labels ``(n,)`` and the features
#: ``(n, D)`` the split test reads, both in the order of ``indices``.
StageFit = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def split_test(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    dimensions: int = SPLIT_DIMENSIONS,
    covariance_types: Sequence[str] = COVARIANCE_TYPES,
    n_init: int = 3,
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """For each class: does the sort's model choice prefer one component to two on its members?

    Parameters
    ----------
    features
        ``(N, D)`` features of the particles (float).
    labels
        ``(N,)`` 0-based class labels.
    dimensions
        Dimensions ``d`` of the PCA fitted to each class (fewer when the class is small: at most
        ``n_c // 4``). A second component is eligible only with ``d + 1`` members, so ``d``
        bounds the smallest minority the test can see (see :data:`SPLIT_DIMENSIONS`).
    covariance_types, n_init, random_state
        As :func:`cryomine.sorting.select_mixture`.

    Returns
    -------
    list of dict
        One per class, in class order: ``class`` (0-based), ``size``, ``dimensions``,
        ``bic_one``, ``bic_two`` (``None`` when no eligible two-component fit exists) and
        ``homogeneous``.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise InputError(
            f"features of shape {features.shape} and {labels.shape} labels: expected (N, D) "
            "features with one label per row"
        )
    rng = np.random.default_rng(random_state)
    tests = []
    for c in range(int(labels.max()) + 1 if labels.size else 0):
        members = features[labels == c]
        size = len(members)
        dims = int(min(dimensions, size // 4, members.shape[1]))
        row: dict[str, Any] = {"class": c, "size": size, "dimensions": dims,
                               "bic_one": None, "bic_two": None}  # fmt: skip
        if dims < 1 or size < 2 * (dims + 1):
            row["homogeneous"] = True  # too small to hold two eligible components
            tests.append(row)
            continue
        reduced = fit_pca(members, dims).transform(members)
        selection = select_mixture(
            reduced, k_candidates=[1, 2], rng=rng, covariance_types=tuple(covariance_types),
            n_init=n_init,
        )  # fmt: skip
        eligible = {1: [], 2: []}  # type: dict[int, list[float]]
        for record in selection.candidates:
            if record["eligible"]:
                eligible[int(record["k"])].append(float(record["bic"]))  # type: ignore[arg-type]
        row["bic_one"] = min(eligible[1]) if eligible[1] else None
        row["bic_two"] = min(eligible[2]) if eligible[2] else None
        row["homogeneous"] = selection.n_classes == 1
        tests.append(row)
    return tests


@dataclass
class StagesResult:
    """The merged outcome of a multi-stage sort.

    Attributes
    ----------
    labels
        ``(N,)`` 0-based class of every particle; classes of stage 1 come first.
    class_stage
        ``(K,)`` 1-based stage in which each class was found.
    stages
        One record per stage run: ``stage``, ``n_particles``, ``n_classes``, ``tests`` (the
        split test of each class, empty at the last stage), ``kept`` (0-based classes of that
        stage set aside) and ``stopped`` (why the loop ended there, or ``None``).
    """

    labels: np.ndarray
    class_stage: np.ndarray
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        """Number of classes K."""
        return int(self.class_stage.size)

    n_clusters = renamed_property("n_clusters", "n_classes")


def sort_in_stages(
    n_particles: int,
    fit_stage: StageFit,
    *,
    stages: int,
    min_particles: int = 2,
    test_options: dict[str, Any] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> StagesResult:
    """Sort in up to ``stages`` stages (see the module docstring) and merge the labels.

    Parameters
    ----------
    n_particles
        N, the size of the whole set.
    fit_stage
        Sorts a subset (:data:`StageFit`).
    stages
        Most stages (1: a single sort).
    min_particles
        Fewest particles a stage may be run on; fewer remaining ends the loop.
    test_options
        Keyword arguments of :func:`split_test`.
    callback
        Called with each stage's record as it finishes.
    """
    if int(stages) < 1:
        raise InputError(f"stages {stages!r}: expected a positive number of stages")
    labels = np.full(int(n_particles), -1, dtype=np.int64)
    class_stage: list[int] = []
    records: list[dict[str, Any]] = []
    remaining = np.arange(int(n_particles), dtype=np.int64)
    for stage in range(1, int(stages) + 1):
        stage_labels, features = fit_stage(remaining, stage)
        stage_labels = np.asarray(stage_labels, dtype=np.int64)
        n_classes = int(stage_labels.max()) + 1
        record: dict[str, Any] = {"stage": stage, "n_particles": int(remaining.size),
                                  "n_classes": n_classes, "tests": [], "stopped": None}  # fmt: skip
        keep = list(range(n_classes))
        if stage < stages:
            record["tests"] = split_test(features, stage_labels, **(test_options or {}))
            passed = [t["class"] for t in record["tests"] if t["homogeneous"]]
            rest = int(np.isin(stage_labels, passed, invert=True).sum())
            if len(passed) == n_classes:
                record["stopped"] = "every class passed the split test"
            elif not passed:
                record["stopped"] = "no class passed the split test"
            elif rest < min_particles:
                record["stopped"] = f"{rest} particles left, fewer than {min_particles}"
            else:
                keep = passed
        else:
            record["stopped"] = "last stage"
        record["kept"] = keep
        for c in keep:
            labels[remaining[stage_labels == c]] = len(class_stage)
            class_stage.append(stage)
        records.append(record)
        if callback is not None:
            callback(record)
        remaining = remaining[np.isin(stage_labels, keep, invert=True)]
        if record["stopped"] is not None:
            break
    assert (labels >= 0).all()
    return StagesResult(labels=labels, class_stage=np.asarray(class_stage), stages=records)


def _subset(X: Any, indices: np.ndarray) -> Any:
    if isinstance(X, np.ndarray):
        return X[indices]
    if hasattr(X, "subset"):
        return X.subset(indices)
    raise InputError(f"{type(X).__name__}: expected a ParticleSet or an (N, S, S, S) array")


class StagedSorter(ClusterMixin, BaseEstimator):
    """Any sorter run in stages: ``StagedSorter(DISCA(), stages=2).fit(X).labels_``.

    Each stage fits a fresh clone of ``estimator`` on the particles left. The split test reads
    the estimator's ``features_`` when it has them (DISCA), else the features of the shipped
    pretrained YOPO trunk (:func:`cryomine.sorting._pretrain.pretrained_features`).

    Attributes (after ``fit``): ``labels_`` ``(N,)``, ``n_classes_``, ``class_stage_``
    ``(K,)`` (1-based), ``stages_`` (the stage records of :class:`StagesResult`),
    ``estimators_`` (the fitted estimator of each stage).
    """

    def __init__(
        self,
        estimator: Any,
        *,
        stages: int = 2,
        split_dimensions: int = SPLIT_DIMENSIONS,
        n_init: int = 3,
        random_state: int = 0,
        device: str = "auto",
    ) -> None:
        self.estimator = estimator
        self.stages = stages
        self.split_dimensions = split_dimensions
        self.n_init = n_init
        self.random_state = random_state
        self.device = device

    #: Deprecated alias (one release) of ``n_classes_``.
    n_clusters_ = renamed_property("n_clusters_", "n_classes_")

    def fit(self, X: Any, y: None = None) -> StagedSorter:
        """Sort ``X`` (a ParticleSet or an ``(N, S, S, S)`` array) in stages."""
        n = len(X)
        self.estimators_: list[Any] = []

        def fit_stage(indices: np.ndarray, stage: int) -> tuple[np.ndarray, np.ndarray]:
            part = X if indices.size == n else _subset(X, indices)
            model = clone(self.estimator).fit(part)
            self.estimators_.append(model)
            features = getattr(model, "features_", None)
            if features is None:
                from cryomine.sorting._pretrain import pretrained_features

                features = pretrained_features(
                    part, voxel_size_a=getattr(model, "voxel_size_a", None), device=self.device
                )
            return np.asarray(model.labels_), np.asarray(features)

        result = sort_in_stages(
            n, fit_stage, stages=self.stages,
            test_options={"dimensions": self.split_dimensions, "n_init": self.n_init,
                          "random_state": self.random_state},
        )  # fmt: skip
        self.labels_ = result.labels
        self.n_classes_ = result.n_classes
        self.class_stage_ = result.class_stage
        self.stages_ = result.stages
        return self
