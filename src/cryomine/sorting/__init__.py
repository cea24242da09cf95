"""Subtomogram sorting: DISCA (YOPO features, Gaussian mixtures with BIC, DDBI), multi-pattern
pursuit (MPP: alignment to class averages) and their parts.

Both are scikit-learn shaped estimators: ``DISCA(width=0.25, random_state=0).fit(particles)``
then ``labels_`` (0-based), ``n_classes_``, ``features_``, ``predict``, ``save`` /
``DISCA.load``; ``MPP().fit(particles, init_labels=...)`` then ``labels_``, ``n_classes_``,
``rotations_``, ``half_maps_``; :func:`write_mpp_run` writes an MPP run directory;
``StagedSorter(DISCA(), stages=2)`` sorts in stages (set aside the classes that pass a split
test, sort the rest again).
"""

from cryomine.sorting._ddbi import ddbi
from cryomine.sorting._disca import DISCA
from cryomine.sorting._mixture import (
    MixtureParams,
    MixtureSelection,
    PCAProjection,
    fit_pca,
    match_labels,
    select_mixture,
)
from cryomine.sorting._mpp import MPP
from cryomine.sorting._mpp_run import write_mpp_run
from cryomine.sorting._stages import StagedSorter, sort_in_stages, split_test
from cryomine.sorting._training import categorical_hinge, extract_features
from cryomine.sorting._yopo import MIN_BOX_SIZE, YOPO, YOPOHead, yopo_channels

__all__ = [
    "DISCA",
    "MIN_BOX_SIZE",
    "MPP",
    "YOPO",
    "MixtureParams",
    "MixtureSelection",
    "PCAProjection",
    "StagedSorter",
    "YOPOHead",
    "categorical_hinge",
    "ddbi",
    "extract_features",
    "fit_pca",
    "match_labels",
    "select_mixture",
    "sort_in_stages",
    "split_test",
    "write_mpp_run",
    "yopo_channels",
]
