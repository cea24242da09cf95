"""The DISCA estimator: generalized EM between Gaussian mixtures on YOPO features and training."""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.exceptions import ConvergenceWarning

from cryomine._deprecation import renamed_argument, renamed_property
from cryomine._device import resolve_device
from cryomine.errors import InputError
from cryomine.sorting._ddbi import ddbi
from cryomine.sorting._invariance import cube_rotations
from cryomine.sorting._mixture import (
    COVARIANCE_TYPES,
    MixtureSelection,
    candidate_ks,
    check_covariance_types,
    fit_pca,
    select_mixture,
)
from cryomine.sorting._persist import (
    CHECKPOINT_NAME,
    arrays_from_fit,
    fit_from_arrays,
    read_bundle,
    write_bundle,
)
from cryomine.sorting._pretrain import load_pretrained_trunk
from cryomine.sorting._source import SubtomogramSource, as_source
from cryomine.sorting._state import (
    BestFit,
    LoopState,
    Trainables,
    read_checkpoint,
    rename_legacy_params,
    with_class_counts,
    write_checkpoint,
)
from cryomine.sorting._training import (
    extract_features,
    recalibrate_batchnorm,
    train_epoch,
    train_head,
)
from cryomine.sorting._yopo import MIN_BOX_SIZE, YOPO, YOPOHead

__all__ = ["DISCA", "PRESETS"]

logger = logging.getLogger(__name__)

#: Settings of the two presets. ``cryomine`` is the constructor's default; ``paper`` is the
#: specification of ../shared/docs/DISCA.md exactly (no input filter, full covariances and no
#: smallest-class rule, one epoch per iteration at lr 1e-5 in batches of 64, stop when fewer
#: than 0.1 % of labels change). Each departure of ``cryomine`` is listed with the measurement
#: behind it in docs/disca_measurements.md ("The cryomine preset: the measurements").
PRESETS: dict[str, dict[str, Any]] = {
    "cryomine": {
        "width": 0.25, "pretrained": "builtin",
        "lowpass_a": "auto", "covariance_types": COVARIANCE_TYPES, "n_init": 3,
        "min_class_size": None, "feature_rotations": 1, "learning_rate": 1e-4,
        "batch_size": 32, "min_steps": 0, "min_iter": 3, "zscore": True,
        "batchnorm_recalibration": True, "ddbi_across_k": True, "split_classes": True,
        "feature_transform": "none",
    },
    "paper": {
        "width": 1.0, "pretrained": None,
        "lowpass_a": None, "covariance_types": ("full",), "n_init": 1, "min_class_size": 1,
        "feature_rotations": 1, "learning_rate": 1e-5, "batch_size": 64, "min_steps": 0,
        "min_iter": 0, "zscore": True, "batchnorm_recalibration": False,
        "ddbi_across_k": True, "split_classes": False, "feature_transform": "none",
    },
}  # fmt: skip
#: Values of ``feature_transform``: what is applied to each feature value before the PCA.
FEATURE_TRANSFORMS = ("none", "signed-sqrt")


def transform_features(features: np.ndarray, transform: str) -> np.ndarray:
    """``features`` after one of :data:`FEATURE_TRANSFORMS`: ``"none"`` returns them as they
    are, ``"signed-sqrt"`` gives ``sign(x) · sqrt(|x|)`` value by value."""
    if transform == "signed-sqrt":
        return np.sign(features) * np.sqrt(np.abs(features))
    return features


#: Features of the first this many subtomograms are kept to measure ``feature_change``.
_N_PROBE = 256
_RESUMABLE = {"max_iter", "device", "mixed_precision"}


def _parameter_vector(module: torch.nn.Module) -> torch.Tensor:
    """All trainable weights of ``module`` as one detached float64 CPU vector."""
    return torch.cat([p.detach().double().cpu().flatten() for p in module.parameters()])


def _cpu_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU torch generator seeded from ``rng`` (for weight initialisation)."""
    return torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))


def _relative_change(features: np.ndarray, previous: np.ndarray | None) -> float | None:
    """Relative change ``‖F − F_prev‖ / ‖F_prev‖`` (Frobenius) of ``(n, D)`` features."""
    if previous is None:
        return None
    scale = float(np.linalg.norm(previous))
    return float(np.linalg.norm(features - previous)) / scale if scale > 0 else None


class DISCA(ClusterMixin, BaseEstimator):
    """Deep Iterative Subtomogram Clustering Approach (Zeng et al., PNAS 2023).

    Alternates (E) PCA + Gaussian mixtures with K (and the covariance model) chosen by BIC on
    YOPO features and (M) YOPO training on the smoothed mixture labels, originals plus a rotated
    copy of each. The answer is the iteration with the lowest DDBI. The defaults are cryomine's
    preset; ``DISCA.from_preset("paper")`` is the paper's specification. See ``docs/disca.md``.

    Parameters
    ----------
    k_range
        Inclusive ``(min, max)`` candidate numbers of classes.
    k_candidates
        Explicit candidate Ks; overrides ``k_range``.
    max_iter
        Maximum number of EM iterations.
    width
        YOPO channel multiplier (1.0: 64 … 208 channels; 0.25 is ~10x faster on a CPU).
    pretrained
        Starting weights of the trunk: ``"builtin"`` (the trunk shipped for ``width``, pretrained
        on simulated structures no sort is evaluated on; docs/disca.md), a directory written by
        ``benchmarks/pretrain_yopo.py``, or ``None`` (random orthogonal weights, the paper).
    batch_size
        Subtomograms per batch, for inference and training.
    pca_components
        Dimensions the features are reduced to before the mixture fits.
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"``.
    random_state
        Seed (or ``None`` for fresh entropy) of every random choice in ``fit``.
    head_epochs, head_learning_rate
        Training of a new head alone on frozen features whenever K changes.
    learning_rate, learning_rate_decay
        NAdam learning rate at iteration t: ``learning_rate · decay^(t+1)``.
    label_smoothing, label_smoothing_decay
        Target smoothing at iteration t: ``alpha = label_smoothing · decay^(t+1)``.
    tol
        Stop when fewer than this fraction of labels change (K unchanged), once ``min_iter``
        iterations have run and the network has been trained at least once.
    min_iter
        Iterations that must run before convergence may be declared.
    min_steps
        Floor on optimizer steps per M-step: the epoch is repeated ``ceil(min_steps /
        steps per epoch)`` times (0: one epoch, the paper's rule).
    covariance_types
        Covariance models tried for every candidate K (``"full"``, ``"diag"``, ``"tied"``,
        ``"spherical"``, ``"ppcaQ"``: a mixture of PPCA with ``Q`` factors per class, or
        ``"ppca"``: every ``Q`` from spherical to full); the model is chosen together with K
        by BIC.
    n_init
        Fresh mixture starts per K and covariance type (the warm start comes on top).
    min_class_size
        Smallest component (soft count) a fit may have to be eligible; ``None``: PCA
        dimensions + 1; 1: no rule (the paper). The former name ``min_cluster_size=`` is
        accepted with a ``FutureWarning``.
    split_classes
        After BIC's choice, split every class whose features are better described, by ICL, as
        two Gaussians sharing one covariance (two similar structures that one elongated
        full-covariance class would hold; docs/disca.md, "The split test").
    feature_rotations
        Features are averaged over this many exact 90° rotations of each box (1 … 24; 1: none).
    feature_transform
        Applied to every feature value before the PCA (and so in ``features_``, ``transform``
        and ``predict``): ``"none"`` or ``"signed-sqrt"``, ``sign(x) · sqrt(|x|)`` (power
        normalisation; docs/disca_measurements.md, "Signed square root of the features").
    batchnorm_recalibration
        After each M-step, re-estimate the BatchNorm statistics on the unaugmented subtomograms
        (dropout off), so that features change with the weights only. The first features use
        the initial statistics (mean 0, variance 1) either way (docs/disca.md).
    ddbi_across_k
        Whether the answer is the lowest-DDBI iteration of the whole run (the paper, the
        default) or, when false, the lowest-DDBI iteration since K last changed. DDBI is not
        comparable across K (it favours too few classes), but on the tuning sets the
        restricted rule never did better (docs/disca_measurements.md, "Which iteration is the
        answer").
    zscore
        Z-score each subtomogram (after the low-pass). ``False`` reproduces the reference code's
        unnormalised input.
    mixed_precision
        bf16/fp16 autocast on CUDA (never used on a CPU).
    lowpass_a
        Raised-cosine low-pass applied to every subtomogram as it is read, before z-scoring
        (fit, training copies and predict alike): a resolution in Å, ``"auto"`` (4 voxels,
        i.e. half Nyquist at any voxel size) or ``None`` (no filter). See ``docs/disca.md``.
    voxel_size_a
        Voxel size in Å of array input, needed only for ``lowpass_a`` in Å (a particle set's
        own voxel size is always used for a particle set).

    Attributes
    ----------
    labels_ : ndarray of int, shape (N,)
        0-based class of each subtomogram (the best-DDBI iteration; ``ddbi_across_k``).
    n_classes_ : int
        Number of classes found (``n_clusters_``: deprecated alias).
    probabilities_ : ndarray, shape (N, n_classes_)
        Mixture posteriors.
    features_ : ndarray of float32, shape (N, 1024)
        YOPO features (network of the best iteration, eval mode).
    ddbi_ : float
        DDBI of the answer.
    best_iteration_ : int
        Iteration the answer comes from.
    history_ : list of dict
        Per iteration (JSON-ready): ``iteration``, ``candidate_bic`` (K as str → lowest BIC),
        ``candidates`` (every mixture fit: K, covariance, start, BIC, smallest component,
        eligible), ``split_tests`` and ``splits`` (every split test after the choice, and how
        many classes it split; ``split_classes``), ``n_classes`` (and ``n_clusters``, its
        former name, for one release), ``covariance_type``, ``warm_bic`` / ``fresh_bic`` /
        ``warm_used``, ``ddbi``,
        ``label_change`` (fraction of labels differing from the previous iteration; ids are
        matched only when K is unchanged), ``feature_change`` (``‖F − F_prev‖ / ‖F_prev‖``
        of the features of the first 256 subtomograms against the previous iteration's;
        ``None`` at iteration 0), ``best_iteration``, and for iterations that trained
        ``alpha``, ``learning_rate``, ``head_loss`` (when K changed), ``loss``, ``epochs``,
        ``steps`` (optimizer steps) and ``weight_change`` (``‖θ − θ_before‖ / ‖θ_before‖`` of
        the trunk's weights over that M-step); ``timings_s`` (``features``, ``mixture``,
        ``train``).
    n_iter_ : int
        Iterations run.
    converged_ : bool
        Whether the labels stopped changing before ``max_iter`` (a ``ConvergenceWarning`` says
        so when they did not).
    device_ : str
        Torch device used.
    lowpass_fraction_ : float or None
        The low-pass cutoff used, as a fraction of Nyquist.
    fit_voxel_size_a_ : float or None
        Voxel size (Å) of the data fitted (``None`` for an array without ``voxel_size_a``).
    """

    def __init__(
        self,
        *,
        k_range: tuple[int, int] = (2, 20),
        k_candidates: Sequence[int] | None = None,
        max_iter: int = 20,
        width: float = 0.25,
        pretrained: str | Path | None = "builtin",
        batch_size: int = 32,
        pca_components: int = 16,
        device: str = "auto",
        random_state: int | None = None,
        head_epochs: int = 10,
        head_learning_rate: float = 1e-4,
        learning_rate: float = 1e-4,
        learning_rate_decay: float = 0.95,
        label_smoothing: float = 0.2,
        label_smoothing_decay: float = 0.9,
        tol: float = 1e-3,
        min_iter: int = 3,
        min_steps: int = 0,
        covariance_types: Sequence[str] = COVARIANCE_TYPES,
        n_init: int = 3,
        min_class_size: int | None = None,
        split_classes: bool = True,
        feature_rotations: int = 1,
        feature_transform: str = "none",
        batchnorm_recalibration: bool = True,
        ddbi_across_k: bool = True,
        zscore: bool = True,
        mixed_precision: bool = True,
        lowpass_a: float | str | None = "auto",
        voxel_size_a: float | None = None,
        **deprecated: Any,
    ) -> None:
        # former parameter names: accepted with a FutureWarning, never part of get_params()
        unknown = sorted(set(deprecated) - {"min_cluster_size"})
        if unknown:
            raise TypeError(f"DISCA got unexpected keyword arguments: {', '.join(unknown)}")
        min_class_size = renamed_argument(
            "min_cluster_size", "min_class_size", deprecated.get("min_cluster_size"), min_class_size
        )
        self.k_range = k_range
        self.k_candidates = k_candidates
        self.max_iter = max_iter
        self.width = width
        self.pretrained = pretrained
        self.batch_size = batch_size
        self.pca_components = pca_components
        self.device = device
        self.random_state = random_state
        self.head_epochs = head_epochs
        self.head_learning_rate = head_learning_rate
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.label_smoothing = label_smoothing
        self.label_smoothing_decay = label_smoothing_decay
        self.tol = tol
        self.min_iter = min_iter
        self.min_steps = min_steps
        self.covariance_types = covariance_types
        self.n_init = n_init
        self.min_class_size = min_class_size
        self.split_classes = split_classes
        self.feature_rotations = feature_rotations
        self.feature_transform = feature_transform
        self.batchnorm_recalibration = batchnorm_recalibration
        self.ddbi_across_k = ddbi_across_k
        self.zscore = zscore
        self.mixed_precision = mixed_precision
        self.lowpass_a = lowpass_a
        self.voxel_size_a = voxel_size_a

    # ----------------------------------------------------------------------------- parameters
    @classmethod
    def from_preset(cls, preset: str = "cryomine", **overrides: Any) -> DISCA:
        """A DISCA with a preset's settings (:data:`PRESETS`), then ``overrides`` on top."""
        if preset not in PRESETS:
            raise InputError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
        if "min_cluster_size" in overrides:  # the former name overrides the preset's value too
            overrides["min_class_size"] = renamed_argument(
                "min_cluster_size", "min_class_size", overrides.pop("min_cluster_size"),
                overrides.get("min_class_size"),
            )  # fmt: skip
        return cls(**{**PRESETS[preset], **overrides})

    def json_params(self) -> dict[str, Any]:
        """Hyperparameters as JSON-ready values (for run records, checkpoints and ``save``)."""
        params = self.get_params()
        params["k_range"] = [int(k) for k in params["k_range"]]
        if params["k_candidates"] is not None:
            params["k_candidates"] = [int(k) for k in params["k_candidates"]]
        params["covariance_types"] = list(params["covariance_types"])
        if params["pretrained"] is not None:
            params["pretrained"] = str(params["pretrained"])
        return params

    def _validate(self) -> None:
        candidate_ks(self.k_range, self.k_candidates)
        for name in ("max_iter", "batch_size", "pca_components"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} {getattr(self, name)!r}: expected a positive integer")
        if self.batch_size < 2:
            raise InputError(f"batch_size {self.batch_size}: expected at least 2 (batch norm)")
        if self.head_epochs < 0:
            raise InputError(f"head_epochs {self.head_epochs}: expected >= 0")
        if not float(self.learning_rate) > 0:
            raise InputError(f"learning_rate {self.learning_rate!r}: expected a positive number")
        if not 0 <= self.tol < 1:
            raise InputError(f"tol {self.tol}: expected a fraction in [0, 1)")
        for name in ("min_iter", "min_steps"):
            if int(getattr(self, name)) < 0:
                raise InputError(f"{name} {getattr(self, name)!r}: expected an integer >= 0")
        if int(self.n_init) < 1:
            raise InputError(f"n_init {self.n_init!r}: expected a positive number of starts")
        if self.min_class_size is not None and int(self.min_class_size) < 1:
            raise InputError(f"min_class_size {self.min_class_size!r}: expected >= 1 or None")
        check_covariance_types(self.covariance_types)
        cube_rotations(self.feature_rotations)
        if self.feature_transform not in FEATURE_TRANSFORMS:
            raise InputError(
                f"feature_transform {self.feature_transform!r}: expected one of "
                f"{', '.join(FEATURE_TRANSFORMS)}"
            )

    # ------------------------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: None = None,
        *,
        checkpoint_dir: Path | str | None = None,
        resume: bool = False,
        callback: Callable[[dict[str, Any]], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> DISCA:
        """Sort subtomograms into structurally homogeneous classes.

        Parameters
        ----------
        X
            A :class:`cryomine.io.ParticleSet` (streamed in batches) or an ``(N, S, S, S)``
            array, ``S >= 21``; each subtomogram is z-scored (unless ``zscore=False``).
        y
            Ignored (scikit-learn's signature).
        checkpoint_dir
            Directory for a checkpoint after every iteration (model, optimizer, RNG states,
            history, labels, best so far).
        resume
            Continue from the checkpoint in ``checkpoint_dir`` if there is one; the result equals
            an uninterrupted run with the same seed.
        callback
            Called after each iteration with that iteration's history entry.
        progress
            ``progress(done, total)`` over the training samples of each epoch.

        Returns
        -------
        DISCA
            ``self``, fitted.
        """
        self._validate()
        candidates = candidate_ks(self.k_range, self.k_candidates)
        source = as_source(
            X, lowpass_a=self.lowpass_a, voxel_size_a=self.voxel_size_a, zscore=self.zscore
        )
        self.fit_voxel_size_a_ = source.voxel_size_a or self.voxel_size_a
        if source.box_size < MIN_BOX_SIZE:
            raise InputError(
                f"box size {source.box_size}: DISCA needs subtomograms of at least "
                f"{MIN_BOX_SIZE} voxels"
            )
        device = resolve_device(self.device)
        rng = np.random.default_rng(self.random_state)
        generator = torch.Generator(device=device)
        generator.manual_seed(int(rng.integers(2**63 - 1)))
        trunk = YOPO(width=self.width, init_generator=_cpu_generator(rng))
        self.pretrained_record_ = None
        if self.pretrained is not None:
            state, meta = load_pretrained_trunk(self.pretrained, width=self.width)
            trunk.load_state_dict(state)
            self.pretrained_record_ = {
                key: meta.get(key) for key in ("format", "structures", "settings", "wall_s")
            }
        trunk = trunk.to(device)
        if device.type == "cpu":
            trunk = trunk.to(memory_format=torch.channels_last_3d)
        net = Trainables(trunk=trunk, rng=rng, generator=generator)
        loop = LoopState()
        checkpoint = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
        if resume and checkpoint is not None and checkpoint.is_dir():
            loop = read_checkpoint(
                checkpoint, self.json_params(), _RESUMABLE, net, source.n_particles
            )
            logger.info("resuming DISCA at iteration %d from %s", loop.iteration, checkpoint)

        if loop.m_step_pending and not loop.finished and loop.iteration < self.max_iter:
            # the last run stopped at its max_iter before training; train as it would have
            assert loop.labels is not None
            features = self._features(trunk, source, device)
            self._m_step(
                loop.iteration - 1, loop.history[-1], net, source, features, loop.labels, progress
            )
            loop.m_step_pending = False

        while not loop.finished and loop.iteration < self.max_iter:
            t = loop.iteration
            entry, selection, features, converged = self._e_step(
                t, loop, trunk, source, device, candidates, rng
            )
            loop.probe_features = features[:_N_PROBE].copy()
            loop.labels = selection.labels
            loop.iteration = t + 1
            loop.history.append(entry)
            if converged:
                loop.finished = True
            elif loop.iteration >= self.max_iter:
                # no training after the last iteration; a resumed run with more iterations does it
                loop.m_step_pending = True
            else:
                self._m_step(t, entry, net, source, features, selection.labels, progress)
            logger.info(
                "DISCA iteration %d: K=%d DDBI=%.4g label change=%s", t, selection.n_classes,
                entry["ddbi"], "-" if entry["label_change"] is None else f"{entry['label_change']:.4f}",
            )  # fmt: skip
            if checkpoint is not None:
                write_checkpoint(checkpoint, self.json_params(), loop, net)
            if callback is not None:
                callback(entry)

        self._finish(loop, trunk, source, device)
        if not self.converged_:
            warnings.warn(
                f"DISCA stopped at max_iter={self.max_iter} before the labels settled "
                f"({self._last_change_text()}); the answer is the best-DDBI iteration "
                f"{self.best_iteration_}. Try a larger max_iter (fit(..., resume=True) with a "
                "checkpoint continues), a larger tol, or more training per iteration (min_steps).",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _last_change_text(self) -> str:
        change = self.history_[-1]["label_change"] if self.history_ else None
        return "no previous labels" if change is None else f"{100 * change:.2f} % changed last"

    def _e_step(
        self,
        t: int,
        loop: LoopState,
        trunk: YOPO,
        source: SubtomogramSource,
        device: torch.device,
        candidates: list[int],
        rng: np.random.Generator,
    ) -> tuple[dict[str, Any], MixtureSelection, np.ndarray, bool]:
        """Iteration ``t``'s E-step: features, the mixture chosen with K, DDBI, the best fit so
        far (updated in ``loop``) and whether the fit may stop. Returns the history entry, the
        mixture selection, the features ``(N, D)`` and the convergence verdict."""
        start = time.perf_counter()
        features = self._features(trunk, source, device)
        features_s = time.perf_counter() - start
        start = time.perf_counter()
        pca = fit_pca(features, self.pca_components)
        reduced = pca.transform(features)
        previous_type = loop.history[-1]["covariance_type"] if loop.history else None
        selection = select_mixture(
            reduced, k_candidates=candidates, previous_labels=loop.labels,
            previous_covariance_type=previous_type, rng=rng,
            min_class_size=self.min_class_size,
            covariance_types=tuple(self.covariance_types), n_init=int(self.n_init),
            split=bool(self.split_classes),
        )  # fmt: skip
        score = ddbi(reduced, selection.labels)
        mixture_s = time.perf_counter() - start
        changed = None
        converged = False
        if loop.labels is not None:
            changed = float(np.mean(selection.labels != loop.labels))
            same_k = selection.n_classes == int(loop.labels.max()) + 1
            trained = any(e.get("steps", 0) > 0 for e in loop.history)
            may_stop = t + 1 >= int(self.min_iter) and (trained or int(self.min_steps) == 0)
            converged = may_stop and same_k and changed < self.tol
        if self._replaces_best(loop.best, score, selection.n_classes):
            loop.best = BestFit(
                ddbi=score, iteration=t, labels=selection.labels,
                probabilities=selection.probabilities,
                trunk_state=copy.deepcopy(trunk.state_dict()), pca=pca,
                mixture=selection.params, features=features,
            )  # fmt: skip
        entry: dict[str, Any] = {
            "iteration": t,
            "candidate_bic": {str(k): v for k, v in selection.bic.items()},
            "candidates": selection.candidates,
            "n_classes": selection.n_classes,
            "n_clusters": selection.n_classes,  # former key, kept for one release
            "covariance_type": selection.covariance_type,
            "warm_bic": selection.warm_bic,
            "fresh_bic": selection.fresh_bic,
            "warm_used": selection.warm_used,
            "rejected_k": selection.rejected,
            "split_tests": selection.split_tests,
            "splits": sum(bool(test["split"]) for test in selection.split_tests),
            "ddbi": score,
            "label_change": changed,
            "feature_change": _relative_change(features[:_N_PROBE], loop.probe_features),
            "best_iteration": loop.best.iteration,
            "timings_s": {"features": features_s, "mixture": mixture_s},
        }
        return entry, selection, features, converged

    def _replaces_best(self, best: BestFit, score: float, n_classes: int) -> bool:
        """Whether an iteration with DDBI ``score`` at ``n_classes`` becomes the answer so far:
        a lower DDBI, or (``ddbi_across_k`` false) any DDBI once K has changed."""
        if best.labels is None or score < best.ddbi:
            return True
        return not self.ddbi_across_k and n_classes != int(best.labels.max()) + 1

    def _m_step(
        self,
        t: int,
        entry: dict[str, Any],
        net: Trainables,
        source: SubtomogramSource,
        features: np.ndarray,
        labels: np.ndarray,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Train the network on ``labels`` (iteration ``t``); losses and time go to ``entry``."""
        device = next(net.trunk.parameters()).device
        n_classes = int(labels.max()) + 1
        alpha = self.label_smoothing * self.label_smoothing_decay ** (t + 1)
        lr = self.learning_rate * self.learning_rate_decay ** (t + 1)
        start = time.perf_counter()
        before = _parameter_vector(net.trunk)
        head_loss = None
        if net.head is None or net.head.n_classes != n_classes:
            net.head = YOPOHead(
                n_classes,
                feature_dim=net.trunk.feature_dim,
                init_generator=_cpu_generator(net.rng),
            ).to(device)
            head_loss = train_head(
                net.head, features, labels, alpha=alpha, epochs=self.head_epochs,
                learning_rate=self.head_learning_rate, batch_size=self.batch_size, rng=net.rng,
                device=device,
            )  # fmt: skip
            net.new_optimizer(lr)
        assert net.optimizer is not None
        for group in net.optimizer.param_groups:
            group["lr"] = lr
        steps_per_epoch = max(1, (2 * source.n_particles) // self.batch_size)
        epochs = max(1, math.ceil(int(self.min_steps) / steps_per_epoch))
        losses, steps = [], 0
        for _ in range(epochs):
            loss, taken = train_epoch(
                net.trunk, net.head, net.optimizer, source, labels, alpha=alpha,
                batch_size=self.batch_size, rng=net.rng, generator=net.generator,
                device=device, mixed_precision=self.mixed_precision, progress=progress,
            )  # fmt: skip
            losses.append(loss)
            steps += taken
        if self.batchnorm_recalibration:
            recalibrate_batchnorm(
                net.trunk, source, batch_size=self.batch_size, device=device,
                mixed_precision=self.mixed_precision,
            )  # fmt: skip
        after = _parameter_vector(net.trunk)
        entry.update({
            "alpha": alpha, "learning_rate": lr, "head_loss": head_loss, "loss": losses[-1],
            "epochs": epochs, "steps": steps,
            "weight_change": float(torch.linalg.norm(after - before) / torch.linalg.norm(before)),
        })  # fmt: skip
        entry["timings_s"]["train"] = time.perf_counter() - start

    def _features(self, trunk: YOPO, source: SubtomogramSource, device: torch.device) -> np.ndarray:
        features = extract_features(
            trunk, source, batch_size=self.batch_size, device=device,
            mixed_precision=self.mixed_precision, n_rotations=int(self.feature_rotations),
        )  # fmt: skip
        return transform_features(features, self.feature_transform)

    def _finish(
        self, loop: LoopState, trunk: YOPO, source: SubtomogramSource, device: torch.device
    ) -> None:
        best = loop.best
        assert best.trunk_state is not None and best.labels is not None
        trunk.load_state_dict(best.trunk_state)
        trunk.eval()
        if best.features is None:
            best.features = self._features(trunk, source, device)
        self.device_ = str(device)
        self.lowpass_fraction_ = source.lowpass_fraction
        self.trunk_ = trunk
        self.pca_ = best.pca
        self.mixture_ = best.mixture
        self.labels_ = best.labels
        self.probabilities_ = best.probabilities
        self.features_ = best.features
        self.n_classes_ = int(best.labels.max()) + 1
        self.ddbi_ = best.ddbi
        self.best_iteration_ = best.iteration
        self.history_ = loop.history
        self.n_iter_ = loop.iteration
        self.converged_ = loop.finished

    def set_params(self, **params: Any) -> DISCA:
        """scikit-learn's ``set_params``; the former ``min_cluster_size`` warns and maps."""
        if "min_cluster_size" in params:
            old = params.pop("min_cluster_size")
            params["min_class_size"] = renamed_argument(
                "min_cluster_size", "min_class_size", old, params.get("min_class_size")
            )
        return super().set_params(**params)

    #: Deprecated aliases (one release): ``n_clusters_`` → ``n_classes_``,
    #: ``min_cluster_size`` → ``min_class_size``.
    n_clusters_ = renamed_property("n_clusters_", "n_classes_")
    min_cluster_size = renamed_property("min_cluster_size", "min_class_size")

    # ------------------------------------------------------------------------ after fitting
    def _check_fitted(self) -> None:
        if not hasattr(self, "trunk_"):
            raise InputError("this DISCA model is not fitted yet; call fit() or DISCA.load() first")

    def transform(self, data: Any) -> np.ndarray:
        """YOPO features ``(N, 1024)`` float32 of a particle set or ``(N, S, S, S)`` array."""
        self._check_fitted()
        source = as_source(
            data,
            lowpass_a=self.lowpass_a,
            voxel_size_a=self.voxel_size_a or self.fit_voxel_size_a_,
            zscore=self.zscore,
        )
        if source.box_size < MIN_BOX_SIZE:
            raise InputError(
                f"box size {source.box_size}: the model needs at least {MIN_BOX_SIZE} voxels"
            )
        device = next(self.trunk_.parameters()).device
        return self._features(self.trunk_, source, device)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class posteriors ``(N, n_classes_)`` of new subtomograms (no training)."""
        features = self.transform(data)
        return self.mixture_.predict_proba(self.pca_.transform(features))

    def predict(self, data: Any) -> np.ndarray:
        """0-based class ``(N,)`` of each subtomogram of a particle set or array."""
        return self.predict_proba(data).argmax(axis=1)

    def fit_predict(self, X: Any, y: None = None, **fit_options: Any) -> np.ndarray:
        """``fit(X, **fit_options).labels_``."""
        return self.fit(X, **fit_options).labels_

    def save(self, path: Path | str, *, overwrite: bool = False) -> Path:
        """Save the fitted model to directory ``path``: config JSON, weights, PCA + mixture npz."""
        self._check_fitted()
        path = Path(path)
        meta = {
            "format": "cryomine-disca-1",
            "params": self.json_params(),
            "n_classes": self.n_classes_,
            "ddbi": self.ddbi_,
            "best_iteration": self.best_iteration_,
            "n_iter": self.n_iter_,
            "converged": self.converged_,
            "lowpass_fraction": self.lowpass_fraction_,
            "fit_voxel_size_a": self.fit_voxel_size_a_,
            "pretrained_record": getattr(self, "pretrained_record_", None),
            "history": self.history_,
        }
        arrays = {"labels": self.labels_, "probabilities": self.probabilities_}
        arrays.update(arrays_from_fit("", self.pca_, self.mixture_))
        write_bundle(path, meta=meta, tensors={"trunk": self.trunk_.state_dict()}, arrays=arrays,
                     overwrite=overwrite)  # fmt: skip
        return path

    @classmethod
    def load(cls, path: Path | str, *, device: str | None = None) -> DISCA:
        """Rebuild a model saved with :meth:`save` (``device`` overrides the saved one)."""
        meta, tensors, arrays = read_bundle(Path(path))
        if meta.get("format") != "cryomine-disca-1":
            raise InputError(f"{path}: not a saved DISCA model (format {meta.get('format')!r})")
        params = rename_legacy_params(meta["params"])
        params["k_range"] = tuple(params["k_range"])
        # models saved before an option existed were fitted as the paper's specification
        # (no low-pass), with full covariances, no rotation averaging and z-scored input
        legacy = {**PRESETS["paper"], "lowpass_a": None, "width": 1.0, "pretrained": None}
        for name, value in legacy.items():
            params.setdefault(name, value)
        params["covariance_types"] = tuple(params["covariance_types"])
        if device is not None:
            params["device"] = device
        model = cls(**params)
        resolved = resolve_device(model.device)
        trunk = YOPO(width=model.width).to(resolved)
        if resolved.type == "cpu":
            trunk = trunk.to(memory_format=torch.channels_last_3d)
        trunk.load_state_dict(tensors["trunk"])
        trunk.eval()
        model.trunk_ = trunk
        model.device_ = str(resolved)
        model.pca_, model.mixture_ = fit_from_arrays("", arrays)
        model.labels_ = arrays["labels"]
        model.probabilities_ = arrays["probabilities"]
        model.n_classes_ = int(meta["n_classes"] if "n_classes" in meta else meta["n_clusters"])
        model.ddbi_ = float(meta["ddbi"])
        model.best_iteration_ = int(meta["best_iteration"])
        model.n_iter_ = int(meta["n_iter"])
        model.converged_ = bool(meta["converged"])
        model.history_ = with_class_counts(meta["history"])
        model.lowpass_fraction_ = meta.get("lowpass_fraction")
        model.fit_voxel_size_a_ = meta.get("fit_voxel_size_a")
        model.pretrained_record_ = meta.get("pretrained_record")
        return model
