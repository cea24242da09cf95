"""Baselines DISCA is compared with (the paper's Table 1).

- :class:`TemplateMatchingClassifier`: align every subtomogram to each known reference
  (missing-wedge-aware constrained correlation over rotations x FFT translations) and assign
  the best one.
- :class:`AutoencoderClustering`: a small 3-D convolutional autoencoder with a sparse 32-d code
  (Zeng et al. 2018), K chosen by Gaussian mixtures + BIC exactly as DISCA chooses it, then
  k-means on the codes.
- :class:`ScaleMixture`: the scale-only control, a Gaussian mixture + BIC on each subtomogram's
  log standard deviation (raw values); it separates classes only where the data's scale
  carries them (unnormalized subtomograms of the paper's noise model).

All three are scikit-learn estimators (constructor stores the parameters, ``fit`` returns
``self``, ``labels_``, ``n_classes_``, ``predict``, ``get_params`` / ``clone``), driven as DISCA
is; :func:`template_matching_classify` and :func:`autoencoder_cluster` are their one-call forms
returning the result objects. See ``docs/baselines.md``.
"""

from cryomine.sorting.baselines._autoencoder import (
    AutoencoderClustering,
    AutoencoderResult,
    ConvAutoencoder,
    autoencoder_cluster,
    train_autoencoder,
)
from cryomine.sorting.baselines._scale import ScaleMixture, subtomogram_log_std
from cryomine.sorting.baselines._template_matching import (
    TemplateMatchingClassifier,
    TemplateMatchingResult,
    template_matching_classify,
)

__all__ = [
    "AutoencoderClustering",
    "AutoencoderResult",
    "ConvAutoencoder",
    "ScaleMixture",
    "TemplateMatchingClassifier",
    "TemplateMatchingResult",
    "autoencoder_cluster",
    "subtomogram_log_std",
    "template_matching_classify",
    "train_autoencoder",
]
