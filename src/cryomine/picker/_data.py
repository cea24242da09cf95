"""Training windows for the picker, cut from small crowded tomograms made by the simulator.

Each "pool" is a set of small tomograms simulated with :func:`cryomine.simulate.simulate_tomogram`
(so the windows carry the same imaging, crowding, normalisation and protein-dark contrast as a
tomogram the picker is used on): ``structures_per_tomogram`` structures with
``copies_per_structure`` copies each at random orientations, optionally a membrane vesicle and
gold beads; per tomogram the SNR (log-uniform), defocus (uniform) and the symmetric tilt range
(uniform maximum angle) are drawn from :class:`TrainingConditions`. Every structure appears in
``tomograms_per_structure`` tomograms of a pool, so positives span imaging conditions and
negatives share them (otherwise the conditions alone would tell the classes apart). Classes: one per structure,
then ``membrane`` (windows centred on membrane voxels), ``gold`` (centred on bead voxels) and
``background`` (centred on voxels no object covers; such windows may hold parts of neighbours).
Windows are cut when a batch is drawn, with a random shift of up to ``shift_px`` voxels per axis
(translation augmentation); rotation augmentation is the particles' random orientations.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cryomine.errors import InputError
from cryomine.picker._embedding import cut_windows, normalize_tomogram

__all__ = ["EXTRA_CLASSES", "TrainingConditions", "WindowPool", "simulate_window_pool"]

logger = logging.getLogger(__name__)

#: Classes that follow the structures, in this order.
EXTRA_CLASSES = ("membrane", "gold", "background")


@dataclass(frozen=True)
class TrainingConditions:
    """How training tomograms are simulated (all lengths in voxels unless the name says Å).

    Attributes
    ----------
    shape_zyx
        Shape of each small tomogram.
    voxel_size_a
        Voxel size, Å.
    structures_per_tomogram, copies_per_structure
        Structures in one tomogram and copies of each.
    tomograms_per_structure
        Tomograms of a pool each structure appears in (each with its own imaging), so that
        windows of one class never share one SNR/defocus/tilt range and the network cannot tell
        classes apart by their imaging conditions.
    snr_range
        SNR drawn log-uniformly in this range per tomogram.
    defocus_range_um
        Underfocus drawn uniformly, µm.
    max_tilt_range_deg
        Maximum tilt angle drawn uniformly; tilts are ``±`` that in 3° steps.
    membrane_probability, max_gold
        Chance of one vesicle per tomogram; up to this many gold beads (uniform count).
    windows_per_extra_class
        Membrane, gold and background windows recorded per tomogram (when present).
    shift_px
        Random shift of a window's centre when a batch is cut, per axis.
    """

    shape_zyx: tuple[int, int, int] = (64, 160, 160)
    voxel_size_a: float = 10.0
    structures_per_tomogram: int = 8
    copies_per_structure: int = 2
    tomograms_per_structure: int = 3
    snr_range: tuple[float, float] = (0.05, 0.3)
    defocus_range_um: tuple[float, float] = (3.0, 6.0)
    max_tilt_range_deg: tuple[float, float] = (45.0, 60.0)
    membrane_probability: float = 0.5
    max_gold: int = 3
    windows_per_extra_class: int = 6
    shift_px: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class WindowPool:
    """Normalised tomograms and labelled window centres to draw batches from.

    Attributes
    ----------
    tomograms
        float32 ``(z, y, x)`` arrays, z-scored, protein dark.
    tomogram_index, centres_zyx, labels
        Per sample: which tomogram, its window centre (voxels, z, y, x) and class (0-based, into
        ``class_names``).
    class_names
        Structure names followed by :data:`EXTRA_CLASSES`.
    conditions
        Per tomogram: the drawn SNR, defocus and tilt range.
    """

    tomograms: list[np.ndarray]
    tomogram_index: np.ndarray
    centres_zyx: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    conditions: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def windows(
        self, rows: np.ndarray, window: int, *, rng: np.random.Generator | None, shift_px: int
    ) -> np.ndarray:
        """Windows ``(len(rows), window, window, window)`` of samples ``rows`` (shifted by rng)."""
        out = np.zeros((len(rows), window, window, window), dtype=np.float32)
        centres = self.centres_zyx[rows].copy()
        if rng is not None and shift_px > 0:
            centres = centres + rng.integers(-shift_px, shift_px + 1, size=centres.shape)
        for t in np.unique(self.tomogram_index[rows]):
            here = np.flatnonzero(self.tomogram_index[rows] == t)
            out[here] = cut_windows(self.tomograms[t], centres[here], window)
        return out

    def draw_batch(
        self, rng: np.random.Generator, *, n_classes: int, n_per_class: int
    ) -> np.ndarray:
        """Rows of a P×K batch: ``n_classes`` classes (those with ≥ 2 samples), ``n_per_class``
        samples each (with replacement only when a class has fewer)."""
        present, counts = np.unique(self.labels, return_counts=True)
        usable = present[counts >= 2]
        if len(usable) < 2:
            raise InputError("training pool: fewer than two classes with two windows each")
        chosen = rng.choice(usable, size=min(n_classes, len(usable)), replace=False)
        rows = []
        for label in chosen:
            members = np.flatnonzero(self.labels == label)
            rows.append(rng.choice(members, n_per_class, replace=len(members) < n_per_class))
        return np.concatenate(rows)


def _random_voxels(rng: np.random.Generator, mask: np.ndarray, n: int, margin: int) -> np.ndarray:
    inner = np.zeros_like(mask)
    inner[margin:-margin, margin:-margin, margin:-margin] = mask[
        margin:-margin, margin:-margin, margin:-margin
    ]
    where = np.argwhere(inner)
    if len(where) == 0:
        return np.zeros((0, 3))
    return where[rng.choice(len(where), size=min(n, len(where)), replace=False)].astype(np.float64)


def simulate_window_pool(
    densities: Mapping[str, np.ndarray],
    structures: Sequence[str],
    *,
    conditions: TrainingConditions,
    seed: int | Sequence[int],
    device: str = "cpu",
) -> WindowPool:
    """Simulate tomograms holding every structure of ``structures`` in
    ``tomograms_per_structure`` of them (random groups, new groups each round).

    Parameters
    ----------
    densities
        name → clean density (cubic, protein positive, at ``conditions.voxel_size_a``), for every
        class structure; the class order is the order of ``densities``.
    structures
        Which of them to place in this pool.
    conditions
        Simulation ranges.
    seed
        Seed (or seed sequence entropy, e.g. ``[seed, epoch]``) of everything random.
    device
        Torch device of the simulator.
    """
    from cryomine.io import positions_zyx
    from cryomine.simulate import simulate_tomogram

    names = list(densities)
    class_of = {name: i for i, name in enumerate(names)}
    membrane, gold, background = (len(names) + i for i in range(len(EXTRA_CLASSES)))
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    groups = []
    for _ in range(conditions.tomograms_per_structure):
        order = [structures[i] for i in rng.permutation(len(structures))]
        groups += [
            order[i : i + conditions.structures_per_tomogram]
            for i in range(0, len(order), conditions.structures_per_tomogram)
        ]
    tomograms: list[np.ndarray] = []
    index: list[np.ndarray] = []
    centres: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    drawn: list[dict[str, float]] = []
    margin = 2
    for group in groups:
        snr = float(np.exp(rng.uniform(*np.log(conditions.snr_range))))
        defocus = float(rng.uniform(*conditions.defocus_range_um))
        tilt = float(rng.uniform(*conditions.max_tilt_range_deg))
        n_membranes = int(rng.random() < conditions.membrane_probability)
        n_gold = int(rng.integers(0, conditions.max_gold + 1))
        tomo_seed = int(rng.integers(2**31))
        n_particles = len(group) * conditions.copies_per_structure
        while True:  # too crowded: drop the vesicle, then the gold, then particles one by one
            try:
                simulated = simulate_tomogram(
                    {name: densities[name] for name in group},
                    shape_zyx=conditions.shape_zyx,
                    voxel_size_a=conditions.voxel_size_a,
                    n_particles=n_particles,
                    snr=snr,
                    tilt_range_deg=(-tilt, tilt),
                    defocus_um=defocus,
                    n_membranes=n_membranes,
                    n_gold=n_gold,
                    seed=tomo_seed,
                    device=device,
                )
                break
            except InputError:
                if n_particles <= len(group):
                    raise
                if n_membranes:
                    n_membranes = 0
                elif n_gold:
                    n_gold = 0
                else:
                    n_particles -= 1
        t = len(tomograms)
        tomograms.append(normalize_tomogram(simulated.tomogram))
        particle_centres = positions_zyx(simulated.table)
        particle_labels = np.array([class_of[s] for s in simulated.table["cmStructure"]])
        extra_label = {v: k for k, v in simulated.label_names.items()}
        extras = [
            (membrane, simulated.labels == extra_label["membrane"]),
            (gold, simulated.labels == extra_label["gold"]),
            (background, simulated.labels == 0),
        ]
        found = [particle_centres]
        found_labels = [particle_labels]
        for label, mask in extras:
            picked = _random_voxels(rng, mask, conditions.windows_per_extra_class, margin)
            found.append(picked)
            found_labels.append(np.full(len(picked), label))
        block = np.concatenate(found)
        centres.append(block)
        labels.append(np.concatenate(found_labels))
        index.append(np.full(len(block), t))
        drawn.append(
            {
                "snr": snr,
                "defocus_um": defocus,
                "max_tilt_deg": tilt,
                "n_membranes": n_membranes,
                "n_gold": n_gold,
            }
        )
    return WindowPool(
        tomograms=tomograms,
        tomogram_index=np.concatenate(index),
        centres_zyx=np.concatenate(centres),
        labels=np.concatenate(labels).astype(np.int64),
        class_names=[*names, *EXTRA_CLASSES],
        conditions=drawn,
    )
