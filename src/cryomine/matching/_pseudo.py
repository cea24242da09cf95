"""A generative model of macromolecule-like shapes: pseudo-atom clusters with the template's size
and power spectrum (the null structures of the significance test).

A pseudo-structure is drawn in three steps:

1. **Shape.** ``n_atoms`` pseudo-atoms at positions drawn from a Gaussian whose covariance is the
   template's own (density-weighted second moments about its centre of mass), with its three axis
   lengths scaled by independent log-normal factors (``shape_spread``) and turned by a uniform
   random rotation, so that the clusters have the template's size and elongation but random shape
   and orientation. ``n_atoms`` is the template's support volume divided by the volume of one
   pseudo-atom (a Gaussian of ``atom_sigma_px``), so the clusters are as compact as a protein.
2. **Density.** Each pseudo-atom is a Gaussian of ``atom_sigma_px``; their sum is the density.
3. **Power spectrum.** The amplitude of every Fourier shell is set to the template's (the phases
   are kept), so the pseudo-structure has exactly the template's rotationally averaged power
   spectrum, and the same sign of contrast.

Why this model and not a generative network trained on known structures (the review chapter's
GAN): the null distribution of a correlation score on noise is set by what the score "sees" of the
template — its mask, its power spectrum after the wedge and CTF filter (the number of effective
degrees of freedom of the correlation) and its compactness. This model matches exactly those and
randomises everything else, needs no training data, network or GPU, and is reproducible from a
seed (``docs/matching.md``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError

__all__ = ["pseudo_structures"]

#: Template voxels above this fraction of the maximum make its support (its volume).
_SUPPORT_FRACTION = 0.1


def _moments(density: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    positive = np.clip(density, 0.0, None).astype(np.float64)
    total = positive.sum()
    if not total > 0:
        raise InputError("template: has no positive (protein) density to model")
    grid = np.indices(density.shape).reshape(3, -1).T.astype(np.float64)
    weights = positive.reshape(-1) / total
    centre = weights @ grid
    offsets = grid - centre
    covariance = (offsets * weights[:, None]).T @ offsets
    support = int((positive > _SUPPORT_FRACTION * positive.max()).sum())
    return centre, covariance, support


def _shell_amplitudes(spectrum: np.ndarray, shells: np.ndarray, n_shells: int) -> np.ndarray:
    power = np.bincount(
        shells.reshape(-1), weights=np.abs(spectrum).reshape(-1) ** 2, minlength=n_shells
    )
    counts = np.bincount(shells.reshape(-1), minlength=n_shells)
    return np.sqrt(power / np.maximum(counts, 1))


def pseudo_structures(
    density: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    atom_sigma_px: float = 1.0,
    shape_spread: float = 0.2,
) -> np.ndarray:
    """Draw ``n`` pseudo-structures shaped like ``density`` (see the module docstring).

    Parameters
    ----------
    density
        ``(S, S, S)`` template density (z, y, x), either contrast; its sign is kept.
    n
        Number of pseudo-structures, ``>= 1``.
    rng
        Source of randomness.
    atom_sigma_px
        Standard deviation of one pseudo-atom, voxels.
    shape_spread
        Standard deviation of the log of the axis-length factors.

    Returns
    -------
    ndarray of float32, shape (n, S, S, S)
    """
    from cryomine.geometry import fourier_shells

    volume = np.asarray(density, dtype=np.float64)
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise InputError(f"density: expected a cubic (S, S, S) map, got shape {volume.shape}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"n: expected a positive number of pseudo-structures, got {n!r}")
    sign = 1.0 if volume.max() >= -volume.min() else -1.0
    centre, covariance, support = _moments(sign * volume)
    size = volume.shape[0]
    atom_volume = (2.0 * math.pi) ** 1.5 * atom_sigma_px**3
    n_atoms = max(4, round(support / atom_volume))
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    axes = np.sqrt(np.clip(eigenvalues, 1e-6, None))
    # the atoms' own width adds to the spread of the cluster: remove it from the positions
    axes = np.sqrt(np.clip(axes**2 - atom_sigma_px**2, 0.25, None))
    shells = fourier_shells(volume.shape, rfft=True)
    n_shells = int(shells.max()) + 1
    target = _shell_amplitudes(np.fft.rfftn(sign * volume), shells, n_shells)
    frequencies = np.meshgrid(
        np.fft.fftfreq(size), np.fft.fftfreq(size), np.fft.rfftfreq(size), indexing="ij"
    )
    blur = np.exp(-2.0 * math.pi**2 * atom_sigma_px**2 * sum(f**2 for f in frequencies))
    out = np.empty((n, size, size, size), dtype=np.float32)
    for i in range(n):
        scales = axes * np.exp(rng.normal(0.0, shape_spread, size=3))
        turn = Rotation.random(random_state=rng).as_matrix()
        frame = turn @ eigenvectors
        atoms = centre + (rng.normal(size=(n_atoms, 3)) * scales) @ frame.T
        # atoms at their nearest voxel (inside the box), then blurred into Gaussians
        index = np.clip(np.rint(atoms).astype(np.int64), 0, size - 1)
        counts = np.zeros(volume.shape)
        np.add.at(counts, tuple(index.T), 1.0)
        spectrum = np.fft.rfftn(counts) * blur
        own = _shell_amplitudes(spectrum, shells, n_shells)
        gain = np.where(own > 0, target / np.where(own > 0, own, 1.0), 0.0)
        shaped = np.fft.irfftn(spectrum * gain[shells], s=volume.shape, axes=(0, 1, 2))
        out[i] = (sign * shaped).astype(np.float32)
    return out
