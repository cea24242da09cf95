"""The learned picker: a 3-D CNN that maps every window of a tomogram to a unit-norm embedding.

TomoTwin's approach (Rice et al. 2023) built on cryomine's own simulator: trained by a triplet
loss with semi-hard mining on windows of simulated crowded tomograms, used to pick a structure
given one example (reference-based picking), or to find the kinds of object in a tomogram by
clustering its embeddings. See ``docs/picker.md``.

Volumes are ``(z, y, x)``; coordinates ``(n, 3)`` in z, y, x voxels; embeddings ``(..., D)``.
"""

from cryomine.picker._clustering import (
    EmbeddingClusters,
    cells_at,
    cluster_embeddings,
    inner_cells,
    locate_targets,
)
from cryomine.picker._data import (
    EXTRA_CLASSES,
    TrainingConditions,
    WindowPool,
    simulate_window_pool,
)
from cryomine.picker._embedding import (
    cut_windows,
    embed_tomogram,
    embed_windows,
    normalize_tomogram,
    tomogram_statistics,
)
from cryomine.picker._examples import (
    REFERENCE_ORIENTATIONS,
    ReferenceKind,
    reference_kind,
    simulate_reference_windows,
)
from cryomine.picker._mining import Triplets, cosine_distances, semi_hard_triplets, triplet_loss
from cryomine.picker._network import (
    NATIVE_STRIDE,
    PickerConfig,
    PickerNet,
    load_picker,
    save_picker,
    shipped_model_directory,
)
from cryomine.picker._reference import (
    AUTO_THRESHOLD_MADS,
    EmbeddingPicks,
    find_similarity_peaks,
    pick_by_reference,
    robust_threshold,
    similarity_map,
    target_embedding,
)
from cryomine.picker._training import TrainingOptions, TrainingResult, train_picker

__all__ = [
    "AUTO_THRESHOLD_MADS",
    "EXTRA_CLASSES",
    "NATIVE_STRIDE",
    "REFERENCE_ORIENTATIONS",
    "EmbeddingClusters",
    "EmbeddingPicks",
    "PickerConfig",
    "PickerNet",
    "ReferenceKind",
    "TrainingConditions",
    "TrainingOptions",
    "TrainingResult",
    "Triplets",
    "WindowPool",
    "cells_at",
    "cluster_embeddings",
    "cosine_distances",
    "cut_windows",
    "embed_tomogram",
    "embed_windows",
    "find_similarity_peaks",
    "inner_cells",
    "load_picker",
    "locate_targets",
    "normalize_tomogram",
    "pick_by_reference",
    "reference_kind",
    "robust_threshold",
    "save_picker",
    "semi_hard_triplets",
    "shipped_model_directory",
    "similarity_map",
    "simulate_reference_windows",
    "simulate_window_pool",
    "target_embedding",
    "tomogram_statistics",
    "train_picker",
    "triplet_loss",
]
