"""``cryomine view``: look at a sort run in napari (optional extra ``cryomine[viewer]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import SortRunArgument

__all__ = ["import_napari", "register"]


def import_napari() -> object:
    """The napari module, or :class:`InputError` saying how to install it."""
    from cryomine.errors import InputError

    try:
        import napari
    except ImportError as error:
        raise InputError(
            "cryomine view needs napari, which is not installed; "
            "install it with: pip install 'cryomine[viewer]'"
        ) from error
    return napari


def view(
    run_dir: SortRunArgument,
    tomogram: Annotated[
        Path | None,
        typer.Option("--tomogram", help="Tomogram MRC to show (memory-mapped; voxel size in Å)."),
    ] = None,
    annotation: Annotated[
        Path | None,
        typer.Option(
            "--annotation", help="Integer label map from cryomine place, tomogram voxels."
        ),
    ] = None,
    point_size: Annotated[
        float | None,
        typer.Option("--point-size", help="Diameter of the pick markers, Å (default 10 voxels)."),
    ] = None,
) -> None:
    """Open napari with the tomogram, the picks coloured by class and the label map.

    Layers are scaled to Å so that they overlay. Needs the optional napari extra:
    pip install 'cryomine[viewer]'.
    """
    from cryomine.report import viewer_layers

    napari = import_napari()
    layers = viewer_layers(run_dir, tomogram=tomogram, annotation=annotation,
                           point_size_a=point_size)  # fmt: skip
    viewer = napari.Viewer(title=f"cryomine: {run_dir}")  # type: ignore[attr-defined]
    for layer in layers:
        getattr(viewer, f"add_{layer.kind}")(layer.data, **layer.options)
    napari.run()  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("view")(view)
