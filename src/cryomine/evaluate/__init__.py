"""Evaluation: how well sorting and picking recover the truth of simulated data."""

from cryomine.evaluate._picking import PickingScores, evaluate_picking, match_positions
from cryomine.evaluate._pipeline import class_average_fsc, evaluate_pipeline
from cryomine.evaluate._sorting import SortingMetrics, evaluate_sorting, sorting_metrics

__all__ = [
    "PickingScores",
    "SortingMetrics",
    "class_average_fsc",
    "evaluate_picking",
    "evaluate_pipeline",
    "evaluate_sorting",
    "match_positions",
    "sorting_metrics",
]
