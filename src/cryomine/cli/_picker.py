"""``cryomine picker``: train the learned picker and embed tomograms with it (docs/picker.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from cryomine.cli._common import (
    Contrast,
    Device,
    HeaderVoxelSize,
    OverwriteDirectory,
    OverwriteFile,
    ParticleDiameter,
    Seed,
    TomogramArgument,
    command_group,
)

__all__ = ["register"]

picker_app = command_group(
    "The learned picker (TomoTwin-style embeddings): train a model, embed a tomogram, "
    "cluster its embeddings and locate the clusters."
)

_MAP_SUFFIX = re.compile(r"_\d+(\.\d+)?A$")


def _class_name(name: str) -> str:
    """Structure name without a trailing voxel-size tag (``4v4r_10A`` → ``4v4r``)."""
    return _MAP_SUFFIX.sub("", name)


@picker_app.command("train")
def train(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Model folder to write (or resume).")
    ],
    structures: Annotated[
        list[str],
        typer.Option(
            "--structures",
            help="Training structure: built-in name or map/model path; repeat the option.",
        ),
    ],
    epochs: Annotated[
        int, typer.Option("--epochs", help="Epochs (one freshly simulated pool each).")
    ] = 30,
    steps_per_epoch: Annotated[
        int, typer.Option("--steps-per-epoch", help="Optimizer steps per epoch.")
    ] = 40,
    max_wall_s: Annotated[
        float | None,
        typer.Option(
            "--max-wall-time", help="Stop after the epoch that ends past this many seconds."
        ),
    ] = None,
    window: Annotated[
        int, typer.Option("--window", help="Window edge, voxels (multiple of 4, ≥ 20).")
    ] = 24,
    embedding_dim: Annotated[int, typer.Option("--embedding-dim", help="Embedding length.")] = 32,
    voxel_size_a: Annotated[
        float, typer.Option("--voxel-size", help="Training voxel size, Å.")
    ] = 10.0,
    shape: Annotated[
        tuple[int, int, int], typer.Option("--shape", help="Training tomogram shape z y x, voxels.")
    ] = (64, 160, 160),
    device: Device = "cpu",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the weights and of every simulation.")
    ] = 0,
) -> None:
    """Train a picker model on simulated tomograms of the given structures.

    Each epoch simulates new small crowded tomograms (the structures in random groups, with
    membranes, gold beads, SNR 0.05–0.3, defocus 3–6 µm, tilt range ±45–60°), cuts labelled
    windows (one class per structure plus membrane, gold, background) and takes triplet-loss
    steps with semi-hard mining. OUTPUT gets model.pt (state dict), config.json, history.json and
    run.json; checkpoint.pt is written after every epoch and a rerun on the same OUTPUT resumes.
    """
    import json

    import torch

    from cryomine._device import resolve_device
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress
    from cryomine.errors import InputError
    from cryomine.io._atomic import atomic_write_text
    from cryomine.picker import PickerConfig, TrainingConditions, TrainingOptions, train_picker
    from cryomine.simulate import load_structure_densities

    torch.manual_seed(seed)
    torch_device = resolve_device(device)
    config = PickerConfig(window=window, voxel_size_a=voxel_size_a, embedding_dim=embedding_dim)
    options = TrainingOptions(epochs=epochs, steps_per_epoch=steps_per_epoch, max_wall_s=max_wall_s)
    conditions = TrainingConditions(shape_zyx=shape, voxel_size_a=voxel_size_a)
    parameters = {
        "structures": structures,
        "architecture": config.to_dict(),
        "options": options.__dict__,
        "conditions": conditions.to_dict(),
        "device": str(torch_device),
    }
    with recording_run(
        output, "picker train", parameters, seed=seed, inputs=[Path(s) for s in structures]
    ) as record:
        with record.timed("load structures"):
            loaded = load_structure_densities(structures, voxel_size_a=voxel_size_a, box_size=None)
        densities = {}
        for name, density in loaded.items():
            short = _class_name(name)
            if short in densities:
                raise InputError(f"structure {name!r}: same class name {short!r} as another")
            densities[short] = density
        with record.timed("train"), progress("training steps") as report:
            result = train_picker(
                densities,
                output,
                config=config,
                options=options,
                conditions=conditions,
                seed=seed,
                device=torch_device,
                progress=report,
                extra_config={"structures": list(densities)},
            )
        atomic_write_text(output / "history.json", json.dumps(result.history, indent=2) + "\n")
        record.results.update(
            {
                "class_names": result.class_names,
                "resumed_from_epoch": result.resumed_from_epoch,
                "first": result.history[0],
                "last": result.history[-1],
                "n_parameters": result.model.n_parameters(),
            }
        )
    last = result.history[-1]
    typer.echo(
        f"trained {len(densities)} structures to epoch {last['epoch'] + 1}: validation loss "
        f"{result.history[0]['validation_loss']:.3f} → {last['validation_loss']:.3f}, "
        f"nearest-neighbour accuracy {last['validation_nn_accuracy']:.3f} → {output}"
    )


@picker_app.command("embed")
def embed(
    tomogram: TomogramArgument,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Embeddings to write (.zarr folder).")
    ],
    stride: Annotated[
        int, typer.Option("--stride", help="Output spacing, voxels: 1, 2, 4 or 4·k.")
    ] = 4,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model", help="Model folder (config.json + model.pt). Default: the shipped model."
        ),
    ] = None,
    voxel_size_a: HeaderVoxelSize = None,
    contrast: Annotated[
        str, typer.Option("--contrast", help="Protein 'dark' or 'bright'.")
    ] = "dark",
    tile_size: Annotated[
        int,
        typer.Option("--tile", help="Network outputs per tile edge (memory ∝ (4·tile + window)³)."),
    ] = 32,
    device: Device = "auto",
    overwrite: OverwriteFile = False,
) -> None:
    """Embed every window of a tomogram with the picker network (tiled, fully convolutional).

    Writes a zarr array (z, y, x, D) float32 of unit-norm embeddings; entry [i, j, k] is the
    window centred on voxel (i, j, k)·stride. Attributes: voxel_size_a, stride, window, model,
    axes. A JSON run record is written beside it (OUTPUT.run.json).
    """
    import zarr

    from cryomine._device import resolve_device
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress
    from cryomine.io import read_mrc
    from cryomine.io._atomic import atomic_directory
    from cryomine.picker import embed_tomogram, load_picker, normalize_tomogram

    torch_device = resolve_device(device)
    model = load_picker(model_dir, device=torch_device)
    parameters = {
        "tomogram": tomogram,
        "stride": stride,
        "model": str(model_dir or "shipped"),
        "contrast": contrast,
        "tile": tile_size,
        "device": str(torch_device),
    }
    with recording_run(
        output.parent, "picker embed", parameters, inputs=[tomogram], name=f"{output.name}.run.json"
    ) as record:
        volume, voxel = read_mrc(tomogram, voxel_size_a=voxel_size_a, check_finite=False)
        _warn_voxel_size(voxel, model.config.voxel_size_a)
        with record.timed("embed"), progress("embedding tiles") as report:
            embeddings = embed_tomogram(
                model,
                normalize_tomogram(volume, contrast=contrast),
                stride=stride,
                tile_size=tile_size,
                device=torch_device,
                progress=report,
            )
        with atomic_directory(output, overwrite=overwrite) as tmp:
            array = zarr.create_array(
                str(tmp),
                shape=embeddings.shape,
                chunks=(*[min(32, n) for n in embeddings.shape[:3]], embeddings.shape[3]),
                dtype="float32",
            )
            array[...] = embeddings
            array.attrs.update(
                {
                    "axes": ["z", "y", "x", "embedding"],
                    "voxel_size_a": float(voxel),
                    "stride": int(stride),
                    "window": model.config.window,
                    "model": str(model_dir or "shipped"),
                    "tomogram": str(tomogram),
                    "tomogram_shape_zyx": list(volume.shape),
                }
            )
        record.results["shape"] = list(embeddings.shape)
    typer.echo(
        f"embedded {tomogram} {volume.shape} at stride {stride} → {output} {embeddings.shape}"
    )


EmbeddingsArgument = Annotated[
    Path, typer.Argument(help="Embeddings (.zarr folder) written by `cryomine picker embed`.")
]

#: Windows averaged per cluster for the figure of ``picker cluster`` (the most similar to the
#: medoid).
_WINDOWS_AVERAGED = 50


def _open_embeddings(path: Path) -> tuple[Any, dict[str, Any]]:
    """The zarr array of ``picker embed`` and its attributes, checked."""
    import zarr

    from cryomine.errors import InputError

    try:
        array = zarr.open_array(str(path), mode="r")
    except Exception as error:  # zarr raises several types for "not an array here"
        raise InputError(
            f"{path}: not a zarr array ({error}); expected the output of `cryomine picker embed`"
        ) from error
    attrs = dict(array.attrs)
    missing = [
        k for k in ("voxel_size_a", "stride", "window", "tomogram_shape_zyx") if k not in attrs
    ]
    if array.ndim != 4 or missing:
        raise InputError(
            f"{path}: array of shape {array.shape} with attributes {sorted(attrs)}; expected "
            f"(z, y, x, D) from `cryomine picker embed` (missing {', '.join(missing) or 'none'})"
        )
    return array, attrs


@picker_app.command("cluster")
def cluster(
    embeddings_path: EmbeddingsArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write.")],
    tomogram: Annotated[
        Path | None,
        typer.Option(
            "--tomogram",
            help="Tomogram the embeddings came from, for the cluster averages in the figure. "
            "Default: the one named in the embeddings' attributes.",
        ),
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(
            "--candidates",
            help="Picks (.star, .coords or copick .json; e.g. from `cryomine pick`): cluster "
            "the embeddings at these positions instead of a random sample.",
        ),
    ] = None,
    diameter_a: Annotated[
        float | None,
        typer.Option(
            "--particle-diameter",
            help="Pick candidates in the tomogram by DoG at this diameter (Å; `cryomine pick`'s "
            "defaults) and cluster the embeddings there instead of a random sample.",
        ),
    ] = None,
    sample: Annotated[
        int,
        typer.Option(
            "--sample", help="Embeddings sampled at random (or of the candidates) at most (count)."
        ),
    ] = 20000,
    min_cluster_size: Annotated[
        int, typer.Option("--min-cluster-size", help="HDBSCAN's smallest cluster (sampled cells).")
    ] = 50,
    neighbors: Annotated[int, typer.Option("--neighbors", help="UMAP's neighbourhood size.")] = 15,
    selection: Annotated[
        str,
        typer.Option(
            "--selection", help="HDBSCAN cluster selection: 'leaf' (finest) or 'eom' (coarsest)."
        ),
    ] = "leaf",
    contrast: Contrast = "dark",
    seed: Seed = 0,
    overwrite: OverwriteDirectory = False,
) -> None:
    """Find the kinds of object in a tomogram from its embeddings alone (no reference).

    A random sample of the embedding's cells (whole windows inside the tomogram), or the cells of
    candidate particles (--candidates, or DoG picks with --particle-diameter; on simulated
    tomograms these cluster far better, docs/picker.md), is mapped to 2-D by UMAP (cosine) and
    clustered by HDBSCAN; each cluster's medoid embedding becomes a target. OUTPUT gets targets.npy (k, D), clusters.json (size, medoid position per cluster),
    sample.npz (sampled cells z y x, UMAP coordinates, labels; -1 = no cluster), clusters.png
    (the map and each cluster's average window) and run.json. Pick the targets with
    `cryomine picker locate`.
    """
    import json

    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.errors import InputError
    from cryomine.io import read_mrc
    from cryomine.io._atomic import atomic_directory, check_writable
    from cryomine.picker import (
        cells_at,
        cluster_embeddings,
        cut_windows,
        inner_cells,
        normalize_tomogram,
    )
    from cryomine.report._figures import clusters_figure

    check_writable(output, overwrite=overwrite)
    array, attrs = _open_embeddings(embeddings_path)
    stride, window = int(attrs["stride"]), int(attrs["window"])
    tomogram_shape = tuple(int(n) for n in attrs["tomogram_shape_zyx"])
    tomogram = tomogram or (Path(attrs["tomogram"]) if attrs.get("tomogram") else None)
    if tomogram is None or not tomogram.exists():
        raise InputError(
            f"tomogram {tomogram}: not found; give --tomogram (the tomogram {embeddings_path} "
            "was embedded from), for the cluster averages"
        )
    if sample < 2:
        raise InputError(f"--sample {sample}: expected at least 2 cells")
    if candidates is not None and diameter_a is not None:
        raise InputError("--candidates and --particle-diameter: give one (the candidates' source)")
    parameters = {
        "embeddings": embeddings_path,
        "tomogram": tomogram,
        "candidates": candidates,
        "particle_diameter_a": diameter_a,
        "sample": sample,
        "selection": selection,
        "min_cluster_size": min_cluster_size,
        "neighbors": neighbors,
        "contrast": contrast,
        "umap": {"n_components": 2, "metric": "cosine", "min_dist": 0.0},
        "windows_averaged": _WINDOWS_AVERAGED,
    }
    with recording_run(
        output, "picker cluster", parameters, seed=seed, inputs=[embeddings_path, tomogram]
    ) as record:
        volume, _ = read_mrc(
            tomogram, voxel_size_a=float(attrs["voxel_size_a"]), check_finite=False
        )
        if tuple(volume.shape) != tomogram_shape:
            raise InputError(
                f"{tomogram}: shape {volume.shape}; {embeddings_path} was embedded from a "
                f"tomogram of shape {tomogram_shape}"
            )
        cells = inner_cells(
            array.shape[:3], stride=stride, window=window, tomogram_shape=tomogram_shape
        )
        if candidates is not None or diameter_a is not None:
            with record.timed("candidates"):
                positions = _candidate_positions(
                    candidates, volume, attrs, diameter_a=diameter_a, contrast=contrast
                )
            cells = cells_at(positions, cells, stride=stride)
            if len(cells) == 0:
                raise InputError(
                    f"{candidates or 'DoG picks'}: none of its {len(positions)} positions has a "
                    "whole window inside the tomogram"
                )
            record.results["n_candidates"] = len(positions)
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(cells), size=min(sample, len(cells)), replace=False))
        cells = cells[chosen]
        with record.timed("read"):
            embeddings = np.asarray(array[...], dtype=np.float32)[tuple(cells.T)]
        with record.timed("cluster"):
            clusters = cluster_embeddings(
                embeddings,
                min_cluster_size=min_cluster_size,
                n_neighbors=neighbors,
                selection=selection,
                seed=seed,
            )
        normalized = normalize_tomogram(volume, contrast=contrast)
        averages, entries = [], []
        for c in range(clusters.n_clusters):
            members = np.flatnonzero(clusters.labels == c)
            target = clusters.targets[c]
            similarity = embeddings[members] @ target
            closest = members[np.argsort(-similarity, kind="stable")[:_WINDOWS_AVERAGED]]
            averages.append(cut_windows(normalized, cells[closest] * stride, window).mean(axis=0))
            medoid_zyx = cells[clusters.medoids[c]] * stride
            entries.append(
                {
                    "cluster": c,
                    "size": int(clusters.sizes[c]),
                    "fraction_of_sample": float(clusters.sizes[c] / len(cells)),
                    "medoid_xyz_voxels": [int(v) for v in medoid_zyx[::-1]],
                    "mean_similarity_to_medoid": float(similarity.mean()),
                }
            )
        summary = {
            "n_sampled": len(cells),
            "n_clusters": clusters.n_clusters,
            "fraction_in_no_cluster": float(np.mean(clusters.labels < 0)),
            "clusters": entries,
        }
        with atomic_directory(output, overwrite=overwrite) as tmp:
            np.save(tmp / "targets.npy", clusters.targets)
            np.savez_compressed(
                tmp / "sample.npz",
                cells_zyx=cells,
                coordinates=clusters.coordinates,
                labels=clusters.labels,
            )
            (tmp / "clusters.json").write_text(json.dumps(summary, indent=2) + "\n")
            figure = clusters_figure(
                clusters.coordinates,
                clusters.labels,
                np.stack(averages) if averages else np.zeros((0, window, window, window)),
            )
            (tmp / "clusters.png").write_bytes(figure)
        record.results.update({k: v for k, v in summary.items() if k != "clusters"})
        record.results["sizes"] = clusters.sizes.tolist()
    typer.echo(
        f"{clusters.n_clusters} clusters in {len(cells)} sampled embeddings "
        f"({100 * summary['fraction_in_no_cluster']:.0f} % in none) → {output}/targets.npy"
    )


def _candidate_positions(
    candidates: Path | None,
    volume: Any,
    attrs: dict[str, Any],
    *,
    diameter_a: float | None,
    contrast: str,
) -> Any:
    """Candidate centres (n, 3), voxels z y x: read from a picks file, or DoG picks of ``volume``."""
    from cryomine.cli._common import read_picks
    from cryomine.io import positions_zyx, tomogram_name
    from cryomine.picking import pick_particles

    voxel = float(attrs["voxel_size_a"])
    if candidates is None:
        assert diameter_a is not None  # the caller gives one of the two
        return pick_particles(
            volume, voxel_size_a=voxel, diameter_a=float(diameter_a), contrast=contrast
        ).positions_zyx
    name = tomogram_name(Path(attrs.get("tomogram") or candidates.stem))
    table = read_picks(candidates, tomo_name=name, tomogram_shape=volume.shape, voxel_size_a=voxel)
    return positions_zyx(table)


@picker_app.command("locate")
def locate(
    embeddings_path: EmbeddingsArgument,
    targets_path: Annotated[
        Path, typer.Option("--targets", help="Targets (.npy, k × D), e.g. from `picker cluster`.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder of picks to write.")],
    diameter_a: ParticleDiameter,
    select: Annotated[
        str | None,
        typer.Option("--select", help="Comma-separated target numbers to pick (default all)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Cosine similarity threshold for every target. Default: per target, median + "
            "15·1.4826·MAD of its similarity map.",
        ),
    ] = None,
    exclusive: Annotated[
        bool,
        typer.Option(
            "--exclusive/--overlapping",
            help="Keep a pick only for the most similar target (default), or for every target "
            "it passes.",
        ),
    ] = True,
    picks_suffix: Annotated[
        str,
        typer.Option(
            "--format", help="Pick files: star (RELION 4), coords (x y z) or json (copick)."
        ),
    ] = "star",
    overwrite: OverwriteDirectory = False,
) -> None:
    """Pick every target of a dense embedding (the clustering workflow's second step).

    For each target: the cosine-similarity map, its peaks at least 0.8 × the diameter apart and
    half the diameter from the faces, above --threshold or the map's automatic threshold. OUTPUT
    gets target_<t>.<format> per target (score = similarity) and run.json (picks and threshold
    per target).
    """
    import numpy as np

    from cryomine._runrecord import recording_run
    from cryomine.cli._common import write_picks
    from cryomine.errors import InputError
    from cryomine.io import new_particle_table, tomogram_name
    from cryomine.io._atomic import atomic_directory, check_writable
    from cryomine.picker import locate_targets

    if picks_suffix not in ("star", "coords", "json"):
        raise InputError(f"--format {picks_suffix!r}: expected star, coords or json")
    check_writable(output, overwrite=overwrite)
    array, attrs = _open_embeddings(embeddings_path)
    try:
        targets = np.load(targets_path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"{targets_path}: not a .npy array of targets ({error})") from error
    if targets.ndim != 2:
        raise InputError(f"{targets_path}: shape {targets.shape}; expected (k, D)")
    numbers = list(range(len(targets)))
    if select is not None:
        try:
            numbers = sorted({int(v) for v in select.split(",") if v.strip()})
        except ValueError as error:
            raise InputError(f"--select {select!r}: expected numbers such as 0,2") from error
        bad = [t for t in numbers if not 0 <= t < len(targets)]
        if bad or not numbers:
            raise InputError(
                f"--select {select!r}: {targets_path} holds targets 0..{len(targets) - 1}"
            )
    voxel, stride = float(attrs["voxel_size_a"]), int(attrs["stride"])
    tomogram_shape = tuple(int(n) for n in attrs["tomogram_shape_zyx"])
    run_name = tomogram_name(Path(attrs.get("tomogram") or embeddings_path.stem))
    parameters = {
        "embeddings": embeddings_path,
        "targets": targets_path,
        "selected": numbers,
        "particle_diameter_a": diameter_a,
        "threshold": threshold,
        "exclusive": exclusive,
        "format": picks_suffix,
    }
    with recording_run(
        output, "picker locate", parameters, inputs=[embeddings_path, targets_path]
    ) as record:
        with record.timed("locate"):
            found = locate_targets(
                np.asarray(array[...], dtype=np.float32),
                targets[numbers],
                stride=stride,
                voxel_size_a=voxel,
                diameter_a=diameter_a,
                tomogram_shape=tomogram_shape,
                threshold=threshold,
                exclusive=exclusive,
            )
        per_target = []
        with atomic_directory(output, overwrite=overwrite) as tmp:
            for number, picks in zip(numbers, found, strict=True):
                table = new_particle_table(
                    picks.positions_zyx, tomo_name=run_name, pixel_size_a=voxel, scores=picks.scores
                )
                write_picks(
                    tmp / f"target_{number}.{picks_suffix}",
                    table,
                    picks.positions_zyx,
                    object_name=f"target_{number}",
                    run_name=run_name,
                    overwrite=True,
                )
                per_target.append(
                    {
                        "target": number,
                        "n_picks": len(picks),
                        "threshold": picks.threshold,
                        "threshold_method": picks.threshold_method,
                    }
                )
        record.results["targets"] = per_target
    counts = ", ".join(f"{e['target']}: {e['n_picks']}" for e in per_target)
    typer.echo(f"picks per target ({counts}) → {output}")


def _warn_voxel_size(voxel_a: float, model_voxel_a: float) -> None:
    import logging

    if abs(voxel_a - model_voxel_a) > 0.05 * model_voxel_a:
        logging.getLogger(__name__).warning(
            "tomogram voxel size %.3g Å differs from the model's %.3g Å; bin the tomogram to it",
            voxel_a,
            model_voxel_a,
        )


def register(app: typer.Typer) -> None:
    app.add_typer(picker_app, name="picker")
