"""Fixtures for the evaluation tests: particle tables with true and predicted classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def particle_table(n: int, *, seed: int = 0) -> pd.DataFrame:
    """A canonical particle table of ``n`` particles (cmParticleId 1..n) at random positions."""
    from cryomine.io import new_particle_table

    rng = np.random.default_rng(seed)
    return new_particle_table(rng.uniform(0, 100, (n, 3)), tomo_name="tomo", pixel_size_a=10.0)


@pytest.fixture
def truth_table() -> pd.DataFrame:
    """30 particles, true classes 1, 2, 3 (10 each) in ``cmTrueClass``."""
    table = particle_table(30)
    table["cmTrueClass"] = np.repeat([1, 2, 3], 10)
    return table
