"""``cryomine baseline``: the sorting baselines DISCA is compared with (template matching,
autoencoder + k-means, the scale-only control), writing the same run-directory layout as
``cryomine sort``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cryomine.cli._common import (
    LOWPASS_HELP,
    Device,
    KRange,
    OverwriteRun,
    ParticleSetArgument,
    ParticleSetTiltRange,
    RunOutput,
    Seed,
    command_group,
    particle_set_tilt_range,
)

__all__ = ["register"]

baseline_app = command_group(
    "Sort a particle set with a baseline method or the scale-only control. RUN_DIR gets particles.star (input rows + "
    "rlnClassNumber, 1-based, + cmScore) and run.json, like `cryomine sort`."
)


def _prepare(output: Path, overwrite: bool) -> None:
    from cryomine.errors import InputError

    if (output / "particles.star").exists() and not overwrite:
        raise InputError(
            f"{output}: already holds a finished run; pass --overwrite or choose another -o"
        )
    output.mkdir(parents=True, exist_ok=True)


def _write_table(output: Path, table: Any, labels: Any, scores: Any, **columns: Any) -> None:
    import numpy as np

    from cryomine.io import write_particles

    out = table.copy()
    out["rlnClassNumber"] = np.asarray(labels, dtype=np.int64) + 1
    out["cmScore"] = np.asarray(scores, dtype=np.float64)
    for name, values in columns.items():
        out[name] = values
    write_particles(output / "particles.star", out)


def _reference_maps(particles_dir: Path, paths: list[Path] | None) -> dict[str, Any]:
    from cryomine.errors import InputError
    from cryomine.io import read_mrc

    if not paths:
        paths = sorted((particles_dir / "references").glob("*_ctf.mrc"))
        if not paths:
            raise InputError(
                f"{particles_dir}: no references/*_ctf.mrc; give the maps with --reference"
            )
    maps: dict[str, Any] = {}
    for path in paths:
        name = Path(path).name.removesuffix(".mrc").removesuffix("_ctf")
        maps[name] = read_mrc(path, mmap=False)[0]
    return maps


@baseline_app.command("template-matching")
def template_matching(
    particles_dir: ParticleSetArgument,
    output: RunOutput,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            "-r",
            help="Reference map (MRC, same box and voxel size, protein bright); repeat for "
            "more. Default: PARTICLES_DIR/references/*_ctf.mrc of a simulated set.",
        ),
    ] = None,
    tilt_range: ParticleSetTiltRange = None,
    angular_step: Annotated[
        float, typer.Option("--angular-step", help="Spacing of the global rotation grid, degrees.")
    ] = 30.0,
    refine_to: Annotated[
        float,
        typer.Option("--refine-to", help="Local refinement down to this rotation step, degrees."),
    ] = 7.5,
    max_shift: Annotated[
        float, typer.Option("--max-shift", help="Largest shift searched, voxels.")
    ] = 3.0,
    max_frequency: Annotated[
        float,
        typer.Option("--max-frequency", help="Upper end of the scoring band, cycles per voxel."),
    ] = 0.5,
    device: Device = "auto",
    overwrite: OverwriteRun = False,
) -> None:
    """Assign each subtomogram to the reference it correlates with best (missing-wedge aware).

    cmScore is the constrained cross-correlation with the assigned reference; RUN_DIR also
    gets scores.npy (N x K) and references.json (class number → reference name).
    """
    import json

    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress
    from cryomine.io import ParticleSet
    from cryomine.io._atomic import atomic_path, atomic_write_text
    from cryomine.sorting.baselines import template_matching_classify

    output = Path(output)
    _prepare(output, overwrite)
    particles = ParticleSet.open(particles_dir)
    tilt_range_deg = particle_set_tilt_range(Path(particles_dir), tilt_range)
    maps = _reference_maps(Path(particles_dir), reference)
    parameters = {
        "particles_dir": str(particles_dir), "references": list(maps),
        "tilt_range_deg": list(tilt_range_deg), "angular_step_deg": angular_step,
        "refine_to_deg": refine_to, "max_shift_px": max_shift, "max_frequency": max_frequency,
        "device": device,
    }  # fmt: skip
    with recording_run(
        output, "baseline template-matching", parameters, inputs=[Path(particles_dir)]
    ) as record:
        with record.timed("match"), progress("template matching") as bar:
            result = template_matching_classify(
                particles, maps, tilt_range_deg=tilt_range_deg, angular_step_deg=angular_step,
                refine_to_deg=refine_to, max_shift_px=max_shift, max_frequency=max_frequency,
                device=device, progress=bar,
            )  # fmt: skip
        with record.timed("write"):
            assigned = [result.reference_names[i] for i in result.labels]
            _write_table(output, particles.table, result.labels, result.best_scores,
                         cmReference=assigned)  # fmt: skip
            with atomic_path(output / "scores.npy") as tmp:
                np.save(tmp, result.scores)
            names = {str(i + 1): name for i, name in enumerate(result.reference_names)}
            atomic_write_text(output / "references.json", json.dumps(names, indent=1) + "\n")
        counts = np.bincount(result.labels, minlength=len(maps))
        record.results.update({
            "n_particles": int(result.labels.size), "n_classes": result.n_classes,
            "class_sizes": counts.tolist(), "n_rotations_scored": result.n_rotations_scored,
            "mean_score": float(result.best_scores.mean()),
        })  # fmt: skip
    pairs = zip(result.reference_names, counts, strict=True)
    sizes = ", ".join(f"{name}: {n}" for name, n in pairs)
    typer.echo(f"{result.labels.size} particles assigned ({sizes})")
    typer.echo(f"wrote {output / 'particles.star'}")


@baseline_app.command("autoencoder")
def autoencoder(
    particles_dir: ParticleSetArgument,
    output: RunOutput,
    k_range: KRange = (2, 20),
    epochs: Annotated[
        int, typer.Option("--epochs", help="Training passes over the data (count).")
    ] = 30,
    code_size: Annotated[int, typer.Option("--code-size", help="Length of the code (count).")] = 32,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Subtomograms per step (count).")
    ] = 32,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", help="Adam step size (unitless).")
    ] = 1e-3,
    l1_weight: Annotated[
        float,
        typer.Option("--l1-weight", help="Weight of the L1 code sparsity penalty (unitless)."),
    ] = 1e-3,
    pca_components: Annotated[
        int,
        typer.Option("--pca-components", help="Code dimensions kept for the mixture fits (count)."),
    ] = 16,
    lowpass: Annotated[
        str, typer.Option("--lowpass", help=LOWPASS_HELP + " The same as sort's.")
    ] = "auto",
    device: Device = "auto",
    seed: Seed = 0,
    overwrite: OverwriteRun = False,
) -> None:
    """Autoencoder codes + k-means, K chosen by Gaussian mixtures + BIC as DISCA chooses it.

    cmScore is the Euclidean distance of the code to its k-means centre (smaller = more
    typical); RUN_DIR also gets codes.npy (N x code size, float32).
    """
    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.cli._common import parse_lowpass, progress
    from cryomine.io import ParticleSet
    from cryomine.io._atomic import atomic_path
    from cryomine.sorting.baselines import autoencoder_cluster

    output = Path(output)
    _prepare(output, overwrite)
    particles = ParticleSet.open(particles_dir)
    parameters = {
        "particles_dir": str(particles_dir), "k_range": list(k_range), "epochs": epochs,
        "code_size": code_size, "batch_size": batch_size, "learning_rate": learning_rate,
        "l1_weight": l1_weight, "pca_components": pca_components, "lowpass": lowpass,
        "device": device,
    }  # fmt: skip
    with recording_run(
        output, "baseline autoencoder", parameters, seed=seed, inputs=[Path(particles_dir)]
    ) as record:
        with record.timed("fit"), progress("autoencoder epochs") as bar:
            result = autoencoder_cluster(
                particles, k_range=k_range, code_size=code_size, epochs=epochs,
                batch_size=batch_size, learning_rate=learning_rate, l1_weight=l1_weight,
                pca_components=pca_components, lowpass_a=parse_lowpass(lowpass), device=device,
                random_state=seed, progress=bar,
            )  # fmt: skip
        with record.timed("write"):
            centres = np.stack([result.codes[result.labels == k].mean(axis=0)
                                for k in range(result.n_classes)])  # fmt: skip
            distance = np.linalg.norm(result.codes - centres[result.labels], axis=1)
            _write_table(output, particles.table, result.labels, distance)
            with atomic_path(output / "codes.npy") as tmp:
                np.save(tmp, result.codes)
        counts = np.bincount(result.labels, minlength=result.n_classes)
        record.results.update({
            "n_particles": int(result.labels.size), "n_classes": result.n_classes,
            "class_sizes": counts.tolist(), "bic": {str(k): v for k, v in result.bic.items()},
            "losses": result.losses,
        })  # fmt: skip
    sizes = ", ".join(f"{k + 1}: {n}" for k, n in enumerate(counts))
    typer.echo(f"{result.n_classes} classes from {result.labels.size} particles ({sizes})")
    typer.echo(f"wrote {output / 'particles.star'}")


@baseline_app.command("scale")
def scale(
    particles_dir: ParticleSetArgument,
    output: RunOutput,
    k_range: KRange = (2, 20),
    seed: Seed = 0,
    overwrite: OverwriteRun = False,
) -> None:
    """Scale-only control: Gaussian mixture + BIC on each subtomogram's log standard deviation.

    Reads the stored (raw) values: on a z-scored set it has nothing to go on; on an
    unnormalized set (simulate --no-normalize) it shows how much the scale alone tells the
    classes. cmScore is the posterior of the assigned class; cmLogStd the feature; RUN_DIR
    also gets log_std.npy (N, float64).
    """
    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.io import ParticleSet
    from cryomine.io._atomic import atomic_path
    from cryomine.sorting.baselines import ScaleMixture

    output = Path(output)
    _prepare(output, overwrite)
    particles = ParticleSet.open(particles_dir)
    parameters = {"particles_dir": str(particles_dir), "k_range": list(k_range)}
    with recording_run(
        output, "baseline scale", parameters, seed=seed, inputs=[Path(particles_dir)]
    ) as record:
        with record.timed("fit"):
            model = ScaleMixture(k_range=k_range, random_state=seed).fit(particles)
        with record.timed("write"):
            posterior = model.probabilities_[np.arange(model.labels_.size), model.labels_]
            _write_table(output, particles.table, model.labels_, posterior,
                         cmLogStd=model.log_std_)  # fmt: skip
            with atomic_path(output / "log_std.npy") as tmp:
                np.save(tmp, model.log_std_)
        counts = np.bincount(model.labels_, minlength=model.n_classes_)
        record.results.update({
            "n_particles": int(model.labels_.size), "n_classes": model.n_classes_,
            "class_sizes": counts.tolist(), "bic": {str(k): v for k, v in model.bic_.items()},
            "mean_log_std": model.means_.tolist(),
        })  # fmt: skip
    sizes = ", ".join(f"{k + 1}: {n}" for k, n in enumerate(counts))
    typer.echo(f"{model.n_classes_} classes from {model.labels_.size} particles ({sizes})")
    typer.echo(f"wrote {output / 'particles.star'}")


def register(app: typer.Typer) -> None:
    app.add_typer(baseline_app, name="baseline")
