"""Reference-free averaging of the 40 real M. pneumoniae ribosomes recognises a ribosome.

The shipped tilt-stack particles are reconstructed (Wiener CTF correction, hand flipped: see
docs/real_data.md), averaged without a reference in two halves, and the average is compared with
built-in maps, each aligned to it: the 70S ribosome must fit best, with a margin. Measured when
written: 4v4r 0.228, TRiC (4v94) 0.171, 20S proteasome (3j9i) 0.080; resolution ~55 Å.
"""

import numpy as np
import torch

from cryomine.averaging import average_class
from cryomine.averaging._align import align_maps
from cryomine.data import example_warp_dataset
from cryomine.geometry import transform_volumes
from cryomine.reconstruct import reconstruct_tiltstack_particles
from cryomine.structures import structure_density


def _fit(reference: np.ndarray, average: torch.Tensor) -> float:
    moving = torch.as_tensor(((reference - reference.mean()) / reference.std()).astype(np.float32))
    rotation, shift = align_maps(
        moving, average, angular_step_deg=20, max_frequency=0.4, max_shift_px=3
    )
    moved, _ = transform_volumes(
        moving[None], rotation, torch.as_tensor(np.asarray(shift, np.float32))[None]
    )
    return float(np.corrcoef(moved[0].numpy().ravel(), average.numpy().ravel())[0, 1])


def test_reference_free_average_of_real_ribosomes_fits_the_ribosome_best():
    example = example_warp_dataset()
    subtomograms, _, voxel_size_a = reconstruct_tiltstack_particles(
        example.particles_star, example.tomograms_star, ctf_correction="wiener", flip_hand=True
    )
    result = average_class(
        subtomograms, voxel_size_a=voxel_size_a, tilt_range_deg=(-60.0, 50.0), iterations=3,
        global_iterations=2, seed=0,
    )  # fmt: skip
    assert result.resolution_a < 80.0
    average = torch.as_tensor(result.average.astype(np.float32))
    box = subtomograms.shape[1]
    fits = {
        name: _fit(
            structure_density(name, voxel_size_a=voxel_size_a, box_size=box, resolution_a=30.0),
            average,
        )
        for name in ("4v4r", "4v94", "3j9i")
    }
    assert max(fits, key=fits.get) == "4v4r", fits
    assert fits["4v4r"] - max(fits["4v94"], fits["3j9i"]) > 0.03, fits
