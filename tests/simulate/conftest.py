"""Fixtures for the simulation tests: small synthetic structures (``make_blob``: tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def two_structures(make_blob) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Two distinct synthetic structures in a 24³ box."""
    return {"alpha": make_blob(1), "beta": make_blob(2)}


@pytest.fixture(scope="session")
def small_structures(make_blob) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Two small synthetic structures in a 12³ box (for tomograms)."""
    return {
        "alpha": make_blob(1, box=12, n_blobs=3, reach=2.0),
        "beta": make_blob(2, box=12, n_blobs=3, reach=2.0),
    }
