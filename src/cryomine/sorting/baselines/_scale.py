"""Scale-only control: cluster subtomograms by their overall scale alone.

Each subtomogram is reduced to one number, the natural log of its standard deviation over the
box (``log std``), and a 1-D Gaussian mixture is fitted for every candidate K with the shared
DISCA E-step (:func:`cryomine.sorting.select_mixture`, BIC). On z-scored data every ``std`` is 1
and this control has nothing to go on; on **unnormalized** data simulated with the paper's noise
model (``docs/simulation.md``) the noise level follows each structure's own signal variance, so
the scale alone tells the classes apart. A sorter that does not beat this control on such data
has not shown that it sorts by shape (BENCHMARKS.md §7).

The raw values are read: a :class:`cryomine.io.ParticleSet` is read straight from its
``subtomograms.zarr`` stack, never through a reading path that z-scores.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from cryomine._deprecation import renamed_property
from cryomine.errors import InputError

__all__ = ["ScaleMixture", "subtomogram_log_std"]

logger = logging.getLogger(__name__)

#: Subtomograms read from disk at a time.
_READ_BATCH = 256


def _raw_stack(particles: Any) -> Any:
    """The particle set's stored Zarr stack ``(N, S, S, S)``, opened read-only."""
    import zarr

    stack = Path(particles.directory) / "subtomograms.zarr"
    try:
        array = zarr.open_array(str(stack), mode="r")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{stack}: not a readable Zarr array ({error})") from error
    if array.attrs.get("normalized", True):
        logger.warning(
            "%s: the subtomograms are stored z-scored; their scale carries no class information "
            "(simulate with --no-normalize for the scale-only control)",
            particles.directory,
        )
    return array


def subtomogram_log_std(subtomograms: Any) -> np.ndarray:
    """Natural log of each subtomogram's standard deviation over its box (raw values).

    Parameters
    ----------
    subtomograms
        ``(N, S, S, S)`` array (particle, z, y, x; any array with the particle axis first and
        at least one more axis), or a :class:`cryomine.io.ParticleSet` (anything with a
        ``directory`` holding ``subtomograms.zarr``), read raw in batches.

    Returns
    -------
    ndarray of float64, shape (N,)
        ``log(std)``, population standard deviation (``ddof=0``) computed in float64.

    Raises
    ------
    InputError
        Fewer than one axis per subtomogram, non-finite values, or a constant subtomogram
        (standard deviation 0, whose log is undefined).
    """
    if hasattr(subtomograms, "directory") and hasattr(subtomograms, "n_particles"):
        array = _raw_stack(subtomograms)
        stds = []
        for start in range(0, int(array.shape[0]), _READ_BATCH):
            batch = np.asarray(array[start : start + _READ_BATCH], dtype=np.float64)
            stds.append(batch.reshape(len(batch), -1).std(axis=1))
        std = np.concatenate(stds) if stds else np.empty(0)
    else:
        data = np.asarray(subtomograms)
        if data.ndim < 2:
            raise InputError(
                f"subtomograms of shape {data.shape}: expected (N, S, S, S) or (N, n_voxels)"
            )
        flat = data.reshape(len(data), -1).astype(np.float64)
        if not np.isfinite(flat).all():
            raise InputError("subtomograms: contain NaN or infinite values")
        std = flat.std(axis=1)
    if not np.isfinite(std).all():
        raise InputError("subtomograms: contain NaN or infinite values")
    if std.size and float(std.min()) <= 0.0:
        raise InputError(
            f"subtomogram {int(np.argmin(std))}: constant (standard deviation 0); log std undefined"
        )
    return np.log(std)


class ScaleMixture(ClusterMixin, BaseEstimator):
    """Scale-only sorting control: Gaussian mixture + BIC on each subtomogram's ``log std``.

    Parameters
    ----------
    k_range
        Inclusive ``(min, max)`` candidate numbers of classes (as the other baselines).
    k_candidates
        Explicit candidate Ks; overrides ``k_range``.
    random_state
        Seed (or ``None`` for fresh entropy) of the mixture starts.

    Attributes
    ----------
    log_std_ : ndarray of float64, shape (N,)
        ``log`` of each training subtomogram's standard deviation.
    labels_ : ndarray of int64, shape (N,)
        0-based class of each subtomogram; classes are numbered by increasing mean scale.
    n_classes_ : int
        Number of classes chosen (lowest BIC among eligible fits); ``n_clusters_``: deprecated
        alias.
    probabilities_ : ndarray of float64, shape (N, n_classes_)
        Mixture posteriors.
    means_ : ndarray of float64, shape (n_classes_,)
        Mean ``log std`` of each component (increasing).
    bic_ : dict of int to float
        BIC of the best fit per candidate K.

    Examples
    --------
    >>> model = ScaleMixture(k_range=(2, 10), random_state=0).fit(volumes)  # doctest: +SKIP
    >>> model.n_classes_, model.labels_[:5]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        k_range: tuple[int, int] = (2, 20),
        k_candidates: list[int] | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.k_range = k_range
        self.k_candidates = k_candidates
        self.random_state = random_state

    #: Deprecated alias (one release) of ``n_classes_``.
    n_clusters_ = renamed_property("n_clusters_", "n_classes_")

    def fit(self, X: Any, y: Any = None) -> ScaleMixture:
        """Fit on subtomograms ``X`` (see :func:`subtomogram_log_std` for the accepted inputs).

        ``y`` is ignored (scikit-learn convention). Returns ``self``.
        """
        from cryomine.sorting._mixture import candidate_ks, select_mixture

        candidates = candidate_ks(self.k_range, self.k_candidates)
        log_std = subtomogram_log_std(X)
        if log_std.size < 2:
            raise InputError(f"{log_std.size} subtomograms: expected at least 2")
        rng = np.random.default_rng(self.random_state)
        selection = select_mixture(log_std[:, None], k_candidates=candidates, rng=rng)
        params = selection.params
        order = np.argsort(params.means[:, 0])
        params = params.reordered(order)
        self.mixture_ = params
        self.log_std_ = log_std
        self.probabilities_ = params.predict_proba(log_std[:, None])
        self.labels_ = self.probabilities_.argmax(axis=1).astype(np.int64)
        self.n_classes_ = int(params.n_classes)
        self.means_ = np.asarray(params.means[:, 0], dtype=np.float64)
        self.bic_ = {int(k): float(v) for k, v in selection.bic.items()}
        logger.info(
            "scale-only control: K = %d from %d subtomograms (log std %.3f .. %.3f)",
            self.n_classes_,
            log_std.size,
            float(log_std.min()),
            float(log_std.max()),
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """0-based class ``(N,)`` of new subtomograms under the fitted mixture."""
        if not hasattr(self, "mixture_"):
            raise InputError("ScaleMixture: call fit before predict")
        log_std = subtomogram_log_std(X)
        return self.mixture_.predict_proba(log_std[:, None]).argmax(axis=1).astype(np.int64)
