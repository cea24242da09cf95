"""``cryomine report``: one self-contained HTML page about a sort run (and its averages)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import SortRunArgument

__all__ = ["register"]


def report(
    run_dir: SortRunArgument,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="HTML file to write (self-contained).")
    ] = Path("report.html"),
    averages: Annotated[
        Path | None,
        typer.Option(
            "--averages", help="Output directory of cryomine average (class maps, FSC curves)."
        ),
    ] = None,
    tomogram: Annotated[
        Path | None,
        typer.Option(
            "--tomogram", help="Tomogram MRC whose central z slice is drawn with the picks."
        ),
    ] = None,
    annotation: Annotated[
        Path | None,
        typer.Option(
            "--annotation",
            help="Label map from cryomine place (integer MRC, tomogram voxels) drawn over the "
            "slice.",
        ),
    ] = None,
    max_points: Annotated[
        int,
        typer.Option("--max-points", help="Particles at most in the t-SNE feature map (count)."),
    ] = 2000,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of subsampling and t-SNE (integer).")
    ] = 0,
) -> None:
    """Write an HTML report: run record, EM curves, feature map, class gallery, evaluation.

    Images are embedded as PNG and the page has no scripts or external resources, so it opens
    from disk offline and can be mailed or archived as one file.
    """
    from cryomine.cli._common import progress
    from cryomine.errors import InputError
    from cryomine.report import write_report

    if max_points < 5:
        raise InputError(f"--max-points {max_points}: expected at least 5 particles")
    with progress("report sections") as bar:
        write_report(
            output, run_dir, averages_dir=averages, tomogram=tomogram, annotation=annotation,
            seed=seed, max_points=max_points, progress=bar,
        )  # fmt: skip
    typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
