"""``cryomine import``: bring particles from other packages in as cryomine particle sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import Device, OverwriteDirectory, ParticleSetOutput, command_group

__all__ = ["register"]

import_app = command_group(
    "Import particles from other packages as particle sets (subtomograms + particles.star)."
)


@import_app.command("warp")
def warp(
    particles: Annotated[
        Path,
        typer.Argument(
            help="Particle STAR of a Warp/RELION 5 2-D tilt-stack export, or an optimisation set."
        ),
    ],
    *,
    tomograms: Annotated[
        Path | None,
        typer.Option(
            "--tomograms",
            "-t",
            help="Tomograms STAR with per-tilt projection matrices (not for an optimisation set).",
        ),
    ] = None,
    output: ParticleSetOutput,
    box: Annotated[
        int | None,
        typer.Option(
            "--box", help="Subtomogram box edge, voxels (default: the stacks' image size)."
        ),
    ] = None,
    ctf: Annotated[
        str,
        typer.Option(
            "--ctf",
            help="CTF correction per tilt: 'phase-flip', 'wiener' or 'none' (defocus from the "
            "STAR).",
        ),
    ] = "phase-flip",
    wiener_constant: Annotated[
        float,
        typer.Option(
            "--wiener-constant",
            help="With --ctf wiener: constant added to CTF² (unitless; CTF peaks are 1).",
        ),
    ] = 0.1,
    flip_hand: Annotated[
        bool,
        typer.Option(
            "--flip-hand",
            help="Mirror subtomograms through the tomogram x-y plane (z → −z); adapt the angles.",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Particles back-projected at a time (count).")
    ] = 64,
    device: Device = "auto",
    overwrite: OverwriteDirectory = False,
) -> None:
    """Reconstruct Warp/RELION 5 tilt-stack particles as subtomograms (weighted back-projection).

    Voxel size (Å) is the stacks' pixel size; subtomograms are in the tomogram frame, protein
    bright and z-scored; the particles' RELION angles and coordinates (pixels) are kept.
    """
    from cryomine.cli._common import progress
    from cryomine.reconstruct import import_warp_tiltstacks

    with progress("reconstructing particles") as callback:
        out = import_warp_tiltstacks(
            output,
            particles,
            tomograms,
            box_size=box,
            ctf_correction=ctf,  # type: ignore[arg-type]
            wiener_constant=wiener_constant,
            flip_hand=flip_hand,
            batch_size=batch_size,
            device=device,
            overwrite=overwrite,
            progress=callback,
        )
    typer.echo(f"wrote particle set {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
