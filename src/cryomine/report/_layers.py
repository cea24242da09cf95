"""Data for an interactive viewer (``cryomine view``): tomogram, picks by class, label map.

Pure data preparation: nothing here imports napari or Qt. Each layer is a :class:`ViewerLayer`
whose ``kind`` names the napari ``Viewer.add_<kind>`` method and whose ``options`` are that
method's keyword arguments, so the viewer code is a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryomine.errors import InputError
from cryomine.io import COLUMNS, positions_zyx, read_mrc, read_sorted_particles, tomogram_name
from cryomine.report._figures import class_color

__all__ = ["ViewerLayer", "viewer_layers"]


@dataclass
class ViewerLayer:
    """One viewer layer.

    Attributes
    ----------
    kind
        ``"image"``, ``"points"`` or ``"labels"``.
    data
        Image: ``(Z, Y, X)`` array (may be memory-mapped); points: ``(n, 3)`` float z, y, x in
        tomogram voxels; labels: ``(Z, Y, X)`` integer array (0 = background).
    options
        Keyword arguments for ``napari.Viewer.add_<kind>`` (``name``, ``scale`` in Å per voxel,
        colours, ...).
    """

    kind: str
    data: Any
    options: dict[str, Any] = field(default_factory=dict)


def _volume(path: Path, what: str) -> tuple[np.ndarray, float]:
    data, voxel = read_mrc(path, mmap=True, check_finite=False)
    if data.ndim != 3:
        raise InputError(f"{path}: {what} must be a 3-D volume, got shape {data.shape}")
    return data, voxel


def viewer_layers(
    run_dir: Path | str,
    *,
    tomogram: Path | str | None = None,
    annotation: Path | str | None = None,
    point_size_a: float | None = None,
) -> list[ViewerLayer]:
    """Layers showing a sort run: the tomogram, the picks coloured by class, the label map.

    Parameters
    ----------
    run_dir
        Output directory of ``cryomine sort`` (``particles.star`` with ``rlnClassNumber``).
    tomogram
        Tomogram MRC (memory-mapped, not loaded). Only particles whose ``rlnTomoName`` matches
        its name are shown, at positions rescaled to its voxel size. Without it, all particles
        are shown in the coordinates of their table (one points layer per tomogram name).
    annotation
        Integer label map (``cryomine place --labels``), same shape as the tomogram.
    point_size_a
        Diameter of the pick markers in Å (default: 10 voxels).

    Returns
    -------
    list of ViewerLayer
        Image (if ``tomogram``), one points layer per tomogram, labels (if ``annotation``).
        Every layer has ``scale`` = its voxel size in Å, so they overlay in Å.
    """
    run_dir = Path(run_dir)
    star = run_dir / "particles.star"
    table = read_sorted_particles(run_dir)
    layers: list[ViewerLayer] = []
    voxel: float | None = None
    shape: tuple[int, ...] | None = None
    if tomogram is not None:
        tomogram = Path(tomogram)
        data, voxel = _volume(tomogram, "the tomogram")
        shape = data.shape
        layers.append(ViewerLayer("image", data, {
            "name": tomogram.name, "scale": (voxel,) * 3, "colormap": "gray",
        }))  # fmt: skip
        names = [tomogram_name(tomogram)]
        tomo_names = table[COLUMNS.tomo_name].astype(str).to_numpy()
        if not np.any(tomo_names == names[0]):
            raise InputError(f"{star}: no particles with rlnTomoName {names[0]!r} "
                             f"(the name of {tomogram.name})")  # fmt: skip
    else:
        tomo_names = table[COLUMNS.tomo_name].astype(str).to_numpy()
        names = sorted(set(tomo_names.tolist()))
    for name in names:
        rows = table[tomo_names == name]
        pixel = rows[COLUMNS.pixel_size].to_numpy(dtype=np.float64)
        scale = voxel if voxel is not None else float(pixel[0])
        zyx = positions_zyx(rows) * (pixel / scale)[:, None]
        classes = rows[COLUMNS.class_number].to_numpy(np.int64)
        size = 10.0 if point_size_a is None else point_size_a / scale
        layers.append(ViewerLayer("points", zyx, {
            "name": f"picks {name}", "scale": (scale,) * 3, "size": size,
            "face_color": [class_color(k) for k in classes],
            "features": {"class": classes, "particle_id": rows[COLUMNS.particle_id].to_numpy()},
            "opacity": 0.8,
        }))  # fmt: skip
    if annotation is not None:
        annotation = Path(annotation)
        labels, label_voxel = _volume(annotation, "the annotation")
        if not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"{annotation}: expected an integer label map (cryomine place "
                             f"--labels), got {labels.dtype}")  # fmt: skip
        if shape is not None and labels.shape != shape:
            raise InputError(f"{annotation}: shape {labels.shape} differs from the tomogram's "
                             f"{shape}")  # fmt: skip
        layers.append(ViewerLayer("labels", labels, {
            "name": annotation.name, "scale": (voxel or label_voxel,) * 3, "opacity": 0.5,
        }))  # fmt: skip
    return layers
