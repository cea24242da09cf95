"""``cryomine pipeline``: tomograms in, classes, averages and annotated tomograms out.

The pipeline runs the verbs a user would run, in order, printing each before it runs:
``pick`` and ``extract`` per tomogram, one merged particle set, ``sort`` (DISCA sorts all
tomograms' particles together), ``average``, ``embed`` per tomogram and ``report``. A step whose
output exists is skipped, so an interrupted pipeline continues where it stopped.

Output tree::

    OUT_DIR/picks/<tomo>.star          picks per tomogram
    OUT_DIR/particles/<tomo>/          particle set per tomogram
    OUT_DIR/particles/all/             the merged particle set that is sorted
    OUT_DIR/sort/                      the DISCA run (particles.star with rlnClassNumber)
    OUT_DIR/averages/                  class averages, half maps, FSC
    OUT_DIR/annotation/<tomo>.mrc      re-embedded class averages (+ <tomo>_labels.mrc)
    OUT_DIR/report.html
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import (
    BinFactor,
    Contrast,
    Device,
    DogMinScore,
    HeaderVoxelSize,
    KRange,
    MaxPicks,
    ParticleDiameter,
    TiltRange,
)

__all__ = ["register"]


def pipeline(
    tomograms: Annotated[
        list[Path],
        typer.Argument(
            help="Tomograms (.mrc .rec .st .map, optionally .gz); protein dark by default."
        ),
    ],
    diameter_a: ParticleDiameter,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for every step's outputs.")
    ],
    box_size: Annotated[
        int, typer.Option("--box", help="Subtomogram edge, in (binned) voxels; DISCA needs ≥ 21.")
    ] = 24,
    bin_factor: BinFactor = 1,
    max_picks: MaxPicks = None,
    min_score: DogMinScore = None,
    contrast: Contrast = "dark",
    voxel_size_a: HeaderVoxelSize = None,
    k_range: KRange = (2, 20),
    max_iter: Annotated[int, typer.Option("--max-iter", help="Maximum DISCA EM iterations.")] = 20,
    width: Annotated[
        float,
        typer.Option(
            "--width",
            help="YOPO channel multiplier (0.25: the shipped pretrained network; 1.0 = the "
            "paper's, ~10× slower, starts from random weights).",
        ),
    ] = 0.25,
    tilt_range: TiltRange = 60.0,
    average_iterations: Annotated[
        int, typer.Option("--average-iterations", help="Alignment iterations per class average.")
    ] = 4,
    device: Device = "auto",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (integer) for sorting and averaging.")
    ] = 0,
) -> None:
    """Pick, extract, sort (DISCA), average, place and report over one or many tomograms.

    Steps whose outputs exist are skipped (resume). The particles of all tomograms are sorted
    together, so classes are shared across tomograms.
    """
    from cryomine.cli import app
    from cryomine.errors import InputError
    from cryomine.io import merge_particle_sets, tomogram_name
    from cryomine.sorting._pretrain import shipped_trunks

    names = [tomogram_name(t) for t in tomograms]
    if len(set(names)) != len(names):
        raise InputError(f"tomogram names must differ (rlnTomoName): {', '.join(names)}")
    for tomogram in tomograms:
        if not tomogram.is_file():
            raise InputError(f"{tomogram}: file not found")
    output.mkdir(parents=True, exist_ok=True)

    def run(args: list[str], done: Path) -> None:
        if done.exists():
            typer.echo(f"# already done, skipped: cryomine {shlex.join(args)}")
            return
        typer.echo(f"$ cryomine {shlex.join(args)}")
        status = app(args, standalone_mode=False)
        if status not in (None, 0):
            raise typer.Exit(code=int(status))

    voxel = ["--voxel-size", str(voxel_size_a)] if voxel_size_a is not None else []
    particle_sets = []
    for tomogram, name in zip(tomograms, names, strict=True):
        picks = output / "picks" / f"{name}.star"
        pick_args = [
            "pick",
            str(tomogram),
            "--particle-diameter",
            str(diameter_a),
            "--contrast",
            contrast,
            "-o",
            str(picks),
            *voxel,
        ]
        if max_picks is not None:
            pick_args += ["--max-picks", str(max_picks)]
        if min_score is not None:
            pick_args += ["--min-score", str(min_score)]
        run(pick_args, picks)
        particles = output / "particles" / name
        run(["extract", str(tomogram), str(picks), "--box", str(box_size), "--bin", str(bin_factor),
             "--contrast", contrast, "-o", str(particles), *voxel], particles / "particles.star")  # fmt: skip
        particle_sets.append(particles)

    merged = output / "particles" / "all"
    if not (merged / "particles.star").exists():
        typer.echo(f"# merging {len(particle_sets)} particle set(s) → {merged}")
        merge_particle_sets(particle_sets, merged)
    sort_dir = output / "sort"
    sort_args = ["sort", str(merged), "-o", str(sort_dir), "--k-range", str(k_range[0]), str(k_range[1]),
                 "--max-iter", str(max_iter), "--width", str(width), "--device", device, "--seed", str(seed)]  # fmt: skip
    if float(width) not in shipped_trunks():
        typer.echo(
            f"# width {width:g}: no pretrained network is shipped, DISCA starts from random weights"
        )
        sort_args += ["--pretrained", "none"]
    if sort_dir.exists() and not (sort_dir / "particles.star").exists():
        sort_args.append("--resume")
    run(sort_args, sort_dir / "particles.star")
    averages = output / "averages"
    run(["average", str(sort_dir), "-o", str(averages), "--particles", str(merged), "--tilt-range", str(tilt_range),
         "--iterations", str(average_iterations), "--device", device, "--seed", str(seed)],
        averages / "summary.json")  # fmt: skip
    for tomogram, name in zip(tomograms, names, strict=True):
        annotation = output / "annotation" / f"{name}.mrc"
        run(
            [
                "place",
                str(sort_dir),
                str(averages),
                "--tomogram",
                str(tomogram),
                "-o",
                str(annotation),
            ],
            annotation,
        )
    report_args = [
        "report",
        str(sort_dir),
        "-o",
        str(output / "report.html"),
        "--averages",
        str(averages),
    ]
    first = names[0]
    report_args += ["--tomogram", str(tomograms[0]),
                    "--annotation", str(output / "annotation" / f"{first}_labels.mrc")]  # fmt: skip
    run(report_args, output / "report.html")
    typer.echo(f"Pipeline finished: {output}/ (report: {output / 'report.html'})")


def register(app: typer.Typer) -> None:
    app.command("pipeline")(pipeline)
