"""The reconstruction stage's public names, and the old homes that still re-export them."""

from __future__ import annotations

import cryomine.data
import cryomine.io
import cryomine.reconstruct
import cryomine.simulate


def test_simulate_still_exports_the_names_that_moved() -> None:
    for name in cryomine.reconstruct.__all__:
        assert getattr(cryomine.simulate, name) is getattr(cryomine.reconstruct, name), name
        assert name in cryomine.simulate.__all__, name


def test_io_still_exports_the_example_dataset() -> None:
    assert cryomine.io.example_warp_dataset is cryomine.data.example_warp_dataset
    assert cryomine.io.WarpExample is cryomine.data.WarpExample
    assert cryomine.data.example_warp_dataset().particles_star.is_file()
