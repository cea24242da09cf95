"""``cryomine evaluate pipeline``: per-structure F1 of sorted picks and FSC of class averages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import MetricsOutput

__all__ = ["register"]


def pipeline(
    truth: Annotated[
        Path,
        typer.Option(
            "--truth", help="truth.star of a simulated tomogram (cmStructure per particle)."
        ),
    ],
    sorted_star: Annotated[
        Path,
        typer.Option("--sorted", help="particles.star of a sort run (picks with rlnClassNumber)."),
    ],
    averages: Annotated[
        Path | None,
        typer.Option(
            "--averages",
            help="Directory from `cryomine average`: FSC of each class average against its "
            "structure's true map.",
        ),
    ] = None,
    radius_a: Annotated[
        float, typer.Option("--radius", help="Hit radius, Å (the DISCA paper uses 80 Å).")
    ] = 80.0,
    output: MetricsOutput = None,
) -> None:
    """Per-structure precision, recall and F1 after sorting (each class mapped to its majority
    structure), and the FSC (0.5) resolution of each class average against the true map."""
    import json

    from cryomine.evaluate import class_average_fsc, evaluate_pipeline
    from cryomine.io import read_particles
    from cryomine.io._atomic import atomic_write_text

    result = evaluate_pipeline(
        read_particles(truth), read_particles(sorted_star), radius_a=radius_a
    )
    typer.echo(f"radius {radius_a:g} Å; classes → structures: "
               + ", ".join(f"{c}→{s}" for c, s in result["class_to_structure"].items()))  # fmt: skip
    for name, row in result["per_structure"].items():
        typer.echo(
            f"  {name:<14} precision {row['precision']:.3f}  recall {row['recall']:.3f}  F1 {row['f1']:.3f}"
        )
    if averages is not None:
        fsc = {}
        for number, structure in result["class_to_structure"].items():
            path = averages / f"class_{int(number):03d}.mrc"
            if path.exists() and structure in result["per_structure"]:
                fsc[number] = {"structure": structure, **class_average_fsc(path, structure)}
                typer.echo(
                    f"  class {number} vs {structure}: FSC 0.5 at {fsc[number]['resolution_a']:.1f} Å"
                )
        result["class_average_fsc"] = fsc
    if output is not None:
        atomic_write_text(output, json.dumps(result, indent=2, default=float) + "\n")
        typer.echo(f"wrote {output}")


def register(evaluate_app: typer.Typer) -> None:
    evaluate_app.command("pipeline")(pipeline)
