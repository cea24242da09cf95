"""``cryomine pick``: particle picking by difference of Gaussians (default) or by embedding
similarity to an example with the learned picker (``--method embedding``, docs/picker.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cryomine.cli._common import (
    Contrast,
    DogMinScore,
    HeaderVoxelSize,
    MaxPicks,
    OverwriteFile,
    ParticleDiameter,
    TomogramArgument,
)

__all__ = ["register"]


def pick(
    tomogram: TomogramArgument,
    diameter_a: ParticleDiameter,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Picks: .star (RELION 4 columns, px + pixel size), .coords (x y z px) or .json "
            "(copick, Å).",
        ),
    ],
    voxel_size_a: HeaderVoxelSize = None,
    contrast: Contrast = "dark",
    min_distance_a: Annotated[
        float | None,
        typer.Option(
            "--min-distance", help="Minimum distance between picks, Å. Default 0.8 × diameter."
        ),
    ] = None,
    min_score: DogMinScore = None,
    max_picks: MaxPicks = None,
    border_a: Annotated[
        float | None,
        typer.Option(
            "--border",
            help="Exclude picks closer than this to the tomogram faces, Å. Default: the particle "
            "radius.",
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask", help="MRC mask of the tomogram's shape; picks are kept where it is non-zero."
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method", help="'dog' (template-free) or 'embedding' (learned picker + example)."
        ),
    ] = "dog",
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="embedding: an MRC subvolume (.mrc/.map/..., box ≥ the model window, the "
            "tomogram's voxel size and intensity scale) centred on one example particle; or a "
            "built-in structure name (list: `cryomine structures`) or atomic model "
            "(.pdb/.cif/.mmcif), simulated noise-free at the tomogram's voxel size in 32 random "
            "orientations (tilts ±60° in 3° steps, 5 µm underfocus) whose embeddings are "
            "averaged.",
        ),
    ] = None,
    reference_coords: Annotated[
        tuple[float, float, float] | None,
        typer.Option(
            "--reference-coords",
            help="embedding: X Y Z (voxels) of an example particle in the tomogram.",
        ),
    ] = None,
    reference_coords_file: Annotated[
        Path | None,
        typer.Option(
            "--reference-coords-file",
            help="embedding: .coords file (x y z voxels per line) of several example particles.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="embedding: cosine-similarity threshold. Default: automatic, median + 15 MAD of "
            "the map.",
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model", help="embedding: picker model folder. Default: the shipped model."),
    ] = None,
    stride: Annotated[
        int,
        typer.Option(
            "--stride", help="embedding: similarity-map spacing, voxels (1, 2, 4 or 4·k)."
        ),
    ] = 4,
    similarity_output: Annotated[
        Path | None,
        typer.Option(
            "--similarity-map",
            help="embedding: MRC of the similarity map (voxel size × stride). Default: OUTPUT + "
            ".similarity.mrc.",
        ),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="embedding: cpu, cuda[:i] or auto.")
    ] = "auto",
    overwrite: OverwriteFile = False,
) -> None:
    """Pick particles in a tomogram: by difference of Gaussians, or by similarity to an example.

    --method dog (default): local maxima of the DoG response tuned to the diameter, at least
    --min-distance apart; each pick's score is the response in tomogram standard deviations
    (STAR column rlnAutopickFigureOfMerit). The tomogram is memory-mapped and filtered in blocks.

    --method embedding: the learned picker embeds every window of the tomogram; picks are the
    peaks of the cosine similarity to the embedding of the example(s) (--reference and/or
    --reference-coords), at least --min-distance apart, above --threshold or the automatic
    threshold (median + 15·1.4826·MAD of the map). The score is the similarity; the map is written
    as MRC. --reference is read when it is an MRC file and simulated when it is a structure name
    or an atomic model. A JSON run record is written beside the output (OUTPUT.run.json); it
    says which kind of reference was used and how it was simulated.
    """
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import picks_format, progress, write_picks
    from cryomine.errors import InputError
    from cryomine.io import new_particle_table, read_mrc, tomogram_name
    from cryomine.io._atomic import check_writable
    from cryomine.picking import pick_particles

    picks_format(output)
    check_writable(output, overwrite=overwrite)
    if method not in ("dog", "embedding"):
        raise InputError(f"--method {method!r}: expected 'dog' or 'embedding'")
    examples_xyz = [tuple(reference_coords)] if reference_coords else []
    if reference_coords_file is not None:
        from cryomine.io import read_coords

        examples_xyz += [tuple(row[::-1]) for row in read_coords(reference_coords_file).tolist()]
    embedding_only = {
        "--reference": reference,
        "--reference-coords": reference_coords,
        "--reference-coords-file": reference_coords_file,
        "--threshold": threshold,
        "--model": model_dir,
        "--similarity-map": similarity_output,
    }
    if method == "dog":
        given = [name for name, value in embedding_only.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only with --method embedding")
    else:
        if reference is None and not examples_xyz:
            raise InputError(
                "--method embedding needs --reference REF.mrc|STRUCTURE, --reference-coords X Y Z "
                "or --reference-coords-file"
            )
        if min_score is not None or contrast not in ("dark", "bright"):
            raise InputError(
                "--min-score is DoG's; with --method embedding use --threshold"
                if min_score is not None
                else f"contrast {contrast!r}: expected 'dark' or 'bright'"
            )
        if similarity_output is None:
            similarity_output = output.with_name(f"{output.name}.similarity.mrc")
        check_writable(similarity_output, overwrite=overwrite)
    reference_kind = None
    if reference is not None and method == "embedding":
        from cryomine.picker import reference_kind as kind_of

        reference_kind = kind_of(reference, what="--reference")
    parameters = {
        "method": method,
        "reference": reference,
        "reference_kind": reference_kind,
        "reference_simulation": None,  # the simulation settings, for a structure reference
        "reference_coords_xyz": [list(c) for c in examples_xyz],
        "threshold": threshold,
        "model": model_dir,
        "stride": stride,
        "tomogram": tomogram,
        "particle_diameter_a": diameter_a,
        "voxel_size_a": voxel_size_a,
        "contrast": contrast,
        "min_distance_a": min_distance_a,
        "min_score": min_score,
        "max_picks": max_picks,
        "border_a": border_a,
        "mask": mask,
        "output": output,
    }
    with recording_run(
        output.parent, "pick", parameters, inputs=[tomogram], name=f"{output.name}.run.json"
    ) as record:
        volume, voxel = read_mrc(tomogram, voxel_size_a=voxel_size_a, check_finite=False)
        mask_array = None
        if mask is not None:
            mask_array, _ = read_mrc(mask, voxel_size_a=voxel, check_finite=False)
            mask_array = mask_array != 0
        if method == "embedding":
            picks = _pick_by_embedding(
                volume,
                voxel,
                tomogram=tomogram,
                reference=reference,
                reference_kind=reference_kind,
                reference_coords=examples_xyz,
                diameter_a=diameter_a,
                contrast=contrast,
                min_distance_a=min_distance_a,
                threshold=threshold,
                max_picks=max_picks,
                border_a=border_a,
                mask=mask_array,
                model_dir=model_dir,
                stride=stride,
                similarity_output=similarity_output,
                device=device,
                overwrite=overwrite,
                record=record,
            )
        else:
            with record.timed("pick"), progress("picking blocks") as report:
                picks = pick_particles(
                    volume,
                    voxel_size_a=voxel,
                    diameter_a=diameter_a,
                    contrast=contrast,
                    min_distance_a=min_distance_a,
                    min_score=min_score,
                    max_picks=max_picks,
                    border_a=border_a,
                    mask=mask_array,
                    progress=report,
                )
        name = tomogram_name(tomogram)
        table = new_particle_table(
            picks.positions_zyx, tomo_name=name, pixel_size_a=voxel, scores=picks.scores
        )
        write_picks(
            output,
            table,
            picks.positions_zyx,
            object_name="particle",
            run_name=name,
            overwrite=overwrite,
        )
        record.results["n_picks"] = len(picks)
    typer.echo(f"{len(picks)} picks in {tomogram} (voxel {voxel:.4g} Å) → {output}")


def _pick_by_embedding(
    volume: Any,
    voxel: float,
    *,
    tomogram: Path,
    reference: str | None,
    reference_kind: str | None,
    reference_coords: list[tuple[float, ...]],
    diameter_a: float,
    contrast: str,
    min_distance_a: float | None,
    threshold: float | None,
    max_picks: int | None,
    border_a: float | None,
    mask: Any,
    model_dir: Path | None,
    stride: int,
    similarity_output: Path,
    device: str,
    overwrite: bool,
    record: Any,
) -> Any:
    """Reference-based picking with the learned picker; writes the similarity map.

    ``reference_kind`` (from :func:`cryomine.picker.reference_kind`): ``"subvolume"`` reads the
    MRC file and uses its central window; ``"structure"`` simulates example windows at the
    tomogram's voxel size (:func:`cryomine.picker.simulate_reference_windows`) and records the
    settings under ``parameters["reference_simulation"]``.
    """
    import numpy as np

    from cryomine._device import resolve_device
    from cryomine.cli._common import progress
    from cryomine.cli._picker import _warn_voxel_size
    from cryomine.errors import InputError
    from cryomine.io import read_mrc, write_mrc
    from cryomine.picker import (
        cut_windows,
        load_picker,
        normalize_tomogram,
        pick_by_reference,
        simulate_reference_windows,
        tomogram_statistics,
    )

    torch_device = resolve_device(device)
    model = load_picker(model_dir, device=torch_device)
    window = model.config.window
    _warn_voxel_size(voxel, model.config.voxel_size_a)
    statistics = tomogram_statistics(volume)
    normalized = normalize_tomogram(volume, contrast=contrast, statistics=statistics)
    examples = []
    if reference is not None and reference_kind == "structure":
        with record.timed("reference"):
            windows, simulation = simulate_reference_windows(
                reference, window=window, voxel_size_a=voxel, device=device
            )
        examples.append(windows)
        record.parameters["reference_simulation"] = simulation
    elif reference is not None:
        ref, _ = read_mrc(reference, voxel_size_a=voxel)
        if ref.ndim != 3 or min(ref.shape) < window:
            raise InputError(
                f"{reference}: reference of shape {ref.shape}; expected a 3-D box of at least "
                f"{window}³ voxels (the model's window)"
            )
        centre = np.array(ref.shape) // 2
        low = centre - window // 2
        crop = ref[tuple(slice(a, a + window) for a in low)]
        examples.append(normalize_tomogram(crop, contrast=contrast, statistics=statistics)[None])
    if reference_coords:
        xyz = np.asarray(reference_coords, dtype=np.float64).reshape(-1, 3)
        zyx = xyz[:, ::-1]
        outside = ~np.all((zyx >= 0) & (zyx <= np.array(volume.shape) - 1), axis=1)
        if outside.any():
            bad = xyz[np.flatnonzero(outside)[0]]
            raise InputError(
                f"--reference-coords {bad[0]:g} {bad[1]:g} {bad[2]:g}: outside {tomogram} "
                f"(x y z size {volume.shape[2]} {volume.shape[1]} {volume.shape[0]} voxels)"
            )
        examples.append(cut_windows(normalized, zyx, window))
    with record.timed("pick"), progress("embedding tiles") as report:
        picks, similarity = pick_by_reference(
            model,
            normalized,
            np.concatenate(examples),
            voxel_size_a=voxel,
            diameter_a=diameter_a,
            stride=stride,
            threshold=threshold,
            min_distance_a=min_distance_a,
            border_a=border_a,
            mask=mask,
            max_picks=max_picks,
            device=torch_device,
            progress=report,
        )
    write_mrc(similarity_output, similarity, voxel * stride, overwrite=overwrite)
    record.results.update(
        {
            "threshold": picks.threshold,
            "threshold_method": picks.threshold_method,
            "similarity_map": str(similarity_output),
            "n_examples": int(sum(len(e) for e in examples)),
        }
    )
    return picks


def register(app: typer.Typer) -> None:
    app.command("pick")(pick)
