"""``cryomine extract``: cut subtomograms out of a tomogram at picked positions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import (
    BinFactor,
    Contrast,
    HeaderVoxelSize,
    OverwriteDirectory,
    TomogramArgument,
)

__all__ = ["register"]


def extract(
    tomogram: TomogramArgument,
    picks: Annotated[
        Path,
        typer.Argument(
            help="Particle positions: .star (RELION 4 or 5), .coords (x y z px) or copick .json."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Particle-set directory to create (particles.star + subtomograms.zarr).",
        ),
    ],
    box_size: Annotated[
        int, typer.Option("--box", help="Edge of the cubic subtomograms, in (binned) voxels.")
    ] = 24,
    bin_factor: BinFactor = 1,
    voxel_size_a: HeaderVoxelSize = None,
    contrast: Contrast = "dark",
    overwrite: OverwriteDirectory = False,
) -> None:
    """Extract subtomograms centred on particle positions into a particle set.

    Subtomograms are binned on the fly, inverted to protein-bright if --contrast is dark, and
    z-scored. Particles whose box would leave the tomogram are skipped and counted. Rows of the
    picks table that refer to other tomograms (rlnTomoName) are ignored.
    """
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress, read_picks
    from cryomine.errors import InputError
    from cryomine.extract import extract_subtomograms
    from cryomine.io import positions_zyx, read_mrc, tomogram_name, write_particle_set
    from cryomine.io._atomic import check_writable

    check_writable(output, overwrite=overwrite)
    volume, voxel = read_mrc(tomogram, voxel_size_a=voxel_size_a, check_finite=False)
    name = tomogram_name(tomogram)
    table = read_picks(picks, tomo_name=name, tomogram_shape=volume.shape, voxel_size_a=voxel)

    parameters = {
        "tomogram": tomogram,
        "picks": picks,
        "box_size": box_size,
        "bin_factor": bin_factor,
        "voxel_size_a": voxel,
        "contrast": contrast,
        "output": output,
    }
    with recording_run(output, "extract", parameters, inputs=[tomogram, picks]) as record:
        with progress("extracting") as report:
            result = extract_subtomograms(
                volume,
                positions_zyx(table),
                voxel_size_a=voxel,
                box_size=box_size,
                bin_factor=bin_factor,
                contrast=contrast,
                progress=report,
            )
            if not result.kept.any():
                raise InputError(
                    f"{picks}: all {len(table)} particles are too close to the tomogram's edge "
                    f"for a box of {box_size}"
                )
            kept_table = table[result.kept].reset_index(drop=True)
            write_particle_set(
                output,
                kept_table,
                result.batches(),
                voxel_size_a=result.voxel_size_a,
                overwrite=overwrite,
            )
        record.results.update(
            {"n_extracted": int(result.kept.sum()), "n_skipped_at_edge": result.n_skipped}
        )
    typer.echo(
        f"{int(result.kept.sum())} subtomograms of {box_size}³ at {result.voxel_size_a:.4g} Å → {output}"
        f" ({result.n_skipped} skipped at the edge)"
    )


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
