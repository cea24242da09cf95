"""The search template: a structure at the tomogram's voxel size, its mask and its Fourier filter.

A :class:`Template` holds the reference density (``(S, S, S)``, ``(z, y, x)``, centred at voxel
``S // 2``, with the tomogram's contrast), the real-space mask it is compared under and the
Fourier filter applied to it **after** each rotation: the missing wedge of the tomogram (tilt axis
y, beam along z, :func:`cryomine.geometry.missing_wedge_mask`) times, when a defocus is given, the
CTF of :func:`cryomine.reconstruct.ctf` (which makes protein dark at low frequency). The filter
acts in the tomogram's frame, so it is the same for every rotation of the template.

With tilt angles **and** their accumulated doses (:func:`tilt_weight`), the binary wedge is
replaced by a per-tilt weight: the sum over tilts of a central slice one Fourier voxel thick (the
plane perpendicular to that tilt's beam, the geometry of ``missing_wedge_mask``), each weighted by
the exposure filter of Grant & Grigorieff (2015), clipped to at most 1; the CTF multiplies it as
before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cryomine.errors import InputError

__all__ = [
    "Template",
    "critical_exposure",
    "make_template",
    "read_tilt_angles",
    "read_tilt_file",
    "tilt_weight",
]

logger = logging.getLogger(__name__)

Contrast = Literal["dark", "bright"]

#: A template voxel belongs to the particle when its density exceeds this fraction of the max.
_SUPPORT_FRACTION = 0.1
#: Width of the cosine edge of the default spherical mask, voxels.
MASK_SOFT_EDGE_PX = 1.0


@dataclass(frozen=True)
class Template:
    """A template ready for matching.

    Attributes
    ----------
    density
        float32 ``(S, S, S)`` (z, y, x) reference, centred at voxel ``S // 2``, with the
        tomogram's contrast (negative protein for ``contrast="dark"``), not yet filtered.
    mask
        float32 ``(S, S, S)`` real-space mask in ``[0, 1]`` in the reference frame; it is rotated
        with the template unless ``mask_is_spherical``.
    fourier_filter
        float32 ``(S, S, S // 2 + 1)`` filter in ``rfftn`` layout (missing wedge × CTF, or the
        wedge alone), applied to every rotated template.
    mask_is_spherical
        True for a sphere about the box centre, which needs no rotation.
    voxel_size_a
        Voxel size, Å.
    name
        The structure name or map path it came from.
    parameters
        How it was made (JSON-friendly): tilt range, defocus, mask radius, contrast.
    """

    density: np.ndarray
    mask: np.ndarray
    fourier_filter: np.ndarray
    mask_is_spherical: bool
    voxel_size_a: float
    name: str
    parameters: dict[str, object]

    @property
    def box_size(self) -> int:
        """Edge ``S`` of the template box, voxels."""
        return int(self.density.shape[0])


def support_radius_px(density: np.ndarray) -> float:
    """Distance (voxels) from the box centre of the farthest voxel above 10 % of ``|max|``, + 1."""
    magnitude = np.abs(density)
    inside = np.argwhere(magnitude > _SUPPORT_FRACTION * magnitude.max())
    if not len(inside):
        return 1.0
    centre = np.array(density.shape) // 2
    return float(np.sqrt(((inside - centre) ** 2).sum(axis=1)).max()) + 1.0


def read_tilt_angles(path: Path | str) -> np.ndarray:
    """Tilt angles in degrees from a text file (IMOD ``.tlt``: one angle per line).

    Returns
    -------
    ndarray of float64, shape (n_tilts,)
    """
    return _read_tilts(path, with_doses=False)[0]


def read_tilt_file(path: Path | str) -> tuple[np.ndarray, np.ndarray | None]:
    """Tilt angles (degrees) and, when every line has a second column, accumulated doses.

    One tilt per line: ``ANGLE [DOSE]``; ``#`` starts a comment line. The optional second column
    is the dose the specimen had received **before** that tilt image (e⁻/Å², RELION's
    pre-exposure); it must be on every line or on none.

    Returns
    -------
    (ndarray of float64 (n_tilts,), ndarray of float64 (n_tilts,) or None)
    """
    return _read_tilts(path, with_doses=True)


def _read_tilts(path: Path | str, *, with_doses: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a tilt file; the second column is read (and checked) only ``with_doses``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: tilt-angle file not found")
    values = []
    doses: list[float | None] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split()
        try:
            values.append(float(fields[0]))
        except ValueError:
            raise InputError(
                f"{path}:{number}: expected one tilt angle in degrees per line, got {text!r}"
            ) from None
        if len(fields) > 1 and with_doses:
            try:
                doses.append(float(fields[1]))
            except ValueError:
                raise InputError(
                    f"{path}:{number}: expected the accumulated dose (e/Å²) as the second "
                    f"column, got {fields[1]!r}"
                ) from None
        else:
            doses.append(None)
    angles = np.asarray(values, dtype=np.float64)
    if len(angles) < 2 or not np.all(np.isfinite(angles)) or np.any(np.abs(angles) > 90):
        raise InputError(f"{path}: expected at least two finite tilt angles within ±90 degrees")
    given = [d for d in doses if d is not None]
    if not with_doses or not given:
        return angles, None
    if len(given) != len(angles):
        raise InputError(
            f"{path}: {len(given)} of {len(angles)} tilts give an accumulated dose (second "
            "column); give it on every line or on none"
        )
    accumulated = np.asarray(given, dtype=np.float64)
    _check_doses(accumulated, str(path))
    return angles, accumulated


def _check_doses(doses: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(doses)) or np.any(doses < 0):
        raise InputError(f"{what}: accumulated doses must be finite and >= 0 e/Å²")


def critical_exposure(k_inv_a: np.ndarray) -> np.ndarray:
    """Critical exposure ``Ne(k) = 0.245 k^-1.665 + 2.81`` (e⁻/Å², k in 1/Å; Grant & Grigorieff
    2015); infinite at ``k = 0``."""
    k = np.asarray(k_inv_a, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 0.245 * np.power(k, -1.665) + 2.81


def tilt_weight(
    box: int,
    voxel_size_a: float,
    tilt_angles_deg: Sequence[float],
    accumulated_dose: Sequence[float],
) -> np.ndarray:
    """Per-tilt Fourier weight of a cubic box (``rfftn`` layout), in ``[0, 1]``.

    ``W(k) = min(1, Σ_i max(0, 1 - |d_i(k)|) · exp(-N_i / (2 Ne(|k|))))`` with ``d_i`` the
    distance, in Fourier voxels, of ``k`` from the central plane of tilt ``θ_i`` (normal to its
    beam ``-sin θ_i e_x + cos θ_i e_z``, tilt axis y, as :func:`cryomine.geometry.
    missing_wedge_mask`), ``N_i`` the dose received before that tilt (e⁻/Å²) and ``Ne`` the
    critical exposure (:func:`critical_exposure`).

    Returns
    -------
    ndarray of float32, shape ``(box, box, box // 2 + 1)``
    """
    from cryomine.geometry import frequency_grids
    from cryomine.reconstruct import spatial_frequency_squared

    angles = np.asarray(tilt_angles_deg, dtype=np.float64).ravel()
    doses = np.asarray(accumulated_dose, dtype=np.float64).ravel()
    if len(angles) != len(doses):
        raise InputError(
            f"accumulated dose: {len(doses)} values for {len(angles)} tilt angles; "
            "give one dose per tilt"
        )
    if not len(angles) or not np.all(np.isfinite(angles)) or np.any(np.abs(angles) > 90):
        raise InputError("tilt angles: expected finite angles within ±90 degrees")
    _check_doses(doses, "accumulated dose")
    shape = (box, box, box)
    kz, _, kx = frequency_grids(shape, rfft=True)
    kz_vox, kx_vox = kz * box, kx * box  # Fourier voxels
    k = np.sqrt(spatial_frequency_squared(shape, voxel_size_a, rfft=True).numpy())
    inverse_ne = 1.0 / critical_exposure(k)
    total = np.zeros(k.shape, dtype=np.float64)
    for theta, dose in zip(np.radians(angles), doses, strict=True):
        distance = np.abs(kz_vox * math.cos(theta) - kx_vox * math.sin(theta))
        profile = np.clip(1.0 - distance, 0.0, None)  # (Z, 1, X') broadcast over y
        total += profile * np.exp(-0.5 * dose * inverse_ne)
    return np.minimum(total, 1.0).astype(np.float32)


def _fourier_filter(
    box: int,
    voxel_size_a: float,
    tilt_range_deg: tuple[float, float] | None,
    defocus_um: float | None,
    voltage_kv: float,
    cs_mm: float,
    amplitude_contrast: float,
    tilt_angles_deg: Sequence[float] | None = None,
    accumulated_dose: Sequence[float] | None = None,
) -> np.ndarray:
    from cryomine.geometry import missing_wedge_mask
    from cryomine.reconstruct import ctf

    shape = (box, box, box)
    if accumulated_dose is not None:
        if tilt_angles_deg is None:
            raise InputError("accumulated dose given without tilt angles")
        weights = tilt_weight(box, voxel_size_a, tilt_angles_deg, accumulated_dose)
    elif tilt_range_deg is None:
        weights = np.ones((box, box, box // 2 + 1), dtype=np.float32)
    else:
        weights = missing_wedge_mask(shape, tilt_range_deg=tilt_range_deg, rfft=True)
    if defocus_um is not None:
        # the CTF is protein-dark at low frequency; the density is already dark, so use -CTF
        weights = (
            weights
            * -ctf(
                shape,
                voxel_size_a,
                defocus_um=defocus_um,
                voltage_kv=voltage_kv,
                cs_mm=cs_mm,
                amplitude_contrast=amplitude_contrast,
            ).numpy()
        )
    return np.ascontiguousarray(weights, dtype=np.float32)


def make_template(
    structure: str | Path | np.ndarray,
    *,
    voxel_size_a: float,
    box_size: int | None = None,
    tilt_range_deg: tuple[float, float] | None = (-60.0, 60.0),
    defocus_um: float | None = None,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    contrast: Contrast = "dark",
    mask: np.ndarray | None = None,
    mask_radius_px: float | None = None,
    resolution_a: float | None = None,
    tilt_angles_deg: Sequence[float] | None = None,
    accumulated_dose: Sequence[float] | None = None,
) -> Template:
    """Build the search template of a structure for a tomogram.

    Parameters
    ----------
    structure
        A built-in structure name, a map/atomic-model path (resampled to ``voxel_size_a`` by
        :func:`cryomine.structures.structure_density`), or a ready ``(S, S, S)`` array at
        ``voxel_size_a``, protein **bright**, centred at ``S // 2``.
    voxel_size_a
        The tomogram's voxel size, Å.
    box_size
        Template box ``S`` (voxels); default: the structure's own box (arrays: their shape).
    tilt_range_deg
        ``(min, max)`` tilt range of the tomogram, degrees (missing wedge about y); ``None`` for no
        wedge.
    defocus_um
        Defocus, µm, underfocus positive; ``None``: no CTF (the template keeps its sign).
    voltage_kv, cs_mm, amplitude_contrast
        Microscope of the CTF.
    contrast
        ``"dark"`` (protein dark, as reconstructions without CTF correction and the simulator
        give) or ``"bright"``.
    mask
        A user mask ``(S, S, S)`` in ``[0, 1]``; default a sphere of ``mask_radius_px``.
    mask_radius_px
        Radius of the default spherical mask, voxels (cosine edge of 1 voxel beyond it); default
        the template's support radius, at most ``S / 2 - 1``.
    resolution_a
        Low-pass resolution of maps built from names/paths, Å (default twice the voxel size).
    tilt_angles_deg, accumulated_dose
        Per-tilt weighting: the tilt angles (degrees) and the dose each tilt had received
        before it was recorded (e⁻/Å², one per angle). Given both, the binary wedge of
        ``tilt_range_deg`` is replaced by :func:`tilt_weight` (the CTF, if any, still multiplies
        it). ``accumulated_dose`` alone is an error; ``tilt_angles_deg`` alone is ignored.

    Returns
    -------
    Template
    """
    from cryomine.geometry import sphere_mask

    if not (isinstance(voxel_size_a, int | float) and math.isfinite(voxel_size_a)) or not (
        voxel_size_a > 0
    ):
        raise InputError(f"voxel_size_a: expected a positive voxel size in Å, got {voxel_size_a!r}")
    if contrast not in ("dark", "bright"):
        raise InputError(f"contrast: expected 'dark' or 'bright', got {contrast!r}")
    if defocus_um is not None and not (math.isfinite(defocus_um) and defocus_um > 0):
        raise InputError(
            f"defocus_um: expected a positive defocus in µm (underfocus), got {defocus_um!r}"
        )
    if isinstance(structure, np.ndarray):
        density = np.asarray(structure, dtype=np.float32)
        name = "array"
        if density.ndim != 3 or len(set(density.shape)) != 1 or density.shape[0] < 4:
            raise InputError(
                f"structure: expected a cubic (S, S, S) density with S >= 4, got {density.shape}"
            )
        if box_size is not None and box_size != density.shape[0]:
            raise InputError(f"box_size {box_size}: the template array is {density.shape[0]}³")
    else:
        from cryomine.structures import structure_density

        name = str(structure)
        options: dict[str, object] = {"voxel_size_a": float(voxel_size_a)}
        if box_size is not None:
            options["box_size"] = int(box_size)
        if resolution_a is not None:
            options["resolution_a"] = float(resolution_a)
        density = structure_density(structure, **options)  # type: ignore[arg-type]
    if not np.all(np.isfinite(density)) or not np.any(density):
        raise InputError(f"template {name}: density is empty or not finite")
    box = int(density.shape[0])
    if box % 2:
        raise InputError(f"template {name}: box {box} is odd; use an even box size")
    if contrast == "dark":
        density = -density
    if mask is not None:
        mask_array = np.asarray(mask, dtype=np.float32)
        if mask_array.shape != density.shape:
            raise InputError(
                f"mask: shape {mask_array.shape} differs from the template box {density.shape}"
            )
        if not np.all(np.isfinite(mask_array)) or mask_array.min() < 0 or mask_array.max() > 1:
            raise InputError("mask: values must be finite and within [0, 1]")
        if mask_array.sum() < 8:
            raise InputError("mask: fewer than 8 voxels are inside the mask")
        spherical = False
        radius = None
    else:
        radius = support_radius_px(density) if mask_radius_px is None else float(mask_radius_px)
        if not (math.isfinite(radius) and radius > 0):
            raise InputError(f"mask_radius_px: expected a positive radius, got {mask_radius_px!r}")
        radius = min(radius, box / 2 - 1 - MASK_SOFT_EDGE_PX)
        mask_array = sphere_mask(density.shape, radius, soft_edge_px=MASK_SOFT_EDGE_PX)
        spherical = True
    angles_list = doses_list = None
    if accumulated_dose is not None:
        if tilt_angles_deg is None:
            raise InputError("accumulated_dose: per-tilt weighting needs tilt_angles_deg too")
        angles_list = [float(a) for a in np.asarray(tilt_angles_deg, dtype=np.float64).ravel()]
        doses_list = [float(d) for d in np.asarray(accumulated_dose, dtype=np.float64).ravel()]
    fourier = _fourier_filter(
        box,
        float(voxel_size_a),
        tilt_range_deg,
        defocus_um,
        voltage_kv,
        cs_mm,
        amplitude_contrast,
        angles_list,
        doses_list,
    )
    parameters: dict[str, object] = {
        "structure": name,
        "box_size": box,
        "voxel_size_a": float(voxel_size_a),
        "tilt_range_deg": None if tilt_range_deg is None else [float(a) for a in tilt_range_deg],
        "defocus_um": defocus_um,
        "voltage_kv": voltage_kv,
        "cs_mm": cs_mm,
        "amplitude_contrast": amplitude_contrast,
        "contrast": contrast,
        "mask": "sphere" if spherical else "user",
        "mask_radius_px": radius,
        "resolution_a": resolution_a,
    }
    if doses_list is not None:
        parameters["tilt_weighting"] = {
            "model": "per-tilt slices x exposure filter (Grant & Grigorieff 2015), clipped to 1",
            "tilt_angles_deg": angles_list,
            "accumulated_dose": doses_list,
        }
    logger.info("template %s: box %d, mask %s", name, box, parameters["mask"])
    return Template(
        density=np.ascontiguousarray(density, dtype=np.float32),
        mask=np.ascontiguousarray(mask_array, dtype=np.float32),
        fourier_filter=fourier,
        mask_is_spherical=spherical,
        voxel_size_a=float(voxel_size_a),
        name=name,
        parameters=parameters,
    )


def tilt_range_from_angles(angles_deg: Sequence[float]) -> tuple[float, float]:
    """``(min, max)`` of a list of tilt angles, degrees."""
    values = np.asarray(angles_deg, dtype=np.float64)
    return float(values.min()), float(values.max())


def rebuild_template(
    density: np.ndarray, mask: np.ndarray, parameters: dict[str, object]
) -> Template:
    """The :class:`Template` of a search from its stored density, mask and ``parameters``.

    ``density`` already has the tomogram's contrast (as :attr:`Template.density`); the Fourier
    filter is rebuilt from the tilt range (or the per-tilt weighting), defocus and microscope in
    ``parameters``.
    """
    try:
        voxel = float(parameters["voxel_size_a"])  # type: ignore[arg-type]
        tilt = parameters["tilt_range_deg"]
        tilt_range = None if tilt is None else (float(tilt[0]), float(tilt[1]))  # type: ignore[index]
        defocus = parameters["defocus_um"]
        weighting = parameters.get("tilt_weighting")
        angles = doses = None
        if weighting is not None:
            angles = [float(a) for a in weighting["tilt_angles_deg"]]  # type: ignore[index]
            doses = [float(d) for d in weighting["accumulated_dose"]]  # type: ignore[index]
        fourier = _fourier_filter(
            int(density.shape[0]),
            voxel,
            tilt_range,
            None if defocus is None else float(defocus),  # type: ignore[arg-type]
            float(parameters["voltage_kv"]),  # type: ignore[arg-type]
            float(parameters["cs_mm"]),  # type: ignore[arg-type]
            float(parameters["amplitude_contrast"]),  # type: ignore[arg-type]
            angles,
            doses,
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise InputError(f"template parameters incomplete or invalid ({error})") from error
    return Template(
        density=np.ascontiguousarray(density, dtype=np.float32),
        mask=np.ascontiguousarray(mask, dtype=np.float32),
        fourier_filter=fourier,
        mask_is_spherical=parameters.get("mask") == "sphere",
        voxel_size_a=voxel,
        name=str(parameters.get("structure", "template")),
        parameters=dict(parameters),
    )
