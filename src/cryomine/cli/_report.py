"""``cryomine report``: one self-contained HTML page about a sort run (and its averages)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def report(
    run_dir: Path = typer.Argument(..., help="Sort run directory (output of cryomine sort)."),
    output: Path = typer.Option(
        Path("report.html"), "--output", "-o", help="HTML file to write (self-contained)."
    ),
    averages: Path | None = typer.Option(
        None, "--averages", help="Output directory of cryomine average (class maps, FSC curves)."
    ),
    tomogram: Path | None = typer.Option(
        None, "--tomogram", help="Tomogram MRC whose central z slice is drawn with the picks."
    ),
    annotation: Path | None = typer.Option(
        None,
        "--annotation",
        help="Label map from cryomine place (integer MRC, tomogram voxels) drawn over the slice.",
    ),
    max_points: int = typer.Option(
        2000, "--max-points", help="Particles at most in the t-SNE feature map (count)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of subsampling and t-SNE (integer)."),
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
