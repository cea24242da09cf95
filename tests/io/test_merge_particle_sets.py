import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.io import ParticleSet, merge_particle_sets, new_particle_table, write_particle_set


def test_merge_particle_sets_concatenates_in_order_and_renumbers(tmp_path):
    rng = np.random.default_rng(5)
    sets = []
    for i, n in enumerate((3, 4)):
        table = new_particle_table(
            rng.uniform(10, 50, (n, 3)), tomo_name=f"TS_{i}", pixel_size_a=10.0
        )
        stack = rng.standard_normal((n, 8, 8, 8)).astype(np.float32)
        sets.append(
            write_particle_set(tmp_path / f"set{i}", table, stack, voxel_size_a=10.0).directory
        )
    merged = merge_particle_sets(sets, tmp_path / "merged", batch_size=2)
    assert merged.n_particles == 7
    assert list(merged.table["cmParticleId"]) == list(range(1, 8))
    assert list(merged.table["cmSourceParticleId"]) == [1, 2, 3, 1, 2, 3, 4]
    assert list(merged.table["rlnTomoName"]) == ["TS_0"] * 3 + ["TS_1"] * 4
    np.testing.assert_allclose(
        merged.read(np.arange(7)),
        np.concatenate(
            [ParticleSet.open(d).read(np.arange(n)) for d, n in zip(sets, (3, 4), strict=True)]
        ),
        atol=1e-6,
    )


def test_merge_refuses_different_boxes(tmp_path):
    a = write_particle_set(
        tmp_path / "a",
        new_particle_table(np.ones((1, 3)), tomo_name="a", pixel_size_a=10.0),
        np.random.default_rng(0).standard_normal((1, 8, 8, 8)),
        voxel_size_a=10.0,
    )
    b = write_particle_set(
        tmp_path / "b",
        new_particle_table(np.ones((1, 3)), tomo_name="b", pixel_size_a=10.0),
        np.random.default_rng(0).standard_normal((1, 6, 6, 6)),
        voxel_size_a=10.0,
    )
    with pytest.raises(InputError, match="differs from"):
        merge_particle_sets([a.directory, b.directory], tmp_path / "m")
    assert not (tmp_path / "m").exists()
