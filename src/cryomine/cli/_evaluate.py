"""``cryomine evaluate``: compare results with the truth of simulated data.

A sub-app: ``cryomine evaluate sorting``. Further verbs (e.g. ``picking``) live in their own
modules ``cryomine.cli._evaluate_<verb>`` exposing ``register(evaluate_app)``, listed in
``_EVALUATE_MODULES``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import MetricsOutput, command_group

__all__ = ["evaluate_app", "register"]

#: Extra ``evaluate`` verbs: modules ``cryomine.cli._evaluate_<name>`` with
#: ``register(evaluate_app)``.
_EVALUATE_MODULES: tuple[str, ...] = ("picking", "pipeline")

evaluate_app = command_group(
    "Compare results with the truth of simulated data (metrics as text and JSON)."
)


@evaluate_app.command("sorting")
def sorting(
    truth: Annotated[
        Path,
        typer.Option(
            "--truth",
            help="STAR file with cmParticleId and the true classes "
            "(cmTrueClass, cmStructure or rlnClassNumber).",
        ),
    ],
    pred: Annotated[
        Path, typer.Option("--pred", help="STAR file of a sort (rlnClassNumber, cmParticleId).")
    ],
    output: MetricsOutput = None,
    truth_column: Annotated[
        str | None,
        typer.Option(
            "--truth-column",
            help="Column of the true classes "
            "(default: first of cmTrueClass, cmStructure, rlnClassNumber).",
        ),
    ] = None,
) -> None:
    """Estimated vs true K, homogeneity, completeness, V-measure, ARI, accuracy, confusion matrix.

    Particles are matched by cmParticleId. Accuracy (after one-to-one Hungarian matching of
    classes) is reported only when the estimated K equals the true K.
    """
    import json

    from cryomine.evaluate import evaluate_sorting
    from cryomine.io import read_particles
    from cryomine.io._atomic import atomic_write_text

    result = evaluate_sorting(
        read_particles(truth), read_particles(pred), truth_column=truth_column
    )
    accuracy = "n/a (K differs)" if result.accuracy is None else f"{100 * result.accuracy:.2f} %"
    typer.echo(f"particles     {result.n_particles}")
    typer.echo(f"K true/found  {result.n_true_classes} / {result.n_predicted_classes}")
    typer.echo(f"homogeneity   {result.homogeneity:.4f}")
    typer.echo(f"completeness  {result.completeness:.4f}")
    typer.echo(f"V-measure     {result.v_measure:.4f}")
    typer.echo(f"ARI           {result.adjusted_rand:.4f}")
    typer.echo(f"accuracy      {accuracy}")
    true_names = ", ".join(map(str, result.true_classes))
    predicted_names = ", ".join(map(str, result.predicted_classes))
    typer.echo(f"confusion (rows: true {true_names}; columns: predicted {predicted_names})")
    for row in result.confusion:
        typer.echo("  " + " ".join(f"{v:6d}" for v in row))
    if output is not None:
        atomic_write_text(output, json.dumps(result.to_dict(), indent=2) + "\n")
        typer.echo(f"wrote {output}")


for _name in _EVALUATE_MODULES:
    importlib.import_module(f"cryomine.cli._evaluate_{_name}").register(evaluate_app)


def register(app: typer.Typer) -> None:
    app.add_typer(evaluate_app, name="evaluate")
