"""``cryomine predict``: classify a particle set with the model of a finished ``sort`` run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import Device

__all__ = ["register"]


def predict(
    run_dir: Annotated[
        Path, typer.Argument(help="Run directory of `cryomine sort` (holds model/).")
    ],
    particles_dir: Annotated[Path, typer.Argument(help="Particle set directory to classify.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Directory to write particles.star, features.npy and run.json."
        ),
    ],
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Subtomograms per batch (count).")
    ] = 64,
    device: Device = "auto",
) -> None:
    """Assign each subtomogram to one of the run's classes (no training; DISCA features + mixture).

    Writes OUT_DIR/particles.star (input rows + rlnClassNumber, 1-based,
    + rlnMaxValueProbDistribution), features.npy (N x 1024 float32) and run.json.
    """
    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.errors import InputError
    from cryomine.io import ParticleSet, write_sorted_particles
    from cryomine.io._atomic import atomic_path
    from cryomine.sorting import DISCA

    model_dir = Path(run_dir) / "model"
    if not model_dir.is_dir():
        raise InputError(f"{run_dir}: no model/ directory; expected the output of `cryomine sort`")
    model = DISCA.load(model_dir, device=device)
    model.batch_size = batch_size
    particles = ParticleSet.open(particles_dir)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    parameters = {
        "run_dir": str(run_dir),
        "particles_dir": str(particles_dir),
        "batch_size": batch_size,
        "device": device,
    }
    with recording_run(
        output, "predict", parameters, inputs=[model_dir, Path(particles_dir)]
    ) as record:
        with record.timed("predict"):
            features = model.transform(particles)
            probabilities = model.mixture_.predict_proba(model.pca_.transform(features))
        labels = probabilities.argmax(axis=1)
        with record.timed("write"):
            write_sorted_particles(
                output / "particles.star", particles.table, labels, probabilities
            )
            with atomic_path(output / "features.npy") as tmp:
                np.save(tmp, features)
        counts = np.bincount(labels, minlength=model.n_classes_)
        record.results.update({"n_particles": int(labels.size), "n_classes": model.n_classes_,
                               "class_sizes": counts.tolist()})  # fmt: skip
    sizes = ", ".join(f"{k + 1}: {n}" for k, n in enumerate(counts))
    typer.echo(f"{labels.size} particles into {model.n_classes_} classes ({sizes})")
    typer.echo(f"wrote {output / 'particles.star'}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
