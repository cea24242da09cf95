"""How well a sorting recovers the true classes: K, homogeneity, V-measure, ARI, accuracy."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn import metrics

from cryomine.errors import InputError

__all__ = ["SortingMetrics", "evaluate_sorting", "sorting_metrics"]

logger = logging.getLogger(__name__)

_TRUTH_COLUMNS = ("cmTrueClass", "cmStructure", "rlnClassNumber")
_ID = "cmParticleId"


@dataclass(frozen=True)
class SortingMetrics:
    """Agreement of predicted classes with true ones.

    Attributes
    ----------
    n_particles
        Particles compared.
    n_true_classes, n_predicted_classes
        True and estimated K.
    homogeneity, completeness, v_measure, adjusted_rand
        scikit-learn scores (1 is perfect).
    accuracy
        Fraction of particles in the right class after the Hungarian one-to-one matching of
        predicted to true classes; ``None`` unless the estimated K equals the true K.
    true_classes, predicted_classes
        Class values, in the order of the confusion matrix rows / columns.
    confusion
        ``confusion[i][j]``: particles of true class ``true_classes[i]`` predicted as
        ``predicted_classes[j]``.
    matching
        Predicted class → matched true class (when ``accuracy`` is defined), else ``None``.
    """

    n_particles: int
    n_true_classes: int
    n_predicted_classes: int
    homogeneity: float
    completeness: float
    v_measure: float
    adjusted_rand: float
    accuracy: float | None
    true_classes: list[Any]
    predicted_classes: list[Any]
    confusion: list[list[int]]
    matching: dict[str, Any] | None

    @property
    def k_correct(self) -> bool:
        return self.n_true_classes == self.n_predicted_classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (with ``k_correct``)."""
        return {**asdict(self), "k_correct": self.k_correct}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def sorting_metrics(true_labels: Any, predicted_labels: Any) -> SortingMetrics:
    """Compare two labelings of the same particles.

    Parameters
    ----------
    true_labels, predicted_labels
        ``(N,)`` class labels of any hashable type (ints, names), same particle order.

    Returns
    -------
    SortingMetrics
    """
    true_arr = np.asarray(true_labels)
    pred_arr = np.asarray(predicted_labels)
    if true_arr.ndim != 1 or true_arr.shape != pred_arr.shape or true_arr.size == 0:
        raise InputError(
            f"labels of shapes {true_arr.shape} and {pred_arr.shape}: "
            "expected two equal, non-empty (N,)"
        )
    true_classes, true_index = np.unique(true_arr, return_inverse=True)
    pred_classes, pred_index = np.unique(pred_arr, return_inverse=True)
    confusion = metrics.confusion_matrix(true_index, pred_index)[
        : true_classes.size, : pred_classes.size
    ]
    homogeneity, completeness, v_measure = metrics.homogeneity_completeness_v_measure(
        true_index, pred_index
    )
    accuracy = None
    matching = None
    if true_classes.size == pred_classes.size:
        rows, cols = linear_sum_assignment(confusion, maximize=True)
        accuracy = float(confusion[rows, cols].sum() / true_arr.size)
        matching = {
            str(_plain(pred_classes[c])): _plain(true_classes[r])
            for r, c in zip(rows, cols, strict=True)
        }
    return SortingMetrics(
        n_particles=int(true_arr.size),
        n_true_classes=int(true_classes.size),
        n_predicted_classes=int(pred_classes.size),
        homogeneity=float(homogeneity),
        completeness=float(completeness),
        v_measure=float(v_measure),
        adjusted_rand=float(metrics.adjusted_rand_score(true_index, pred_index)),
        accuracy=accuracy,
        true_classes=[_plain(c) for c in true_classes],
        predicted_classes=[_plain(c) for c in pred_classes],
        confusion=confusion.astype(int).tolist(),
        matching=matching,
    )


def evaluate_sorting(
    truth: pd.DataFrame,
    predicted: pd.DataFrame,
    *,
    truth_column: str | None = None,
    predicted_column: str = "rlnClassNumber",
) -> SortingMetrics:
    """Compare a sorted particle table with the true classes, matching rows by ``cmParticleId``.

    Parameters
    ----------
    truth
        Table with ``cmParticleId`` and the true class: ``truth_column``, or by default the first
        of ``cmTrueClass``, ``cmStructure``, ``rlnClassNumber`` it has.
    predicted
        Table with ``cmParticleId`` and ``predicted_column`` (1-based ``rlnClassNumber``).
    truth_column, predicted_column
        Column names of the classes.

    Returns
    -------
    SortingMetrics
        Over the particles present in both tables (those in only one are logged and skipped).
    """
    if truth_column is None:
        truth_column = next((c for c in _TRUTH_COLUMNS if c in truth.columns), None)
        if truth_column is None:
            raise InputError(
                f"truth table: no class column; expected one of {', '.join(_TRUTH_COLUMNS)}"
            )
    for name, table, column in (
        ("truth", truth, truth_column),
        ("predicted", predicted, predicted_column),
    ):
        for needed in (_ID, column):
            if needed not in table.columns:
                raise InputError(f"{name} table: no {needed} column")
        if table[_ID].duplicated().any():
            raise InputError(f"{name} table: {_ID} values are not unique")
    merged = truth[[_ID, truth_column]].merge(
        predicted[[_ID, predicted_column]], on=_ID, how="inner", suffixes=("_true", "_pred")
    )
    if merged.empty:
        raise InputError(f"truth and predicted tables share no {_ID}; are they the same particles?")
    skipped = len(truth) + len(predicted) - 2 * len(merged)
    if skipped:
        logger.warning("%d particles are in only one of the two tables; they are left out", skipped)
    if truth_column == predicted_column:
        truth_values, predicted_values = (
            merged[f"{truth_column}_true"],
            merged[f"{predicted_column}_pred"],
        )
    else:
        truth_values, predicted_values = merged[truth_column], merged[predicted_column]
    return sorting_metrics(truth_values.to_numpy(), predicted_values.to_numpy())
