"""``cryomine average``: gold-standard subtomogram averaging of the classes of a sort run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import Device, OverwriteDirectory, TiltRange

__all__ = ["register"]


def average(
    run_dir: Annotated[
        Path,
        typer.Argument(help="Sort run directory (particles.star with rlnClassNumber, run.json)."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write the averages to.")
    ],
    particles_dir: Annotated[
        Path | None,
        typer.Option(
            "--particles",
            help="Particle set directory; default: the one named in RUN_DIR/run.json.",
        ),
    ] = None,
    tilt_range: TiltRange = 60.0,
    iterations: Annotated[
        int, typer.Option("--iterations", help="Gold-standard local refinement iterations (count).")
    ] = 5,
    global_iterations: Annotated[
        int,
        typer.Option(
            "--global-iterations",
            help="Initial-model rounds: global search on all particles (count).",
        ),
    ] = 2,
    angular_step: Annotated[
        float,
        typer.Option(
            "--angular-step", help="Global rotation grid step, degrees; local steps halve from it."
        ),
    ] = 30.0,
    max_shift: Annotated[
        float | None,
        typer.Option("--max-shift", help="Largest particle shift searched, Å (default: box / 6)."),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes", help="Comma-separated class numbers (1-based) to average; default all."
        ),
    ] = None,
    start: Annotated[
        str,
        typer.Option(
            "--start",
            help="Where each class's refinement starts: auto (the run's orientations where the "
            "sort aligned its particles, e.g. MPP; else a global search), global, orientations.",
        ),
    ] = "auto",
    device: Device = "auto",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed of the half-set split (integer).")
    ] = 0,
    overwrite: OverwriteDirectory = False,
) -> None:
    """Align and average each class reference-free with two independent halves (gold standard).

    Writes class_NNN.mrc, class_NNN_half1.mrc, class_NNN_half2.mrc, fsc_class_NNN.csv,
    particles.star (rows of the averaged classes with rlnAngleRot/Tilt/Psi, rlnOrigin?Angst,
    rlnRandomSubset), summary.json and run.json.
    """
    from cryomine.averaging import average_run
    from cryomine.cli._common import progress

    with progress("averaging classes") as bar:
        summary = average_run(
            run_dir,
            output,
            particles_dir=particles_dir,
            tilt_range_deg=(-tilt_range, tilt_range),
            iterations=iterations,
            global_iterations=global_iterations,
            angular_step_deg=angular_step,
            max_shift_a=max_shift,
            classes=_parse_classes(classes),
            device=device,
            seed=seed,
            overwrite=overwrite,
            progress=bar,
            start=start,
        )
    for entry in summary["classes"]:
        resolution = entry["resolution_a"]
        resolved = "not resolved" if resolution is None else f"resolution {resolution:.1f} Å"
        typer.echo(f"class {entry['class']}: {entry['n_particles']} particles, {resolved}")
    typer.echo(f"wrote {output}")


def _parse_classes(text: str | None) -> list[int] | None:
    from cryomine.errors import InputError

    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise InputError(
            f"--classes {text!r}: expected comma-separated class numbers like 1,3"
        ) from error
    if not values or min(values) < 1:
        raise InputError(f"--classes {text!r}: expected class numbers >= 1")
    return values


def register(app: typer.Typer) -> None:
    app.command("average")(average)
