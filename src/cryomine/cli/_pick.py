"""``cryomine pick``: template-free particle picking by difference of Gaussians."""

from __future__ import annotations

from pathlib import Path

import typer

from cryomine.cli._common import HeaderVoxelSize, OverwriteFile

__all__ = ["register"]


def pick(
    tomogram: Path = typer.Argument(..., help="Tomogram (.mrc .rec .st .map, optionally .gz)."),
    diameter_a: float = typer.Option(
        ..., "--particle-diameter", help="Expected particle diameter, Å."
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Picks: .star (RELION 4 columns, px + pixel size), .coords (x y z px) or .json (copick, Å).",
    ),
    voxel_size_a: HeaderVoxelSize = None,
    contrast: str = typer.Option(
        "dark", "--contrast", help="Protein 'dark' (IMOD/AreTomo/Warp reconstructions) or 'bright'."
    ),
    min_distance_a: float | None = typer.Option(
        None, "--min-distance", help="Minimum distance between picks, Å. Default 0.8 × diameter."
    ),
    min_score: float | None = typer.Option(
        None,
        "--min-score",
        help="Keep picks whose DoG response is at least this many tomogram standard deviations.",
    ),
    max_picks: int | None = typer.Option(
        None, "--max-picks", help="Keep at most this many picks, best first."
    ),
    border_a: float | None = typer.Option(
        None,
        "--border",
        help="Exclude picks closer than this to the tomogram faces, Å. Default: the particle radius.",
    ),
    mask: Path | None = typer.Option(
        None,
        "--mask",
        help="MRC mask of the tomogram's shape; picks are kept where it is non-zero.",
    ),
    overwrite: OverwriteFile = False,
) -> None:
    """Pick particles in a tomogram without templates (difference of Gaussians tuned to the diameter).

    Local maxima of the DoG response at least --min-distance apart are picks; each pick's score is
    the response in tomogram standard deviations (STAR column rlnAutopickFigureOfMerit). The
    tomogram is memory-mapped and filtered in blocks, so large tomograms need little memory. A JSON
    run record is written beside the output (OUTPUT.run.json).
    """
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import picks_format, progress, write_picks
    from cryomine.io import new_particle_table, read_mrc, tomogram_name
    from cryomine.io._atomic import check_writable
    from cryomine.picking import pick_particles

    picks_format(output)
    check_writable(output, overwrite=overwrite)
    parameters = {
        "tomogram": tomogram,
        "particle_diameter_a": diameter_a,
        "voxel_size_a": voxel_size_a,
        "contrast": contrast,
        "min_distance_a": min_distance_a,
        "min_score": min_score,
        "max_picks": max_picks,
        "border_a": border_a,
        "mask": mask,
        "output": output,
    }
    with recording_run(
        output.parent, "pick", parameters, inputs=[tomogram], name=f"{output.name}.run.json"
    ) as record:
        volume, voxel = read_mrc(tomogram, voxel_size_a=voxel_size_a, check_finite=False)
        mask_array = None
        if mask is not None:
            mask_array, _ = read_mrc(mask, voxel_size_a=voxel, check_finite=False)
            mask_array = mask_array != 0
        with record.timed("pick"), progress("picking blocks") as report:
            picks = pick_particles(
                volume,
                voxel_size_a=voxel,
                diameter_a=diameter_a,
                contrast=contrast,
                min_distance_a=min_distance_a,
                min_score=min_score,
                max_picks=max_picks,
                border_a=border_a,
                mask=mask_array,
                progress=report,
            )
        name = tomogram_name(tomogram)
        table = new_particle_table(
            picks.positions_zyx, tomo_name=name, pixel_size_a=voxel, scores=picks.scores
        )
        write_picks(
            output,
            table,
            picks.positions_zyx,
            object_name="particle",
            run_name=name,
            overwrite=overwrite,
        )
        record.results["n_picks"] = len(picks)
    typer.echo(f"{len(picks)} picks in {tomogram} (voxel {voxel:.4g} Å) → {output}")


def register(app: typer.Typer) -> None:
    app.command("pick")(pick)
