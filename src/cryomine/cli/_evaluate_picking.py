"""``cryomine evaluate picking``: precision, recall and F1 of picks against the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import MetricsOutput

__all__ = ["register"]


def picking(
    truth: Annotated[
        Path,
        typer.Option(
            "--truth",
            help="STAR file of the true particles (e.g. a simulated tomogram's truth.star).",
        ),
    ],
    pred: Annotated[
        Path,
        typer.Option(
            "--pred", help="STAR file of the picks (rlnTomoName and coordinates with a pixel size)."
        ),
    ],
    radius_a: Annotated[
        float,
        typer.Option(
            "--radius",
            help="Hit radius, Å (the DISCA paper uses 80 Å; CZII uses half the particle radius).",
        ),
    ] = 80.0,
    beta: Annotated[
        float,
        typer.Option("--beta", help="F-beta weight of recall reported beside F1 (CZII uses 4)."),
    ] = 1.0,
    output: MetricsOutput = None,
) -> None:
    """Precision, recall and F1 overall, and recall per true structure (cmStructure).

    Picks and true particles of the same tomogram are matched one-to-one within --radius,
    closest pairs first.
    """
    import json

    from cryomine.evaluate import evaluate_picking
    from cryomine.io import read_particles
    from cryomine.io._atomic import atomic_write_text

    result = evaluate_picking(
        read_particles(truth), read_particles(pred), radius_a=radius_a, beta=beta
    )
    overall = result["overall"]
    typer.echo(f"radius        {radius_a:g} Å")
    typer.echo(
        f"true / picked {overall['n_true']} / {overall['n_picked']} ({overall['n_hits']} hits)"
    )
    typer.echo(f"precision     {overall['precision']:.4f}")
    typer.echo(f"recall        {overall['recall']:.4f}")
    typer.echo(f"F1            {overall['f1']:.4f}")
    if beta != 1.0:
        typer.echo(f"F{beta:g}           {overall['f_beta']:.4f}")
    for name, row in result["per_class"].items():
        typer.echo(f"  {name:<14} recall {row['recall']:.4f} ({row['n_hits']}/{row['n_true']})")
    if output is not None:
        atomic_write_text(output, json.dumps(result, indent=2) + "\n")
        typer.echo(f"wrote {output}")


def register(evaluate_app: typer.Typer) -> None:
    evaluate_app.command("picking")(picking)
