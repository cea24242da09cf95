"""``cryomine sort``: sort a particle set into structurally homogeneous classes.

``--method disca`` (default) runs DISCA; ``mpp`` runs multi-pattern pursuit from the data
alone; ``disca-mpp`` runs DISCA into ``RUN_DIR/disca`` and refines its classes by MPP
(``cryomine refine``) into ``RUN_DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import (
    LOWPASS_HELP,
    Device,
    KRange,
    OverwriteOutputs,
    ParticleSetArgument,
    Resume,
    RunOutput,
    Seed,
)

__all__ = ["register"]


def sort(
    particles_dir: ParticleSetArgument,
    output: RunOutput,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="disca (features + Gaussian mixtures), mpp (multi-pattern pursuit: alignment to "
            "class averages, K found, docs/mpp.md) or disca-mpp (DISCA, then MPP from its "
            "classes).",
        ),
    ] = "disca",
    k_range: KRange = (2, 20),
    max_iter: Annotated[
        int | None,
        typer.Option(
            "--max-iter",
            help="Most iterations (count): DISCA EM iterations (default 20), MPP iterations "
            "(default 100); disca-mpp: both.",
        ),
    ] = None,
    width: Annotated[
        float | None,
        typer.Option(
            "--width",
            help="YOPO channel multiplier (dimensionless; 1.0 = 64…208 channels, 0.25 is ~10x "
            "faster). Default: the preset's (cryomine: 0.25; paper: 1.0).",
        ),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            "--pretrained",
            help="Starting weights of the network: builtin (the trunk shipped with cryomine, "
            "pretrained on simulated structures; width 0.25), none (random, as the paper) or a "
            "directory written by benchmarks/pretrain_yopo.py. Default: the preset's "
            "(cryomine: builtin; paper: none).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Subtomograms per batch (count). Default: the preset's."),
    ] = None,
    pca_components: Annotated[
        int,
        typer.Option(
            "--pca-components",
            help="Feature dimensions kept for the mixture fits (count; fewer for small sets).",
        ),
    ] = 16,
    lowpass: Annotated[
        str | None,
        typer.Option(
            "--lowpass", help=LOWPASS_HELP + " Default: the preset's (cryomine: auto; paper: none)."
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help="cryomine (the measured defaults of docs/disca.md) or paper (the DISCA "
            "specification exactly: no input filter, full covariances, no smallest-class rule, "
            "lr 1e-5, batch 64); explicit options apply on top.",
        ),
    ] = "cryomine",
    covariance: Annotated[
        str | None,
        typer.Option(
            "--covariance",
            help="Mixture covariance models tried, comma-separated from full, diag, tied, "
            "spherical, ppcaQ (a mixture of PPCA with Q factors per class) and ppca (every Q, "
            "spherical to full); chosen together with K by BIC. Default: the preset's.",
        ),
    ] = None,
    n_init: Annotated[
        int | None,
        typer.Option(
            "--n-init", help="Fresh mixture starts per K and covariance model (count; preset's)."
        ),
    ] = None,
    split_classes: Annotated[
        bool | None,
        typer.Option(
            "--split-classes/--no-split-classes",
            help="After BIC's choice, split a class that ICL finds to be two displaced copies "
            "of one Gaussian (two similar structures). Default: the preset's (cryomine: on; "
            "paper: off).",
        ),
    ] = None,
    feature_transform: Annotated[
        str | None,
        typer.Option(
            "--feature-transform",
            help="Applied to every feature value before the PCA: none or signed-sqrt. "
            "Default: the preset's (none).",
        ),
    ] = None,
    min_class_size: Annotated[
        int | None,
        typer.Option(
            "--min-class-size",
            help="Smallest mixture component allowed (subtomograms). Default: the preset's "
            "(cryomine: PCA dimensions + 1; paper: 1, no rule).",
        ),
    ] = None,
    min_cluster_size: Annotated[
        int | None,
        typer.Option("--min-cluster-size", hidden=True, help="Former name of --min-class-size."),
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option(
            "--learning-rate", help="NAdam learning rate at iteration 0 (default: the preset's)."
        ),
    ] = None,
    min_steps: Annotated[
        int | None,
        typer.Option(
            "--min-steps",
            help="Least optimizer steps per EM iteration (count); epochs repeat to reach it.",
        ),
    ] = None,
    min_iter: Annotated[
        int | None,
        typer.Option(
            "--min-iter", help="EM iterations before it may stop (count; default: the preset's)."
        ),
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(
            "--tol",
            help="Stop when fewer than this fraction of labels change with K unchanged "
            "(default 0.001).",
        ),
    ] = None,
    no_zscore: Annotated[
        bool,
        typer.Option(
            "--no-zscore", help="Do not z-score each subtomogram (as the reference code)."
        ),
    ] = False,
    stages: Annotated[
        int,
        typer.Option(
            "--stages",
            help="Most sorting stages (count; any method): after each, the classes that pass a "
            "split test are set aside and the rest is sorted again (docs/stages.md); each stage's "
            "run is in RUN_DIR/stage-S.",
        ),
    ] = 1,
    device: Device = "auto",
    seed: Seed = 0,
    resume: Resume = False,
    overwrite: OverwriteOutputs = False,
) -> None:
    """Sort subtomograms; write RUN_DIR/particles.star with rlnClassNumber (1-based).

    With --method disca, RUN_DIR gets particles.star (input rows + rlnClassNumber + rlnMaxValueProbDistribution),
    features.npy (N x 1024 float32, row order of the particle set), model/ (for predict),
    history.json (one entry per EM iteration), checkpoints/ (for --resume) and run.json.
    With mpp and disca-mpp, particles.star also has each particle's orientation and half,
    classes/ the class half maps and FSC (see cryomine refine --help); the DISCA options
    apply to disca-mpp's first stage, written to RUN_DIR/disca.
    """
    import numpy as np

    from cryomine.cli._common import parse_lowpass
    from cryomine.cli._refine import run_mpp
    from cryomine.errors import InputError
    from cryomine.io import COLUMNS, ParticleSet, read_particles

    if method not in ("disca", "mpp", "disca-mpp"):
        raise InputError(f"--method {method!r}: expected disca, mpp or disca-mpp")
    if stages < 1:
        raise InputError(f"--stages {stages}: expected a positive number of stages")
    output = Path(output)
    if (output / "particles.star").exists() and not (resume or overwrite):
        raise InputError(
            f"{output}: already holds a finished sort; "
            "pass --resume or --overwrite, or choose another -o"
        )
    particles = ParticleSet.open(particles_dir)
    mpp_options = {} if max_iter is None else {"max_iter": max_iter}
    overrides: dict[str, object] = {} if lowpass is None else {"lowpass_a": parse_lowpass(lowpass)}
    if covariance is not None:
        overrides["covariance_types"] = tuple(c.strip() for c in covariance.split(",") if c.strip())
    if min_cluster_size is not None:
        typer.echo("--min-cluster-size is deprecated; use --min-class-size", err=True)
        if min_class_size is not None and min_class_size != min_cluster_size:
            raise InputError(
                f"--min-class-size {min_class_size} and --min-cluster-size {min_cluster_size}: "
                "pass only --min-class-size"
            )
        min_class_size = min_cluster_size
    steering = {
        "n_init": n_init, "split_classes": split_classes, "min_class_size": min_class_size,
        "feature_transform": feature_transform,
        "learning_rate": learning_rate,
        "min_steps": min_steps, "min_iter": min_iter, "tol": tol, "batch_size": batch_size,
    }  # fmt: skip
    overrides.update({name: value for name, value in steering.items() if value is not None})
    if width is not None:
        overrides["width"] = width
    if pretrained is not None:
        overrides["pretrained"] = None if pretrained.lower() == "none" else pretrained

    def sort_once(part: ParticleSet, run_dir: Path) -> np.ndarray:
        """Sort ``part`` by ``method`` into the run directory ``run_dir``; its 0-based labels."""
        parameters = {"method": method, "particles_dir": str(particles_dir)}
        if method == "mpp":
            run_mpp(part, run_dir, init_labels=None, device=device, seed=seed, resume=resume,
                    overwrite=overwrite, parameters=parameters, **mpp_options)  # fmt: skip
            return read_particles(run_dir / "particles.star")[COLUMNS.class_number].to_numpy() - 1
        disca_dir = run_dir / "disca" if method == "disca-mpp" else run_dir
        labels = _sort_disca(
            part, disca_dir, Path(particles_dir), preset=preset, overrides=overrides,
            k_range=k_range, max_iter=20 if max_iter is None else max_iter,
            pca_components=pca_components, zscore=not no_zscore, device=device, seed=seed,
            resume=resume,
        )  # fmt: skip
        if method == "disca-mpp":
            run_mpp(part, run_dir, init_labels=labels, device=device, seed=seed, resume=resume,
                    overwrite=overwrite, parameters={**parameters, "disca_run": str(disca_dir)})  # fmt: skip
            return read_particles(run_dir / "particles.star")[COLUMNS.class_number].to_numpy() - 1
        return np.asarray(labels)

    if stages == 1:
        sort_once(particles, output)
        return
    from cryomine.cli._sort_stages import sort_in_stages_to

    sort_in_stages_to(
        particles, output, sort_once, stages=stages,
        parameters={"method": method, "preset": preset, "stages": stages,
                    "particles_dir": str(particles_dir)},
        device=device, seed=seed, inputs=[Path(particles_dir)],
    )  # fmt: skip


def _sort_disca(
    particles: object,
    output: Path,
    particles_dir: Path,
    *,
    preset: str,
    overrides: dict[str, object],
    k_range: tuple[int, int],
    max_iter: int,
    pca_components: int,
    zscore: bool,
    device: str,
    seed: int,
    resume: bool,
) -> object:
    """Run DISCA on ``particles`` and write its run directory ``output``; return the labels."""
    import json

    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress
    from cryomine.io import write_sorted_particles
    from cryomine.io._atomic import atomic_path, atomic_write_text
    from cryomine.sorting import DISCA

    model = DISCA.from_preset(
        preset, k_range=k_range, max_iter=max_iter, pca_components=pca_components,
        device=device, random_state=seed, zscore=zscore, **overrides,
    )  # fmt: skip
    parameters = {
        **model.json_params(), "preset": preset, "particles_dir": str(particles_dir),
        "resume": resume,
    }  # fmt: skip
    output.mkdir(parents=True, exist_ok=True)

    def report(entry: dict) -> None:
        change = entry["label_change"]
        change_text = "-" if change is None else f"{100 * change:.2f} %"
        timings = entry["timings_s"]
        seconds = sum(timings.values())
        typer.echo(
            f"iteration {entry['iteration'] + 1}/{max_iter}: K={entry['n_classes']} "
            f"DDBI={entry['ddbi']:.4f} labels changed {change_text} ({seconds:.0f} s)",
            err=True,
        )

    with recording_run(
        output, "sort", parameters, seed=seed, inputs=[Path(particles_dir)]
    ) as record:
        with record.timed("fit"), progress("training") as bar:
            model.fit(particles, checkpoint_dir=output / "checkpoints", resume=resume,
                      callback=report, progress=bar)  # fmt: skip
        with record.timed("write"):
            write_sorted_particles(output / "particles.star", particles.table, model.labels_,
                                   model.probabilities_)  # fmt: skip
            with atomic_path(output / "features.npy") as tmp:
                np.save(tmp, model.features_)
            model.save(output / "model", overwrite=True)
            atomic_write_text(output / "history.json", json.dumps(model.history_, indent=1) + "\n")
        counts = np.bincount(model.labels_, minlength=model.n_classes_)
        record.results.update({
            "n_particles": int(model.labels_.size), "n_classes": model.n_classes_,
            "class_sizes": counts.tolist(), "ddbi": model.ddbi_,
            "best_iteration": model.best_iteration_,
            "n_iter": model.n_iter_, "converged": model.converged_, "device": model.device_,
        })  # fmt: skip
    sizes = ", ".join(f"{k + 1}: {n}" for k, n in enumerate(counts))
    typer.echo(f"{model.n_classes_} classes from {model.labels_.size} particles ({sizes}); "
               f"DDBI {model.ddbi_:.4f} at iteration {model.best_iteration_ + 1}")  # fmt: skip
    typer.echo(f"wrote {output / 'particles.star'}")
    return model.labels_


def register(app: typer.Typer) -> None:
    app.command("sort")(sort)
