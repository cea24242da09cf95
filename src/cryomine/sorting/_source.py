"""Subtomograms for DISCA, from a particle set (streamed) or an in-memory array.

Every subtomogram passes through one place, :meth:`SubtomogramSource.read`: an optional
raised-cosine low-pass in Fourier space, then z-scoring. Feature extraction, training (the
originals and their rotated copies) and ``predict`` all read through it, so they see the same
filtered input.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from cryomine.errors import InputError
from cryomine.io import as_subtomogram_stack, normalize_subtomograms

__all__ = [
    "AUTO_LOWPASS_VOXELS",
    "SubtomogramSource",
    "as_source",
    "as_subtomogram_array",
    "lowpass_fraction",
    "lowpass_transfer",
]

#: ``lowpass_a="auto"`` cuts at this many voxels per period: 4 voxels = half Nyquist.
AUTO_LOWPASS_VOXELS = 4.0


def _zscore(volumes: np.ndarray) -> np.ndarray:
    """Z-score each volume of ``(n, Z, Y, X)`` over its box (float32); constant ones become 0.

    :func:`cryomine.io.normalize_subtomograms`, without its warning (sources are read often).
    """
    return normalize_subtomograms(volumes, on_constant="ignore")


def lowpass_fraction(lowpass_a: float | str | None, voxel_size_a: float | None) -> float | None:
    """The cutoff of ``lowpass_a`` as a fraction of Nyquist (``None``: no filter).

    Parameters
    ----------
    lowpass_a
        Cutoff resolution in Å, ``"auto"`` (``AUTO_LOWPASS_VOXELS`` × voxel size, i.e. half
        Nyquist, whatever the voxel size) or ``None`` (no filter).
    voxel_size_a
        Voxel size of the subtomograms in Å; needed only for a cutoff in Å.

    Returns
    -------
    float or None
        ``2 · voxel_size_a / lowpass_a``; values >= 1 (at or beyond Nyquist) mean no filter.
    """
    if lowpass_a is None:
        return None
    if isinstance(lowpass_a, str):
        if lowpass_a != "auto":
            raise InputError(f"lowpass_a {lowpass_a!r}: expected a resolution in Å, 'auto' or None")
        return 2.0 / AUTO_LOWPASS_VOXELS
    lowpass = float(lowpass_a)
    if not (math.isfinite(lowpass) and lowpass > 0):
        raise InputError(f"low-pass {lowpass_a!r} Å: expected a positive resolution in Å")
    if voxel_size_a is None:
        raise InputError(
            f"low-pass {lowpass:g} Å needs the voxel size: pass voxel_size_a (Å) for an array "
            "of subtomograms, use a particle set, or use lowpass_a='auto'"
        )
    fraction = 2.0 * float(voxel_size_a) / lowpass
    return None if fraction >= 1.0 else fraction


def lowpass_transfer(box_size: int, fraction: float) -> np.ndarray:
    """Raised-cosine low-pass ``(S, S, S // 2 + 1)`` float32 in the ``rfftn`` half-space layout.

    1 below ``fraction`` × Nyquist minus one Fourier shell, 0 above it plus one shell, a half
    cosine in between (2 shells wide, so at most mild ringing in a 24³ box).
    """
    z = np.fft.fftfreq(box_size)[:, None, None]
    y = np.fft.fftfreq(box_size)[None, :, None]
    x = np.fft.rfftfreq(box_size)[None, None, :]
    radius = np.sqrt(z * z + y * y + x * x)  # cycles / voxel; Nyquist = 0.5
    cutoff = 0.5 * fraction
    half_width = 1.0 / box_size
    t = np.clip((radius - (cutoff - half_width)) / (2.0 * half_width), 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)


def as_subtomogram_array(data: Any, *, minimum: int = 1) -> np.ndarray:
    """All subtomograms as one float32 ``(N, S, S, S)`` array (axes particle, z, y, x).

    Parameters
    ----------
    data
        An ``(N, S, S, S)`` array, or a :class:`cryomine.io.ParticleSet` (anything with
        ``n_particles`` and ``read(indices)``), read whole.
    minimum
        Fewest subtomograms accepted.
    """
    if hasattr(data, "read") and hasattr(data, "n_particles"):
        array = np.asarray(data.read(np.arange(int(data.n_particles))), dtype=np.float32)
    else:
        array = np.asarray(data, dtype=np.float32)
    return as_subtomogram_stack(array, minimum=minimum)


class SubtomogramSource:
    """Random and batched access to ``N`` cubic subtomograms ``(S, S, S)``, float32.

    Wraps a :class:`cryomine.io.ParticleSet` (anything with ``n_particles``, ``box_size`` and
    ``read(indices)``; read batch by batch, never all at once) or an ``(N, S, S, S)`` array.
    Each subtomogram read is low-pass filtered (when ``lowpass_fraction`` is set) and z-scored.

    Parameters
    ----------
    data
        The particle set or array.
    lowpass_fraction
        Cutoff of the raised-cosine low-pass as a fraction of Nyquist (0, 1); ``None``: none.
    minimum
        Fewest subtomograms accepted (sorting needs 2; encoding new data 1).
    zscore
        Z-score each subtomogram after the filter (default). ``False`` keeps the data's own
        scale, as the DISCA reference code does (its input is then not normalised at all).
    """

    def __init__(
        self,
        data: Any,
        *,
        lowpass_fraction: float | None = None,
        minimum: int = 2,
        zscore: bool = True,
    ) -> None:
        if isinstance(data, np.ndarray):
            data = as_subtomogram_array(data, minimum=minimum)
            self._array: np.ndarray | None = data
            self._set = None
            self.n_particles = int(data.shape[0])
            self.box_size = int(data.shape[1])
        elif hasattr(data, "read") and hasattr(data, "n_particles"):
            self._array = None
            self._set = data
            self.n_particles = int(data.n_particles)
            self.box_size = int(data.box_size)
        else:
            raise InputError(
                f"{type(data).__name__}: expected a ParticleSet or an (N, S, S, S) numpy array"
            )
        if self.n_particles < minimum:
            raise InputError(f"{self.n_particles} subtomograms: expected at least {minimum}")
        if lowpass_fraction is not None and not 0 < lowpass_fraction < 1:
            raise InputError(
                f"low-pass at {lowpass_fraction!r} of Nyquist: expected a fraction in (0, 1)"
            )
        self.lowpass_fraction = lowpass_fraction
        self.zscore = bool(zscore)
        self._transfer = (
            None if lowpass_fraction is None else lowpass_transfer(self.box_size, lowpass_fraction)
        )

    @property
    def table(self) -> Any:
        """The particle table of a particle set, ``None`` for an array."""
        return getattr(self._set, "table", None)

    @property
    def voxel_size_a(self) -> float | None:
        """Voxel size in Å of a particle set, ``None`` for an array."""
        value = getattr(self._set, "voxel_size_a", None)
        return None if value is None else float(value)

    def _filter(self, volumes: np.ndarray) -> np.ndarray:
        if self._transfer is None:
            return volumes
        spectrum = np.fft.rfftn(volumes, axes=(1, 2, 3))
        spectrum *= self._transfer
        return np.fft.irfftn(spectrum, s=volumes.shape[1:], axes=(1, 2, 3)).astype(np.float32)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Filtered (and z-scored) subtomograms ``(len(indices), S, S, S)``, float32, in order."""
        indices = np.asarray(indices, dtype=np.int64)
        if self._array is not None:
            volumes = self._filter(np.asarray(self._array[indices], dtype=np.float32))
        else:
            order = np.argsort(indices, kind="stable")
            raw = np.asarray(self._set.read(indices[order]))  # type: ignore[union-attr]
            volumes = np.empty_like(raw, dtype=np.float32)
            volumes[order] = raw
            volumes = self._filter(volumes)
        return _zscore(volumes) if self.zscore else np.asarray(volumes, dtype=np.float32)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices (b,), volumes (b, S, S, S))`` over all subtomograms in order."""
        for start in range(0, self.n_particles, batch_size):
            indices = np.arange(start, min(start + batch_size, self.n_particles))
            yield indices, self.read(indices)


def as_source(
    data: Any,
    *,
    lowpass_a: float | str | None = None,
    voxel_size_a: float | None = None,
    zscore: bool = True,
) -> SubtomogramSource:
    """Wrap a particle set or an ``(N, S, S, S)`` array with the low-pass ``lowpass_a``.

    The voxel size of a particle set is its own; ``voxel_size_a`` is used for arrays (Å).
    ``zscore=False`` leaves each subtomogram's scale as it is. Already-wrapped sources pass
    through unchanged.
    """
    if isinstance(data, SubtomogramSource):
        return data
    own = getattr(data, "voxel_size_a", None) if not isinstance(data, np.ndarray) else None
    voxel = float(own) if own is not None else voxel_size_a
    return SubtomogramSource(
        data, lowpass_fraction=lowpass_fraction(lowpass_a, voxel), zscore=zscore
    )
