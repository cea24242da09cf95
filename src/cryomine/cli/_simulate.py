"""``cryomine simulate``: simulated subtomogram sets and crowded tomograms with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import (
    Device,
    OverwriteDirectory,
    ParticleSetOutput,
    PerClass,
    Seed,
    SimulationDefocus,
    SimulationTiltStep,
    SimulationVoxelSize,
    Structures,
    SubtomogramSnr,
    TiltRange,
    command_group,
    symmetric_tilt_range,
)

__all__ = ["register"]

simulate_app = command_group(
    "Simulate data with ground truth: subtomogram sets (particle sets with true classes and "
    "poses) and crowded tomograms (with truth.star and a label map). Imaging: tilt series "
    "about y, CTF (300 kV, Cs 2.7 mm), noise at a target SNR, weighted back-projection."
)


@simulate_app.command("subtomograms")
def subtomograms(
    structure: Structures,
    output: ParticleSetOutput,
    per_class: PerClass = 100,
    snr: SubtomogramSnr = 0.1,
    tilt_range: TiltRange = 60.0,
    tilt_step: SimulationTiltStep = 3.0,
    box: Annotated[int, typer.Option("--box", help="Box edge, voxels.")] = 24,
    voxel_size: SimulationVoxelSize = 13.0,
    defocus: SimulationDefocus = 5.0,
    max_shift: Annotated[
        float, typer.Option("--max-shift", help="Random shift per axis, up to this many voxels.")
    ] = 2.0,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="Imaging of the projection noise model: 'tilt-series' (project, CTF, noise, WBP; "
            "the default) or 'fourier' (3-D CTF x wedge). Not with --noise-model paper.",
            show_default=False,
        ),
    ] = None,
    noise_model: Annotated[
        str,
        typer.Option(
            "--noise-model",
            help="'projection': noise in the projections (or WBP-coloured with --mode fourier), "
            "every subtomogram at exactly --snr. 'paper': the DISCA paper's 3-D protocol "
            "(band-pass, noise scaled by each structure's own signal variance, CTF without "
            "amplitude contrast); --snr is then nominal, see docs/simulation.md.",
        ),
    ] = "projection",
    signal_variance: Annotated[
        str,
        typer.Option(
            "--signal-variance",
            help="Paper noise model: σ²_s from each subtomogram's own rotated, shifted density "
            "('subtomogram') or once per structure from its centred map ('structure').",
        ),
    ] = "subtomogram",
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize/--no-normalize",
            help="Z-score each subtomogram (mean 0, sd 1), or leave it at its simulated scale.",
        ),
    ] = True,
    seed: Seed = 0,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Subtomograms simulated at a time (count).")
    ] = 64,
    device: Device = "auto",
    overwrite: OverwriteDirectory = False,
) -> None:
    """Simulate a particle set: --per-class subtomograms per structure, random poses, truth.

    --noise-model and --normalize are recorded in run.json and on every row of particles.star
    (cmNoiseModel, cmNormalized).
    """
    from cryomine.cli._common import progress
    from cryomine.simulate import write_simulated_subtomograms

    with progress("simulating subtomograms") as callback:
        out = write_simulated_subtomograms(
            output,
            structure,
            overwrite=overwrite,
            progress=callback,
            n_per_class=per_class,
            snr=snr,
            tilt_range_deg=symmetric_tilt_range(tilt_range),
            tilt_step_deg=tilt_step,
            box_size=box,
            voxel_size_a=voxel_size,
            defocus_um=defocus,
            max_shift_px=max_shift,
            mode=mode,
            noise_model=noise_model,
            normalize=normalize,
            signal_variance=signal_variance,
            seed=seed,
            batch_size=batch_size,
            device=device,
        )
    typer.echo(f"wrote {per_class * len(structure)} subtomograms to {out}")


@simulate_app.command("tomogram")
def tomogram(
    structure: Structures,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    shape: Annotated[
        tuple[int, int, int], typer.Option("--shape", help="Tomogram size Z Y X, voxels.")
    ] = (100, 400, 400),
    voxel_size: SimulationVoxelSize = 10.0,
    particles: Annotated[int, typer.Option("--particles", help="Number of particles.")] = 100,
    snr: Annotated[
        float,
        typer.Option("--snr", help="SNR of the tomogram: var(signal) / var(noise), unitless."),
    ] = 0.1,
    tilt_range: TiltRange = 60.0,
    tilt_step: SimulationTiltStep = 3.0,
    defocus: SimulationDefocus = 5.0,
    membranes: Annotated[
        int, typer.Option("--membranes", help="Number of membrane vesicles (40 Å shells).")
    ] = 0,
    gold: Annotated[int, typer.Option("--gold", help="Number of gold beads (100 Å spheres).")] = 0,
    seed: Seed = 0,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Tomogram name written to truth.star (rlnTomoName). The default matches the "
            "written tomogram.mrc, so picks from it (named after the file) can be scored against "
            "the truth.",
        ),
    ] = "tomogram",
    write_clean: Annotated[
        bool, typer.Option("--write-clean", help="Also write the noise-free density clean.mrc.")
    ] = False,
    device: Device = "auto",
    overwrite: OverwriteDirectory = False,
) -> None:
    """Simulate a crowded tomogram (protein dark) with truth.star, labels.mrc and a run record."""
    from cryomine.cli._common import progress
    from cryomine.simulate import write_simulated_tomogram

    with progress("simulating tomogram") as callback:
        out = write_simulated_tomogram(
            output,
            structure,
            overwrite=overwrite,
            write_clean=write_clean,
            progress=callback,
            shape_zyx=shape,
            voxel_size_a=voxel_size,
            n_particles=particles,
            snr=snr,
            tilt_range_deg=symmetric_tilt_range(tilt_range),
            tilt_step_deg=tilt_step,
            defocus_um=defocus,
            n_membranes=membranes,
            n_gold=gold,
            tomo_name=name,
            seed=seed,
            device=device,
        )
    typer.echo(f"wrote tomogram with {particles} particles to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
