"""Autoencoder + clustering baseline (Zeng, Leung, Frangakis, Xu, JSB 2018).

A small 3-D convolutional autoencoder compresses each subtomogram to a ``code_size``-d code
(32 in the paper) with an L1 penalty on the code (sparsity); it is trained to reconstruct the
subtomograms (mean squared error). The codes are then clustered by k-means. So that the
comparison with DISCA is fair, K is chosen exactly as DISCA chooses it: the codes are reduced
by :func:`cryomine.sorting.fit_pca` and :func:`cryomine.sorting.select_mixture` fits a
full-covariance Gaussian mixture for every candidate K and keeps the lowest BIC.

Network for a box ``S``, zero-padded to ``P = 4·ceil(S / 4)`` (``c1, c2 = channels``)::

    encoder  Conv3d(1→c1, 4, stride 2, pad 1) → ELU
             → Conv3d(c1→c2, 4, stride 2, pad 1) → ELU → flatten (c2·(P/4)³)
             → Linear → code (no activation)
    decoder  Linear(code → c2·(P/4)³) → ELU → ConvTranspose3d(c2→c1, 4, stride 2, pad 1)
             → ELU → ConvTranspose3d(c1→1, 4, stride 2, pad 1) → crop to S

Strided convolutions rather than full-resolution convolutions + pooling: on a CPU the backward
pass of a full-resolution 3-D convolution is 20-30x slower than the strided one here. ELU rather
than ReLU: with ReLU the encoder's units all died at SNR 0.01 and every code was the same.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from torch import nn
from torch.nn import functional as F

from cryomine._deprecation import renamed_property
from cryomine.errors import InputError
from cryomine.sorting._source import as_subtomogram_array

__all__ = [
    "AutoencoderClustering",
    "AutoencoderResult",
    "ConvAutoencoder",
    "autoencoder_cluster",
    "train_autoencoder",
]

logger = logging.getLogger(__name__)

#: Smallest box accepted, voxels.
MIN_BOX_SIZE = 8


class ConvAutoencoder(nn.Module):
    """3-D convolutional autoencoder with a dense ``code_size``-d bottleneck.

    Parameters
    ----------
    box_size
        Edge ``S`` of the cubic input, voxels (at least 8).
    code_size
        Length of the code.
    channels
        Channels ``(c1, c2)`` of the two convolution stages.
    init_generator
        Source of the initial weights (Xavier-uniform, zero biases).
    """

    def __init__(
        self,
        box_size: int,
        *,
        code_size: int = 32,
        channels: tuple[int, int] = (16, 32),
        init_generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if box_size < MIN_BOX_SIZE:
            raise InputError(f"box size {box_size}: the autoencoder needs at least {MIN_BOX_SIZE}")
        if code_size < 1:
            raise InputError(f"code size {code_size}: expected a positive integer")
        c1, c2 = (int(c) for c in channels)
        self.box_size = int(box_size)
        self.code_size = int(code_size)
        self._padded = 4 * math.ceil(box_size / 4)
        self._inner = self._padded // 4
        flat = c2 * self._inner**3
        self.encoder = nn.Sequential(
            nn.Conv3d(1, c1, 4, stride=2, padding=1), nn.ELU(),
            nn.Conv3d(c1, c2, 4, stride=2, padding=1), nn.ELU(),
            nn.Flatten(), nn.Linear(flat, code_size),
        )  # fmt: skip
        self.expand = nn.Sequential(nn.Linear(code_size, flat), nn.ELU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose3d(c2, c1, 4, stride=2, padding=1), nn.ELU(),
            nn.ConvTranspose3d(c1, 1, 4, stride=2, padding=1),
        )  # fmt: skip
        self._channels = (c1, c2)
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight, generator=init_generator)
                nn.init.zeros_(module.bias)

    def encode(self, volumes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, code_size)`` of volumes ``(B, S, S, S)``."""
        pad = self._padded - self.box_size
        return self.encoder(F.pad(volumes[:, None], (0, pad) * 3))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Volumes ``(B, S, S, S)`` from codes ``(B, code_size)``."""
        inner = self.expand(codes).reshape(-1, self._channels[1], *(self._inner,) * 3)
        size = self.box_size
        return self.decoder(inner)[:, 0, :size, :size, :size]

    def forward(self, volumes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction ``(B, S, S, S)`` and code ``(B, code_size)`` of ``(B, S, S, S)``."""
        codes = self.encode(volumes)
        return self.decode(codes), codes


def train_autoencoder(
    model: ConvAutoencoder,
    volumes: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    l1_weight: float = 1e-3,
    rng: np.random.Generator,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with Adam on MSE + ``l1_weight`` · mean |code|.

    Parameters
    ----------
    volumes
        ``(N, S, S, S)`` float32 training subtomograms (z-scored).
    epochs, batch_size, learning_rate
        Passes over the data, subtomograms per step, Adam step size.
    l1_weight
        Weight of the code sparsity penalty (per code entry).
    rng
        Source of the batch order.

    Returns
    -------
    list of float
        Mean training loss of each epoch.
    """
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    data = torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))
    losses: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(len(data))
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = data[order[start : start + batch_size]].to(device)
            reconstruction, codes = model(batch)
            loss = torch.mean((reconstruction - batch) ** 2) + l1_weight * codes.abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(data))
        logger.debug("autoencoder epoch %d: loss %.5f", epoch + 1, losses[-1])
        if progress is not None:
            progress(epoch + 1, epochs)
    model.eval()
    return losses


@torch.no_grad()
def _encode_all(
    model: ConvAutoencoder, volumes: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    model.eval()
    codes = [
        model.encode(torch.from_numpy(volumes[i : i + batch_size]).to(device)).cpu().numpy()
        for i in range(0, len(volumes), batch_size)
    ]
    return np.concatenate(codes).astype(np.float32)


@dataclass(frozen=True)
class AutoencoderResult:
    """Outcome of :class:`AutoencoderClustering` (its ``result_``).

    Attributes
    ----------
    labels
        ``(N,)`` int64 0-based k-means cluster of each subtomogram.
    codes
        ``(N, code_size)`` float32 codes.
    n_classes
        K chosen by the mixture + BIC selection (the number of k-means clusters);
        ``n_clusters``: deprecated alias.
    bic
        BIC of the best mixture for each candidate K.
    mixture_labels
        ``(N,)`` labels of the chosen mixture (argmax posterior), for reference.
    losses
        Mean training loss of each epoch.
    model
        The trained autoencoder (CPU, eval mode).
    timings_s
        Wall time in seconds: ``"train"``, ``"cluster"``, ``"total"``.
    lowpass_fraction
        Input low-pass cutoff as a fraction of Nyquist (``None``: none); new data must be
        filtered the same way before :attr:`model` encodes it (see :meth:`encode`).
    """

    labels: np.ndarray
    codes: np.ndarray
    n_classes: int
    bic: dict[int, float]
    mixture_labels: np.ndarray
    losses: list[float]
    model: ConvAutoencoder
    timings_s: dict[str, float] = field(default_factory=dict)
    lowpass_fraction: float | None = None

    n_clusters = renamed_property("n_clusters", "n_classes")

    def encode(self, subtomograms: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Codes ``(N, code_size)`` of ``(N, S, S, S)`` subtomograms, filtered and z-scored as in
        training (CPU)."""
        from cryomine.sorting._source import SubtomogramSource

        volumes = as_subtomogram_array(subtomograms)
        source = SubtomogramSource(volumes, lowpass_fraction=self.lowpass_fraction, minimum=1)
        return _encode_all(
            self.model, source.read(np.arange(len(volumes))), batch_size, torch.device("cpu")
        )


class AutoencoderClustering(ClusterMixin, BaseEstimator):
    """Train an autoencoder on the subtomograms, choose K by mixture + BIC, k-means the codes.

    Parameters
    ----------
    k_range, k_candidates
        Candidate K: ``k_range`` (min, max) inclusive, or an explicit list (as DISCA).
    code_size, channels
        Code length and convolution channels of :class:`ConvAutoencoder`.
    epochs, batch_size, learning_rate, l1_weight
        Training (:func:`train_autoencoder`).
    pca_components
        Code dimensions kept for the mixture fits (as DISCA; at most ``code_size``).
    lowpass_a, voxel_size_a
        Input low-pass, exactly as DISCA's (``"auto"``: half Nyquist; a resolution in Å, which
        needs ``voxel_size_a`` for an array; ``None``: none), so both see the same data. Every
        subtomogram is then z-scored.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda[:i]"``.
    random_state
        Seed of the weights, batch order, mixture and k-means starts.

    Attributes
    ----------
    result_ : AutoencoderResult
        Everything the fit produced (labels, codes, BIC, losses, the trained model).
    labels_ : ndarray of int64, shape (N,)
        0-based k-means class of each training subtomogram.
    n_classes_ : int
        K chosen by the mixture + BIC selection.
    codes_ : ndarray of float32, shape (N, code_size)
        Codes of the training subtomograms.
    bic_ : dict of int to float
        BIC of the best mixture for each candidate K.
    model_ : ConvAutoencoder
        The trained autoencoder (CPU, eval mode).
    kmeans_ : sklearn.cluster.KMeans or None
        The k-means fit on the codes (``None`` when every code was the same).

    Examples
    --------
    >>> ae = AutoencoderClustering(epochs=30, random_state=0).fit(volumes)  # doctest: +SKIP
    >>> ae.n_classes_, ae.labels_[:5]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        k_range: tuple[int, int] = (2, 20),
        k_candidates: Sequence[int] | None = None,
        code_size: int = 32,
        channels: tuple[int, int] = (16, 32),
        epochs: int = 30,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        l1_weight: float = 1e-3,
        pca_components: int = 16,
        lowpass_a: float | str | None = "auto",
        voxel_size_a: float | None = None,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.k_range = k_range
        self.k_candidates = k_candidates
        self.code_size = code_size
        self.channels = channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l1_weight = l1_weight
        self.pca_components = pca_components
        self.lowpass_a = lowpass_a
        self.voxel_size_a = voxel_size_a
        self.device = device
        self.random_state = random_state

    def fit(
        self, X: Any, y: Any = None, *, progress: Callable[[int, int], None] | None = None
    ) -> AutoencoderClustering:
        """Fit on subtomograms ``X``: ``(N, S, S, S)`` float array (particle, z, y, x) or a
        :class:`cryomine.io.ParticleSet`.

        ``y`` is ignored (scikit-learn convention). ``progress(epoch, epochs)`` is called after
        each training epoch. Returns ``self``.
        """
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        from cryomine._device import resolve_device
        from cryomine.sorting import fit_pca, select_mixture
        from cryomine.sorting._mixture import candidate_ks
        from cryomine.sorting._source import as_source

        subtomograms = X
        if not hasattr(subtomograms, "read"):  # array-likes: checked (shape, NaN) as given
            subtomograms = as_subtomogram_array(subtomograms, minimum=2)
        # as_source takes a particle set's own voxel size; voxel_size_a serves arrays
        source = as_source(subtomograms, lowpass_a=self.lowpass_a, voxel_size_a=self.voxel_size_a)
        volumes = as_subtomogram_array(source.read(np.arange(source.n_particles)), minimum=2)
        candidates = candidate_ks(self.k_range, self.k_candidates)
        for name, value in (("epochs", self.epochs), ("batch size", self.batch_size),
                            ("PCA components", self.pca_components)):  # fmt: skip
            if int(value) < 1:
                raise InputError(f"{name} {value}: expected a positive integer")
        torch_device = resolve_device(self.device)
        rng = np.random.default_rng(self.random_state)
        generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        model = ConvAutoencoder(
            volumes.shape[1],
            code_size=self.code_size,
            channels=self.channels,
            init_generator=generator,
        )
        start = time.perf_counter()
        losses = train_autoencoder(
            model, volumes, epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, l1_weight=self.l1_weight, rng=rng,
            device=torch_device, progress=progress,
        )  # fmt: skip
        codes = _encode_all(model, volumes, max(self.batch_size, 64), torch_device)
        train_s = time.perf_counter() - start

        start = time.perf_counter()
        kmeans = None
        if float(codes.std(axis=0).max()) <= 1e-6 * max(1.0, float(np.abs(codes).max())):
            # Degenerate network: one code for everything. One cluster; no mixture to fit.
            logger.warning("autoencoder: every subtomogram got the same code; reporting one class")
            n_classes, bic = 1, {}
            labels = np.zeros(len(codes), dtype=np.int64)
            mixture_labels = labels
        else:
            reduced = fit_pca(codes, min(self.pca_components, self.code_size)).transform(codes)
            selection = select_mixture(reduced, k_candidates=candidates, rng=rng)
            n_classes, bic = selection.n_classes, selection.bic
            mixture_labels = selection.labels.astype(np.int64)
            with threadpool_limits(1):
                kmeans = KMeans(
                    n_clusters=n_classes, n_init=10, random_state=int(rng.integers(2**31 - 1))
                )
                labels = kmeans.fit_predict(codes.astype(np.float64)).astype(np.int64)
        cluster_s = time.perf_counter() - start
        logger.info("autoencoder: K = %d (BIC), final loss %.4f", n_classes, losses[-1])
        self.result_ = AutoencoderResult(
            labels=labels,
            codes=codes,
            n_classes=int(n_classes),
            bic=bic,
            mixture_labels=mixture_labels,
            losses=losses,
            model=model.cpu(),
            timings_s={"train": train_s, "cluster": cluster_s, "total": train_s + cluster_s},
            lowpass_fraction=source.lowpass_fraction,
        )
        self.labels_ = self.result_.labels
        self.n_classes_ = self.result_.n_classes
        self.codes_ = self.result_.codes
        self.bic_ = self.result_.bic
        self.model_ = self.result_.model
        self.kmeans_ = kmeans
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Codes ``(N, code_size)`` of new subtomograms, filtered and z-scored as in training."""
        if not hasattr(self, "result_"):
            raise InputError("AutoencoderClustering: call fit before transform")
        return self.result_.encode(X)

    def predict(self, X: Any) -> np.ndarray:
        """0-based class ``(N,)`` of new subtomograms: the nearest k-means centre of each code."""
        codes = self.transform(X)
        if self.kmeans_ is None:
            return np.zeros(len(codes), dtype=np.int64)
        return self.kmeans_.predict(codes.astype(np.float64)).astype(np.int64)


def autoencoder_cluster(
    subtomograms: Any,
    *,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> AutoencoderResult:
    """``AutoencoderClustering(**options).fit(subtomograms).result_``.

    The one-call form of :class:`AutoencoderClustering` (same parameters, keyword only).
    """
    return AutoencoderClustering(**options).fit(subtomograms, progress=progress).result_
