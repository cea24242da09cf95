"""Simulated subtomograms with ground truth: density → random pose → imaging → noise at an SNR.

Per subtomogram (all randomness from ``seed``; particle ``i``'s noise from its own child
generator, so the data do not depend on ``batch_size`` or the device):

1. the clean density of its structure (protein bright, centred at ``box_size // 2``);
2. a uniform random rotation (Haar measure) and a uniform random shift in
   ``[-max_shift_px, max_shift_px]`` per axis (:func:`cryomine.geometry.transform_volumes`);
3. imaging and noise, by ``noise_model``:

   - ``"projection"`` (default; :mod:`cryomine.simulate._imaging`): ``mode="tilt-series"``
     projects over the tilt range about y, applies the CTF per tilt, adds white noise **to the
     projections** and reconstructs by weighted back-projection; ``mode="fourier"`` applies
     3-D CTF x missing wedge and adds real-space white noise restricted to the wedge and
     coloured like WBP noise. The contrast is inverted (protein bright, as extraction does) and
     the noise is scaled so that ``SNR = var(noise-free reconstruction) / var(noise
     reconstruction)`` over the box is exactly ``snr`` for **every** subtomogram;
   - ``"paper"`` (:mod:`cryomine.simulate._paper_noise`): the DISCA paper's protocol, noise
     added in 3-D at a level set by the structure's own signal variance, then band-passed and
     masked; ``snr`` is nominal (the measured SNR differs, ``docs/simulation.md``);

4. with ``normalize`` (default), z-score (mean 0, standard deviation 1 over the box).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from cryomine.errors import InputError
from cryomine.reconstruct import ctf
from cryomine.simulate._imaging import (
    ImagingMode,
    ImagingParameters,
    add_noise_at_snr,
    check_imaging_mode,
    check_simulation_options,
    image_volumes,
)
from cryomine.simulate._paper_noise import (
    PaperFilters,
    check_noise_model,
    image_volumes_paper,
    paper_filters,
    paper_signal_variance,
)

__all__ = [
    "DEFAULT_VOXEL_SIZE_A",
    "NoiseModel",
    "SimulatedSubtomograms",
    "SubtomogramBatch",
    "load_structure_densities",
    "simulate_subtomograms",
]

logger = logging.getLogger(__name__)

#: Default voxel size (Å): a 250 Å complex (the largest of the default benchmark set) spans
#: 19.2 voxels, so with ±2 voxel shifts it stays inside a 24³ box; Nyquist (26 Å) lies beyond the
#: first CTF zero at 5 µm underfocus (~32 Å).
DEFAULT_VOXEL_SIZE_A = 13.0

#: The noise models (``docs/simulation.md``): today's projection-space model, or the DISCA paper's.
NoiseModel = Literal["projection", "paper"]

#: Provenance columns written on every row: the noise model and whether the row's subtomogram is
#: z-scored (1) or left at its simulated scale (0).
NOISE_MODEL_COLUMN = "cmNoiseModel"
NORMALIZED_COLUMN = "cmNormalized"

#: Tomogram name written for every simulated subtomogram.
SIMULATED_TOMO_NAME = "simulated"

#: Truth columns added to the canonical table (besides cmStructure and cmTrueClass).
TRUE_SHIFT_COLUMNS = ("cmTrueShiftX", "cmTrueShiftY", "cmTrueShiftZ")


def _structure_name(entry: str | Path) -> str:
    path = Path(entry)
    if path.exists():
        name = path.name
        for suffix in (".gz", ".mrc", ".map", ".pdb", ".cif", ".ent"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        return name
    return str(entry)


def load_structure_densities(
    structures: Sequence[str | Path] | Mapping[str, np.ndarray],
    *,
    voxel_size_a: float,
    box_size: int | None,
    resolution_a: float | None = None,
) -> dict[str, np.ndarray]:
    """Clean densities (protein bright, centred at ``box_size // 2``) by structure name.

    Parameters
    ----------
    structures
        Names of shipped structures or paths to maps/atomic models (resolved with
        :func:`cryomine.structures.structure_density`), or a mapping name → ready density
        ``(box_size,) * 3`` at ``voxel_size_a``.
    voxel_size_a, box_size
        Sampling of the densities (Å, voxels); ``box_size=None``: each structure's default box.
    resolution_a
        Resolution (Å) of the density maps; ``None`` uses the structure library's default.

    Returns
    -------
    dict
        name → float32 ``(box_size, box_size, box_size)`` array, in the given order.
    """
    if isinstance(structures, Mapping):
        densities = {}
        for name, volume in structures.items():
            array = np.asarray(volume, dtype=np.float32)
            expected = (box_size,) * 3 if box_size is not None else (array.shape[0],) * 3
            if array.shape != expected:
                raise InputError(
                    f"structure {name!r}: density of shape {array.shape}, expected {expected}"
                )
            densities[str(name)] = array
    else:
        from cryomine.structures import structure_density

        options: dict[str, Any] = {"voxel_size_a": voxel_size_a, "box_size": box_size}
        if box_size is None:
            del options["box_size"]
        if resolution_a is not None:
            options["resolution_a"] = resolution_a
        densities = {}
        for entry in structures:
            name = _structure_name(entry)
            if name in densities:
                raise InputError(f"structure {entry!s}: given twice")
            densities[name] = np.asarray(structure_density(entry, **options), dtype=np.float32)
    if not densities:
        raise InputError("structures: give at least one structure")
    return densities


@dataclass
class SubtomogramBatch:
    """Consecutive simulated subtomograms ``start .. start + n - 1`` (rows of the table).

    Attributes
    ----------
    start
        Index of the first subtomogram (0-based row of the table).
    subtomograms
        float32 ``(n, z, y, x)``, protein bright; z-scored unless simulated with
        ``normalize=False`` (then at the simulated scale, noise-free part + noise).
    noise_free
        float32 ``(n, z, y, x)``: the same imaging without noise (protein bright, not normalised:
        with ``normalize=False`` the subtomogram minus its noise), when asked for.
    densities
        float32 ``(n, z, y, x)``: the rotated, shifted clean density before imaging, when asked for.
    """

    start: int
    subtomograms: np.ndarray
    noise_free: np.ndarray | None = None
    densities: np.ndarray | None = None


@dataclass
class SimulatedSubtomograms:
    """A simulated particle set: its truth table and references; subtomograms made on iteration.

    Attributes
    ----------
    table
        Canonical particle table (``cryomine.io``): one row per subtomogram, with the true pose
        (``rlnAngleRot/Tilt/Psi``, ``cmTrueShiftX/Y/Z`` in voxels), ``cmStructure`` and
        ``cmTrueClass`` (1-based, in the order of the structures). Coordinates are the box centre.
    references
        Structure name → clean density ``(n, n, n)`` float32, protein bright.
    references_ctf
        Structure name → the same density filtered by the 3-D CTF (contrast inverted to bright).
    parameters
        The resolved simulation parameters (JSON-friendly).
    """

    table: pd.DataFrame
    references: dict[str, np.ndarray]
    references_ctf: dict[str, np.ndarray]
    parameters: dict[str, Any]
    _generate: Callable[[bool, bool], Iterator[SubtomogramBatch]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.table)

    def iter_batches(
        self, *, keep_noise_free: bool = False, keep_densities: bool = False
    ) -> Iterator[SubtomogramBatch]:
        """Simulate and yield the subtomograms in table order, ``batch_size`` at a time."""
        return self._generate(keep_noise_free, keep_densities)

    def iter_subtomograms(self) -> Iterator[np.ndarray]:
        """Yield ``(n, z, y, x)`` float32 batches of subtomograms (for writers).

        Z-scored unless ``parameters["normalize"]`` is false.
        """
        for batch in self.iter_batches():
            yield batch.subtomograms


def _filtered_by_ctf(
    volume: np.ndarray,
    voxel_size_a: float,
    imaging: ImagingParameters,
    paper: PaperFilters | None = None,
) -> np.ndarray:
    """Contrast-bright reference: the density through the signal's transfer, without the wedge.

    Projection model: ``-CTF``; paper model: ``-B · C · B`` (band-pass, amplitude-free CTF).
    """
    if paper is None:
        transfer = -ctf(volume.shape, voxel_size_a, **imaging.ctf_kwargs())
    else:
        transfer = -(paper.bandpass**2) * paper.ctf
    spectrum = torch.fft.rfftn(torch.from_numpy(volume)) * transfer
    return torch.fft.irfftn(spectrum, s=volume.shape).numpy().astype(np.float32)


def simulate_subtomograms(
    structures: Sequence[str | Path] | Mapping[str, np.ndarray],
    *,
    n_per_class: int,
    snr: float,
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
    tilt_step_deg: float = 3.0,
    box_size: int = 24,
    voxel_size_a: float = DEFAULT_VOXEL_SIZE_A,
    resolution_a: float | None = None,
    defocus_um: float = 5.0,
    b_factor_a2: float = 0.0,
    max_shift_px: float = 2.0,
    mode: ImagingMode | None = None,
    noise_model: NoiseModel = "projection",
    normalize: bool = True,
    signal_variance: Literal["subtomogram", "structure"] = "subtomogram",
    seed: int = 0,
    batch_size: int = 64,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedSubtomograms:
    """Simulate ``n_per_class`` subtomograms of each structure with known pose and class.

    Parameters
    ----------
    structures
        Structure names/paths, or a mapping name → density (see :func:`load_structure_densities`).
        Class ``k`` (1-based ``cmTrueClass``) is the ``k``-th structure.
    n_per_class
        Subtomograms per structure; rows are shuffled (classes interleaved).
    snr
        ``noise_model="projection"``: the SNR of every subtomogram, var(noise-free
        reconstruction) / var(noise reconstruction). ``"paper"``: the paper's nominal SNR (each
        noise field has variance ``0.5 · σ²_s / snr``); measured the same way it is higher
        (``docs/simulation.md``).
    tilt_range_deg, tilt_step_deg
        Tilt range and step in degrees (single axis, y).
    box_size, voxel_size_a
        Cubic box edge (voxels) and voxel size (Å).
    resolution_a
        Resolution (Å) of the structure maps; ``None``: the structure library's default.
    defocus_um
        Underfocus in µm, positive (the paper's "-5 µm" is ``5.0``).
    b_factor_a2
        B-factor envelope of the CTF, Å².
    max_shift_px
        Random shift per axis, uniform in ``[-max_shift_px, max_shift_px]`` voxels.
    mode
        Imaging of the projection noise model: ``"tilt-series"`` (project, CTF, noise, WBP;
        ``None`` means this) or ``"fourier"`` (3-D CTF x wedge). Must be ``None`` with
        ``noise_model="paper"``, which images in 3-D by its own protocol.
    noise_model
        ``"projection"`` (noise in the projections or WBP-coloured, each subtomogram at exactly
        ``snr``) or ``"paper"`` (the DISCA paper's 3-D protocol, :mod:`._paper_noise`; amplitude
        contrast 0, noise scaled by each structure's own signal variance).
    normalize
        Z-score each subtomogram (default). ``False`` leaves it at its simulated scale, which
        under ``noise_model="paper"`` differs between structures (its standard deviation tells
        the class).
    signal_variance
        Paper noise model only: ``σ²_s`` from each subtomogram's own rotated, shifted density
        (``"subtomogram"``, default) or once per structure from its centred map
        (``"structure"``). See ``docs/simulation.md`` for what each does to the measured SNR.
    seed
        Seed of everything random.
    batch_size
        Subtomograms simulated at a time.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    progress
        Called as ``progress(n_done, n_total)`` after each batch while iterating.

    Returns
    -------
    SimulatedSubtomograms
        Table and references now; subtomograms are simulated lazily by ``iter_batches``.
    """
    from cryomine._device import resolve_device
    from cryomine.geometry import random_rotations, transform_volumes
    from cryomine.io._particle_table import COLUMNS, new_particle_table

    check_noise_model(noise_model)
    if noise_model == "paper":
        if mode is not None:
            raise InputError(
                f"imaging mode {mode!r}: applies to the projection noise model only; the paper "
                "noise model images in 3-D (leave mode unset)"
            )
        check_simulation_options(snr=snr, voxel_size_a=voxel_size_a, mode="fourier")
    else:
        mode = "tilt-series" if mode is None else mode
        check_imaging_mode(mode)
        check_simulation_options(snr=snr, voxel_size_a=voxel_size_a, mode=mode)
    if signal_variance not in ("subtomogram", "structure"):
        raise InputError(
            f"signal variance {signal_variance!r}: expected 'subtomogram' or 'structure'"
        )
    if not isinstance(normalize, bool):
        raise InputError(f"normalize {normalize!r}: expected True or False")
    if isinstance(n_per_class, bool) or int(n_per_class) != n_per_class or n_per_class < 1:
        raise InputError(f"particles per class {n_per_class!r}: expected a positive integer")
    if box_size < 8:
        raise InputError(f"box size {box_size}: expected at least 8 voxels")
    if not 0 <= max_shift_px <= box_size / 4:
        raise InputError(
            f"maximum shift {max_shift_px} px: expected between 0 and box/4 = {box_size / 4}"
        )
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: expected at least 1")
    imaging = ImagingParameters(
        tilt_range_deg=tilt_range_deg,
        tilt_step_deg=tilt_step_deg,
        defocus_um=defocus_um,
        b_factor_a2=b_factor_a2,
        amplitude_contrast=0.0 if noise_model == "paper" else ImagingParameters.amplitude_contrast,
    )
    torch_device = resolve_device(device)
    paper_cpu = paper_filters(box_size, voxel_size_a, imaging) if noise_model == "paper" else None
    references = load_structure_densities(
        structures, voxel_size_a=voxel_size_a, box_size=box_size, resolution_a=resolution_a
    )
    names = list(references)
    signal_variances: dict[str, float] = {}
    paper: PaperFilters | None = None
    if paper_cpu is not None:
        centred = torch.from_numpy(np.stack([references[name] for name in names]))
        values = paper_signal_variance(centred, paper_cpu).tolist()
        signal_variances = dict(zip(names, values, strict=True))
        paper = replace(
            paper_cpu,
            bandpass=paper_cpu.bandpass.to(torch_device),
            ctf=paper_cpu.ctf.to(torch_device),
            wedge_sphere=paper_cpu.wedge_sphere.to(torch_device),
            noise_lowpass=paper_cpu.noise_lowpass.to(torch_device),
        )
    n_total = int(n_per_class) * len(names)

    setup_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
    setup = np.random.default_rng(setup_seq)
    classes = setup.permutation(np.repeat(np.arange(len(names)), int(n_per_class)))
    rotations = random_rotations(n_total, rng=setup)
    shifts_zyx = setup.uniform(-max_shift_px, max_shift_px, size=(n_total, 3))
    noise_seeds = noise_seq.spawn(n_total)

    centre = np.full((n_total, 3), float(box_size // 2))
    table = new_particle_table(
        centre, tomo_name=SIMULATED_TOMO_NAME, pixel_size_a=voxel_size_a, rotations=rotations
    )
    for axis, name in enumerate(TRUE_SHIFT_COLUMNS):
        table[name] = shifts_zyx[:, 2 - axis]
    table[COLUMNS.structure] = [names[k] for k in classes]
    table[COLUMNS.true_class] = classes + 1
    table[NOISE_MODEL_COLUMN] = noise_model
    table[NORMALIZED_COLUMN] = int(normalize)

    stack = torch.from_numpy(np.stack([references[name] for name in names])).to(torch_device)
    matrices = torch.from_numpy(rotations.as_matrix()).to(torch_device, torch.float32)
    shifts_t = torch.from_numpy(shifts_zyx).to(torch_device, torch.float32)
    per_structure = torch.tensor(
        [signal_variances.get(name, 1.0) for name in names], dtype=torch.float64
    )

    def generate(keep_noise_free: bool, keep_densities: bool) -> Iterator[SubtomogramBatch]:
        for start in range(0, n_total, batch_size):
            stop = min(start + batch_size, n_total)
            index = torch.from_numpy(classes[start:stop]).to(torch_device)
            densities, _ = transform_volumes(
                stack[index], matrices[start:stop], shifts_t[start:stop]
            )
            rngs = [np.random.default_rng(s) for s in noise_seeds[start:stop]]
            if paper is not None:
                signal, noise = image_volumes_paper(
                    densities,
                    rngs,
                    per_structure[torch.from_numpy(classes[start:stop])]
                    if signal_variance == "structure"
                    else None,
                    snr=snr,
                    filters=paper,
                )
                noisy = signal + noise
            else:
                signal, noise = image_volumes(
                    densities,
                    rngs,
                    voxel_size_a=voxel_size_a,
                    imaging=imaging,
                    mode=mode,  # type: ignore[arg-type]
                )
                signal = -signal  # protein bright, as extraction does
                noisy = add_noise_at_snr(signal, noise, snr)
            if normalize:
                dims = (1, 2, 3)
                noisy = (noisy - noisy.mean(dim=dims, keepdim=True)) / noisy.std(
                    dim=dims, keepdim=True
                )
            yield SubtomogramBatch(
                start=start,
                subtomograms=noisy.to(torch.float32).cpu().numpy(),
                noise_free=signal.cpu().numpy() if keep_noise_free else None,
                densities=densities.cpu().numpy() if keep_densities else None,
            )
            if progress is not None:
                progress(stop, n_total)

    parameters: dict[str, Any] = {
        "structures": names,
        "n_per_class": int(n_per_class),
        "snr": float(snr),
        "tilt_range_deg": list(imaging.tilt_range_deg),
        "tilt_step_deg": float(tilt_step_deg),
        "box_size": int(box_size),
        "voxel_size_a": float(voxel_size_a),
        "resolution_a": resolution_a,
        "defocus_um": float(defocus_um),
        "voltage_kv": imaging.voltage_kv,
        "cs_mm": imaging.cs_mm,
        "amplitude_contrast": imaging.amplitude_contrast,
        "b_factor_a2": float(b_factor_a2),
        "max_shift_px": float(max_shift_px),
        "mode": mode,
        "noise_model": noise_model,
        "normalize": bool(normalize),
        "seed": int(seed),
        "batch_size": int(batch_size),
    }
    if paper is not None:
        parameters["paper_bandpass_radius_voxels"] = paper.bandpass_radius
        parameters["paper_signal_variance"] = signal_variance
        parameters["paper_structure_signal_variance"] = signal_variances
    references_ctf = {
        name: _filtered_by_ctf(vol, voxel_size_a, imaging, paper_cpu)
        for name, vol in references.items()
    }
    logger.info(
        "simulating %d subtomograms of %d structures (%s noise model%s, SNR %g, %s)",
        n_total,
        len(names),
        noise_model,
        f", {mode}" if mode else "",
        snr,
        "z-scored" if normalize else "unnormalized",
    )
    return SimulatedSubtomograms(
        table=table,
        references=references,
        references_ctf=references_ctf,
        parameters=parameters,
        _generate=generate,
    )
