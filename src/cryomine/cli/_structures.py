"""``cryomine structures``: list the built-in structures, or write one as a density map."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import OverwriteFile

__all__ = ["register"]


def structures(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Built-in structure name or alias (case-insensitive), or a path to a "
            ".pdb/.cif/.mmcif model or .mrc/.map density map (optionally .gz). Leave out to list "
            "the built-ins."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="MRC file to write the density map to (.mrc, .map; .gz to compress).",
        ),
    ] = None,
    voxel_size_a: Annotated[
        float | None,
        typer.Option(
            "--voxel-size", help="Voxel size of the written map, Å. Required with --output."
        ),
    ] = None,
    box_size: Annotated[
        int | None,
        typer.Option(
            "--box",
            help="Edge of the cubic box, voxels. Default: the smallest even box holding the "
            "structure.",
        ),
    ] = None,
    resolution_a: Annotated[
        float | None,
        typer.Option(
            "--resolution",
            help="Resolution of the Gaussian low-pass, Å. Default: twice the voxel size.",
        ),
    ] = None,
    mass_kda: Annotated[
        float | None,
        typer.Option(
            "--mass",
            help="Mass the density is scaled to, kDa. Default: from the atoms or the catalogue.",
        ),
    ] = None,
    overwrite: OverwriteFile = False,
) -> None:
    """List the built-in structures, or write one as a density map.

    Without arguments: a table of the built-in structures (name, mass in kDa, diameter in Å,
    kind, description). With NAME only: its details and provenance. With NAME, --voxel-size and
    -o: the density map (z, y, x; Da/Å³, protein bright, centre of mass at the box centre n // 2)
    as float32 MRC, plus a JSON run record beside it (OUTPUT.run.json).
    """
    import warnings

    from cryomine.errors import InputError
    from cryomine.structures import StructureCroppedWarning, list_structures, structure_info

    if name is None:
        if output is not None:
            raise InputError("--output needs a structure NAME to write")
        typer.echo(f"{'name':<14} {'mass kDa':>9} {'diam. Å':>8}  {'kind':<6}  description")
        for info in list_structures():
            numbers = f"{info.mass_kda:>9.1f} {info.diameter_a:>8.0f}"
            typer.echo(f"{info.name:<14} {numbers}  {info.kind:<6}  {info.description}")
        return

    if output is None:
        info = structure_info(name)
        typer.echo(f"name         {info.name}")
        typer.echo(f"aliases      {', '.join(info.aliases) or '-'}")
        typer.echo(f"description  {info.description}")
        typer.echo(f"kind         {info.kind} ({info.file})")
        typer.echo(f"mass         {info.mass_kda:.1f} kDa ({info.mass_source})")
        typer.echo(f"diameter     {info.diameter_a:.0f} Å")
        typer.echo(f"source       {info.source}")
        typer.echo(f"licence      {info.license}")
        typer.echo(f"provenance   {info.provenance}")
        return

    if voxel_size_a is None:
        raise InputError("--voxel-size (Å) is required to write a map with --output")
    from cryomine._runrecord import recording_run
    from cryomine.io import write_mrc
    from cryomine.io._atomic import check_writable
    from cryomine.structures import structure_density

    output = Path(output)
    check_writable(output, overwrite=overwrite)
    parameters = {
        "structure": name,
        "voxel_size_a": voxel_size_a,
        "box_size": box_size,
        "resolution_a": resolution_a,
        "mass_kda": mass_kda,
        "output": output,
    }
    inputs = [Path(name)] if Path(name).is_file() else []
    with recording_run(
        output.parent, "structures", parameters, inputs=inputs, name=f"{output.name}.run.json"
    ) as record:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StructureCroppedWarning)
            with record.timed("density"):
                density = structure_density(
                    name,
                    voxel_size_a=voxel_size_a,
                    resolution_a=resolution_a,
                    box_size=box_size,
                    mass_kda=mass_kda,
                )
        for warning in caught:
            typer.echo(f"warning: {warning.message}", err=True)
        write_mrc(output, density, voxel_size_a, overwrite=overwrite)
        record.results = {
            "shape_zyx": list(density.shape),
            "integrated_mass_kda": float(density.sum()) * voxel_size_a**3 / 1000,
        }
    n = density.shape[0]
    typer.echo(f"wrote {output}: {n}×{n}×{n} voxels at {voxel_size_a:g} Å")


def register(app: typer.Typer) -> None:
    app.command("structures")(structures)
