"""``cryomine refine``: refine a sort run's classes by multi-pattern pursuit (MPP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cryomine.cli._common import (
    Device,
    OverwriteOutputs,
    ParticleSetTiltRange,
    Resume,
    RunOutput,
    Seed,
    particle_set_tilt_range,
)

__all__ = ["register", "run_mpp"]


def run_mpp(
    particles: Any,
    output: Path,
    *,
    init_labels: Any,
    device: str,
    seed: int,
    resume: bool,
    overwrite: bool,
    parameters: dict[str, Any],
    tilt_range: float | None = None,
    **mpp_options: Any,
) -> None:
    """Fit :class:`cryomine.sorting.MPP` and write the run directory ``output``, with progress
    lines on stderr. ``tilt_range`` (maximum tilt, degrees) defaults to the simulated set's."""
    from cryomine.sorting import MPP, write_mpp_run

    tilt_range_deg = particle_set_tilt_range(particles.directory, tilt_range)
    model = MPP(tilt_range_deg=tilt_range_deg, random_state=seed, device=device, **mpp_options)

    def report(entry: dict) -> None:
        events = "; ".join(entry["events"])
        seconds = sum(entry["timings_s"].values())
        typer.echo(
            f"iteration {entry['iteration'] + 1}/{model.max_iter}: K={entry['n_classes']} "
            f"sizes {entry['sizes']} labels changed {100 * entry['label_change']:.1f} %"
            f"{' — ' + events if events else ''} ({seconds:.0f} s)",
            err=True,
        )

    results = write_mpp_run(
        particles, output, model, init_labels=init_labels, parameters=parameters, seed=seed,
        resume=resume, overwrite=overwrite, callback=report,
    )  # fmt: skip
    sizes = ", ".join(f"{k + 1}: {n}" for k, n in enumerate(results["class_sizes"]))
    typer.echo(f"{results['n_classes']} classes from {results['n_particles']} particles "
               f"({sizes}) after {results['n_iter']} MPP iterations")  # fmt: skip
    typer.echo(f"wrote {output / 'particles.star'}")


def refine(
    run_dir: Annotated[
        Path, typer.Argument(help="A sort run directory (particles.star with classes).")
    ],
    output: RunOutput,
    particles_dir: Annotated[
        Path | None,
        typer.Option(
            "--particles", help="Particle set directory (default: the one the run recorded)."
        ),
    ] = None,
    max_iter: Annotated[
        int | None, typer.Option("--max-iter", help="Most MPP iterations (count). Default: 100.")
    ] = None,
    angular_step: Annotated[
        float | None,
        typer.Option("--angular-step", help="Global rotation grid step (degrees). Default: 30."),
    ] = None,
    lowpass: Annotated[
        float | None,
        typer.Option(
            "--lowpass", help="Scoring and averaging band (Å). Default: 4 voxels (half Nyquist)."
        ),
    ] = None,
    min_class_size: Annotated[
        int | None,
        typer.Option(
            "--min-class-size", help="Fewest members a class may keep (subtomograms). Default: 6."
        ),
    ] = None,
    merge_threshold: Annotated[
        float | None,
        typer.Option(
            "--merge-threshold",
            help="Merge two classes whose half maps correlate at this fraction of what one "
            "structure would give (dimensionless). Default: 0.9.",
        ),
    ] = None,
    no_propose: Annotated[
        bool, typer.Option("--no-propose", help="Never split classes (K can only fall).")
    ] = False,
    tilt_range: ParticleSetTiltRange = None,
    device: Device = "auto",
    seed: Seed = 0,
    resume: Resume = False,
    overwrite: OverwriteOutputs = False,
) -> None:
    """Refine the classes of RUN_DIR by multi-pattern pursuit into a new run directory.

    Every particle is aligned to every class average and reassigned; classes are re-averaged
    in two halves, merged, dropped and proposed until stable (docs/mpp.md). The output is a
    sort run: particles.star with rlnClassNumber and the orientations found, classes/ with
    half maps and FSC, history.json, checkpoints/ and run.json.
    """
    from cryomine.averaging import particle_set_of_run
    from cryomine.errors import InputError
    from cryomine.io import COLUMNS, read_sorted_particles

    run_dir, output = Path(run_dir), Path(output)
    star = run_dir / "particles.star"
    if output.resolve() == run_dir.resolve():
        raise InputError(f"-o {output}: the refined run must go to another directory than RUN_DIR")
    table = read_sorted_particles(run_dir)
    particles = particle_set_of_run(run_dir, particles_dir)
    if len(table) != particles.n_particles:
        raise InputError(f"{star}: {len(table)} rows but the particle set "
                         f"{particles.directory} holds {particles.n_particles}")  # fmt: skip
    given = {
        "max_iter": max_iter, "angular_step_deg": angular_step,
        "min_class_size": min_class_size, "merge_threshold": merge_threshold,
    }  # fmt: skip
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    options["propose"] = not no_propose
    if lowpass is not None:
        if not lowpass > 0:
            raise InputError(f"--lowpass {lowpass}: expected a resolution in Å > 0")
        options["max_frequency"] = min(0.5, particles.voxel_size_a / lowpass)
    run_mpp(
        particles, output, init_labels=table[COLUMNS.class_number].to_numpy(), device=device,
        seed=seed, resume=resume, overwrite=overwrite, tilt_range=tilt_range,
        parameters={"method": "refine", "run_dir": str(run_dir),
                    "particles_dir": str(particles.directory)},
        **options,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("refine")(refine)
