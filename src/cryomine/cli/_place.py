"""``cryomine place``: place the class averages back into a tomogram-sized map.

``cryomine embed`` is the former name, kept as a deprecated alias for one release: *embed*
means feature embeddings of the learned picker (`cryomine picker embed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def place(
    run_dir: Annotated[
        Path, typer.Argument(help="Sort run directory the averages were made from.")
    ],
    average_dir: Annotated[
        Path,
        typer.Argument(
            help="Output directory of `cryomine average` (class_NNN.mrc, particles.star)."
        ),
    ],
    tomogram: Annotated[
        Path,
        typer.Option(
            "--tomogram",
            help="Tomogram MRC: maps take its shape and voxel size (Å); its name selects "
            "particles.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Density map to write (MRC, float32, protein bright)."),
    ],
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Label map to write (MRC, int16 class numbers); default OUTPUT_labels.mrc.",
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", help="Label threshold, fraction of each average's maximum (0-1]."
        ),
    ] = 0.5,
) -> None:
    """Place each particle's class average, rotated and shifted, at its position in the tomogram.

    Particles and orientations come from AVERAGE_DIR/particles.star; only rows whose
    rlnTomoName matches the tomogram's name are placed.
    """
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress
    from cryomine.place import place_run

    labels = (
        labels
        if labels is not None
        else output.with_name(f"{output.name.split('.')[0]}_labels.mrc")
    )
    parameters = {
        "run_dir": str(run_dir),
        "average_dir": str(average_dir),
        "tomogram": str(tomogram),
        "labels": str(labels),
        "threshold_fraction": threshold,
    }
    with recording_run(
        output.parent,
        "place",
        parameters,
        inputs=[average_dir, tomogram],
        name=f"{output.name.split('.')[0]}_run.json",
    ) as record:
        with progress("placing") as bar:
            count = place_run(
                run_dir,
                average_dir,
                tomogram=tomogram,
                density_path=output,
                labels_path=labels,
                threshold_fraction=threshold,
                progress=bar,
            )
        record.results["n_placed"] = count
    typer.echo(f"placed {count} particles; wrote {output} and {labels}")


def register(app: typer.Typer) -> None:
    app.command("place")(place)
    app.command("embed", hidden=True, deprecated=True,
                help="Former name of `cryomine place` (deprecated).")(place)  # fmt: skip
