"""Files of DISCA: saved models and per-iteration checkpoints (JSON + torch state dicts + npz).

Nothing is pickled: configs and histories are JSON, network and optimizer states are
``torch.save`` state dicts read back with ``weights_only=True``, arrays are ``.npz`` read with
``allow_pickle=False``. Every directory is written through :func:`atomic_directory`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.io._atomic import atomic_directory
from cryomine.sorting._mixture import MixtureParams, PCAProjection

__all__ = [
    "CHECKPOINT_NAME",
    "arrays_from_fit",
    "fit_from_arrays",
    "read_bundle",
    "write_bundle",
]

#: Sub-directory of a checkpoint directory that holds the latest complete checkpoint.
CHECKPOINT_NAME = "latest"
_JSON, _TORCH, _ARRAYS = "state.json", "state.pt", "arrays.npz"


def arrays_from_fit(
    prefix: str, pca: PCAProjection, mixture: MixtureParams
) -> dict[str, np.ndarray]:
    """Flatten a PCA and a mixture into named arrays (``prefix`` + field name)."""
    return {
        f"{prefix}pca_mean": pca.mean,
        f"{prefix}pca_components": pca.components,
        f"{prefix}weights": mixture.weights,
        f"{prefix}means": mixture.means,
        f"{prefix}covariances": mixture.covariances,
        f"{prefix}precisions_cholesky": mixture.precisions_cholesky,
        f"{prefix}covariance_type": np.asarray(mixture.covariance_type),
    }


def fit_from_arrays(prefix: str, arrays: Any) -> tuple[PCAProjection, MixtureParams]:
    """Inverse of :func:`arrays_from_fit`."""
    pca = PCAProjection(
        mean=arrays[f"{prefix}pca_mean"], components=arrays[f"{prefix}pca_components"]
    )
    mixture = MixtureParams(
        weights=arrays[f"{prefix}weights"],
        means=arrays[f"{prefix}means"],
        covariances=arrays[f"{prefix}covariances"],
        precisions_cholesky=arrays[f"{prefix}precisions_cholesky"],
        # bundles written before other covariance models existed are full-covariance
        covariance_type=(
            str(arrays[f"{prefix}covariance_type"])
            if f"{prefix}covariance_type" in arrays
            else "full"
        ),
    )
    return pca, mixture


def write_bundle(
    path: Path,
    *,
    meta: dict[str, Any],
    tensors: dict[str, Any],
    arrays: dict[str, np.ndarray],
    overwrite: bool,
) -> None:
    """Write ``meta`` (JSON), ``tensors`` (torch state dicts) and ``arrays`` (npz) into ``path``."""
    with atomic_directory(path, overwrite=overwrite) as tmp:
        (tmp / _JSON).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        torch.save(tensors, tmp / _TORCH)
        np.savez(tmp / _ARRAYS, **arrays)


def read_bundle(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """Read a directory written by :func:`write_bundle` (tensors on the CPU)."""
    path = Path(path)
    if (
        not (path / _JSON).is_file()
        or not (path / _TORCH).is_file()
        or not (path / _ARRAYS).is_file()
    ):
        raise InputError(
            f"{path}: not a saved DISCA model or checkpoint (expected {_JSON}, {_TORCH}, {_ARRAYS})"
        )
    try:
        meta = json.loads((path / _JSON).read_text(encoding="utf-8"))
        tensors = torch.load(path / _TORCH, map_location="cpu", weights_only=True)
        with np.load(path / _ARRAYS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(f"{path}: cannot read the saved DISCA state ({error})") from error
    return meta, tensors, arrays
