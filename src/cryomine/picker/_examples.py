"""What ``--reference`` names, and example windows simulated from a structure.

A reference for reference-based picking is either

* a **subvolume**: an existing MRC file (``.mrc .rec .st .map .mrcs .ali``, optionally ``.gz``)
  cut from the tomogram or one processed the same way, whose central window is the example; or
* a **structure**: a built-in name or alias (:func:`cryomine.structures.list_structures`,
  case-insensitive) or an existing atomic model (``.pdb .ent .cif .mmcif``, optionally ``.gz``),
  from which example windows are simulated (:func:`simulate_reference_windows`).

:func:`reference_kind` is the one place that tells them apart. A density map is read as a
subvolume, not simulated: give a built-in map by its name.

Simulated examples: ``n_orientations`` copies of the structure at uniform random orientations,
centred (no shift), imaged by :func:`cryomine.simulate.simulate_subtomograms` at the tomogram's
voxel size with its default imaging (projection about y over ±60° in 3° steps, CTF at 5 µm
underfocus, weighted back-projection), noise-free by default; each central window is z-scored
over itself and made protein dark, like a window of a normalised tomogram. The target is the
normalised mean of their embeddings (:func:`~cryomine.picker.target_embedding`), so it does not
favour one orientation. Defaults measured with the shipped model (``docs/picker.md``, "Simulated
references"): noise-free examples gave a higher F1 at the automatic threshold than examples at
SNR 0.1 or one example cut from the tomogram, with the same F1 at the best threshold; one
orientation is unstable, 16 or more are not, and 32 keep the spread between seeds small.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cryomine.errors import InputError

__all__ = [
    "REFERENCE_ORIENTATIONS",
    "ReferenceKind",
    "reference_kind",
    "simulate_reference_windows",
]

logger = logging.getLogger(__name__)

#: Kinds of reference: an MRC subvolume to read, or a structure to simulate.
ReferenceKind = Literal["subvolume", "structure"]

#: Random orientations simulated and averaged (in embedding space) for a structure reference.
REFERENCE_ORIENTATIONS = 32


def _file_suffix(text: str) -> str:
    """Last suffix of a file name, lower case, after dropping a trailing ``.gz``."""
    suffixes = [s.lower() for s in Path(text).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _is_structure_name(text: str) -> bool:
    from cryomine.structures import structure_info

    try:
        structure_info(text)
    except InputError:
        return False
    return True


def reference_kind(reference: str | Path, *, what: str = "reference") -> ReferenceKind:
    """Tell what a reference is: an MRC subvolume to read or a structure to simulate.

    Parameters
    ----------
    reference
        A path to an existing MRC file (``"subvolume"``), a path to an existing atomic model or
        a built-in structure name or alias, case-insensitive (``"structure"``). A name is
        looked up only when given as ``str``; a ``Path`` is always a file.
    what
        How the value is called in error messages (e.g. ``"--reference"``).

    Returns
    -------
    {"subvolume", "structure"}

    Raises
    ------
    InputError
        Naming the value: a subvolume or model file that does not exist, or a value that is
        neither such a file nor a built-in structure.
    """
    from cryomine.io import MRC_SUFFIXES
    from cryomine.structures import list_structures
    from cryomine.structures._density import ATOMIC_SUFFIXES

    text = str(reference)
    suffix = _file_suffix(text)
    if suffix in MRC_SUFFIXES + ATOMIC_SUFFIXES:
        if not Path(text).is_file():
            kind = "MRC subvolume" if suffix in MRC_SUFFIXES else "atomic model"
            raise InputError(f"{what} {text!r}: {kind} file not found")
        return "subvolume" if suffix in MRC_SUFFIXES else "structure"
    if isinstance(reference, str) and _is_structure_name(text):
        return "structure"
    names = ", ".join(info.name for info in list_structures())
    raise InputError(
        f"{what} {text!r}: expected an MRC subvolume file ({', '.join(MRC_SUFFIXES)}), a "
        f"built-in structure name ({names}) or an atomic model file "
        f"({', '.join(ATOMIC_SUFFIXES)})"
    )


def simulate_reference_windows(
    structure: str | Path,
    *,
    window: int,
    voxel_size_a: float,
    n_orientations: int = REFERENCE_ORIENTATIONS,
    snr: float | None = None,
    tilt_range_deg: tuple[float, float] | None = None,
    defocus_um: float | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Example windows of a structure at random orientations, imaged like a tomogram's particles.

    Parameters
    ----------
    structure
        Built-in structure name or path to an atomic model (see :func:`reference_kind`; any
        input of :func:`cryomine.structures.structure_density` works).
    window
        Window edge of the picker, voxels.
    voxel_size_a
        The tomogram's voxel size, Å; the structure is sampled and imaged at it.
    n_orientations
        Copies at uniform random orientations.
    snr
        ``None`` (default): noise-free imaging (the simulator's ``noise_free`` output).
        Otherwise the SNR of each copy (``simulate_subtomograms``'s definition, over its box).
    tilt_range_deg, defocus_um
        Imaging (degrees, tilt axis y; µm underfocus, positive); ``None``: the simulator's
        defaults (±60°, 5 µm).
    seed
        Seed of the orientations and the noise.
    device
        ``"cpu"``, ``"cuda[:i]"`` or ``"auto"`` (the simulator's device).

    Returns
    -------
    windows : ndarray, shape (n_orientations, window, window, window), float32, axes (z, y, x)
        The central windows (box centre at ``window // 2``), each z-scored over itself, protein
        dark.
    parameters : dict
        The resolved simulation settings (JSON-friendly): those of
        :func:`~cryomine.simulate.simulate_subtomograms` (``snr`` ``None`` when noise-free),
        plus ``noise``, ``window``, ``n_orientations`` and ``scaling``.
    """
    from cryomine.io import normalize_subtomograms
    from cryomine.simulate import simulate_subtomograms
    from cryomine.structures import structure_density

    for value, what in ((window, "window"), (n_orientations, "orientations")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{what} {value!r}: expected a positive whole number")
    density = structure_density(structure, voxel_size_a=voxel_size_a)
    box = max(int(window), density.shape[0])
    if box != density.shape[0]:  # a structure smaller than the window: same map, larger box
        density = structure_density(structure, voxel_size_a=voxel_size_a, box_size=box)
    imaging: dict[str, Any] = {}
    if tilt_range_deg is not None:
        imaging["tilt_range_deg"] = tuple(tilt_range_deg)
    if defocus_um is not None:
        imaging["defocus_um"] = defocus_um
    simulated = simulate_subtomograms(
        {str(structure): density},
        n_per_class=n_orientations,
        snr=1.0 if snr is None else snr,  # noise-free: the noise is drawn but not used
        box_size=box,
        voxel_size_a=voxel_size_a,
        max_shift_px=0.0,
        normalize=False,
        seed=seed,
        device=device,
        **imaging,
    )
    low = box // 2 - window // 2
    crop = (slice(None), *(slice(low, low + window),) * 3)
    batches = simulated.iter_batches(keep_noise_free=snr is None)
    windows = np.concatenate(
        [(b.subtomograms if b.noise_free is None else b.noise_free)[crop] for b in batches]
    )
    # simulated subtomograms are protein bright; a normalised tomogram is protein dark
    windows = -normalize_subtomograms(windows)
    parameters = {
        **simulated.parameters,
        "snr": snr,
        "noise": "none (noise-free imaging)" if snr is None else "projection noise at snr",
        "window": int(window),
        "n_orientations": int(n_orientations),
        "scaling": "central window z-scored over itself, protein dark",
    }
    logger.info(
        "reference %s: %d orientations simulated at %.4g Å, %s, box %d (window %d)",
        structure,
        n_orientations,
        voxel_size_a,
        "noise-free" if snr is None else f"SNR {snr:g}",
        box,
        window,
    )
    return windows, parameters
