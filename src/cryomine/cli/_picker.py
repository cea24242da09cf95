"""``cryomine picker``: train the learned picker and embed tomograms with it (docs/picker.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import Device, HeaderVoxelSize, OverwriteFile, TomogramArgument

__all__ = ["register"]

picker_app = typer.Typer(
    no_args_is_help=True,
    help="The learned picker (TomoTwin-style embeddings): train a model, embed a tomogram.",
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
