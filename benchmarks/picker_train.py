"""Train the picker model that ships with cryomine (src/cryomine/data/picker/).

Training structures: every map in MAPS_DIR (the shared ``structures/maps`` folder, 10 Å maps)
except the six unseen proteins of BENCHMARKS.md §6, which are never trained or tuned on. The run
goes through the ``cryomine picker train`` command; its output folder is then copied (model.pt,
config.json, history.json, run.json — no checkpoint) into the package data folder by ``--ship``.

    OMP_NUM_THREADS=1 python benchmarks/picker_train.py /work/shared/data/structures/maps \
        -o runs/picker_shipped --epochs 34 --steps-per-epoch 40 --max-wall-time 2040 --ship

``--ship-only`` ships (and writes MODEL_CARD.md for) a folder trained earlier.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

#: BENCHMARKS.md §6: unseen proteins, never used for training or tuning.
UNSEEN = ("6drv", "2uv8", "7n4y", "6utj", "1fa2", "5mrc")
SHIPPED = Path(__file__).resolve().parents[1] / "src" / "cryomine" / "data" / "picker"
SHIPPED_FILES = ("model.pt", "config.json", "history.json", "run.json")


def training_maps(maps_dir: Path) -> list[Path]:
    """Every ``*.mrc.gz`` map in ``maps_dir`` whose PDB code is not one of :data:`UNSEEN`."""
    maps = sorted(maps_dir.glob("*.mrc.gz"))
    kept = [p for p in maps if p.name.split("_")[0].lower() not in UNSEEN]
    if len(kept) == len(maps) or not kept:
        raise SystemExit(f"{maps_dir}: expected the shared maps folder with the six unseen maps")
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps_dir", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=34)
    parser.add_argument("--steps-per-epoch", type=int, default=40)
    parser.add_argument("--max-wall-time", type=float, default=2040.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ship", action="store_true", help="copy the model into the package")
    parser.add_argument(
        "--ship-only", action="store_true", help="only ship an already trained OUTPUT folder"
    )
    args = parser.parse_args()
    if args.ship_only:
        ship(args.output)
        return

    torch.set_num_threads(1)
    from cryomine.cli import app

    argv = ["picker", "train", "-o", str(args.output), "--epochs", str(args.epochs)]
    argv += ["--steps-per-epoch", str(args.steps_per_epoch), "--seed", str(args.seed)]
    argv += ["--max-wall-time", str(args.max_wall_time), "--device", "cpu"]
    for path in training_maps(args.maps_dir):
        argv += ["--structures", str(path)]
    print("cryomine " + " ".join(argv), file=sys.stderr, flush=True)
    app(argv, standalone_mode=False)
    if args.ship:
        ship(args.output)


def ship(run_dir: Path) -> None:
    """Copy the trained model of ``run_dir`` into the package and write its MODEL_CARD.md."""
    SHIPPED.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED_FILES:
        shutil.copy2(run_dir / name, SHIPPED / name)
    (SHIPPED / "MODEL_CARD.md").write_text(model_card(SHIPPED))
    print(f"shipped {', '.join(SHIPPED_FILES)} + MODEL_CARD.md → {SHIPPED}", file=sys.stderr)


def model_card(directory: Path) -> str:
    """The model card: command, data, wall time, machine and the measured training numbers."""
    record = json.loads((directory / "run.json").read_text())
    config = json.loads((directory / "config.json").read_text())
    history = json.loads((directory / "history.json").read_text())
    machine = record["machine"]
    first, last = history[0], history[-1]
    arch = config["architecture"]
    training = config["training"]
    structures = ", ".join(config["structures"])
    size_kb = (directory / "model.pt").stat().st_size / 1024
    planned = training["options"]["epochs"]
    ended = (
        "ran all" if training["epochs_done"] >= planned else "stopped by the wall-time limit after"
    )
    return f"""# cryomine picker model (shipped)

A TomoTwin-style embedding network: 3-D CNN, {arch["window"]}³ windows at
{arch["voxel_size_a"]:g} Å/voxel → {arch["embedding_dim"]}-d unit-norm embeddings (channels
{arch["channels"]}, {record["results"]["n_parameters"]:,} parameters, model.pt {size_kb:.0f} KB).
Trained by `benchmarks/picker_train.py` through `cryomine picker train`; see docs/picker.md.
Files: `model.pt` (torch state dict, `torch.load(weights_only=True)`), `config.json`
(architecture, class names, training settings), `history.json` (per-epoch numbers), `run.json`
(the run record).

## Command
```
OMP_NUM_THREADS=1 python benchmarks/picker_train.py /work/shared/data/structures/maps \
    -o <run dir> --epochs {training["options"]["epochs"]} \
    --steps-per-epoch {training["options"]["steps_per_epoch"]} \
    --max-wall-time {training["options"]["max_wall_s"]:g}
python benchmarks/picker_train.py /work/shared/data/structures/maps -o <run dir> --ship-only
```
The run record's argv: `{" ".join(record["argv"])}`; the script calls `cryomine picker train`
with one `--structures` per training map.

## Data
Simulated on the fly by `cryomine.simulate.simulate_tomogram` from the 10 Å maps of the shared
structure set (polnet maps; Chlamydomonas STA maps resampled from 7.84 Å), **every map except
the six unseen proteins** of BENCHMARKS.md §6 (6drv, 2uv8, 7n4y, 6utj, 1fa2, 5mrc — never used
for training or tuning). {len(config["structures"])} structure classes + membrane, gold,
background: {structures}. Each epoch: a fresh pool of small crowded tomograms
({training["conditions"]["shape_zyx"]} voxels, {training["conditions"]["structures_per_tomogram"]}
structures × {training["conditions"]["copies_per_structure"]} copies, every structure in
{training["conditions"]["tomograms_per_structure"]} tomograms of a pool, SNR
{training["conditions"]["snr_range"]}, defocus {training["conditions"]["defocus_range_um"]} µm,
tilt ±{training["conditions"]["max_tilt_range_deg"]}°, vesicle with probability
{training["conditions"]["membrane_probability"]}, 0–{training["conditions"]["max_gold"]} gold
beads). Seed {training["seed"]}.

## Training
Triplet loss on cosine distance, margin {training["options"]["margin"]}, online semi-hard
mining, batches {training["options"]["n_classes"]} classes × {training["options"]["n_per_class"]}
windows, Adam lr {training["options"]["learning_rate"]:g} with cosine decay over
{training["options"]["epochs"]} planned epochs; {ended}
**{training["epochs_done"]} epochs** ({training["epochs_done"] * training["options"]["steps_per_epoch"]}
steps). Wall time **{record["timings_s"]["total"] / 60:.1f} min** on {machine["cpu"]}
({machine["cpu_count"]} cores shared with another job; torch threads {machine["torch_threads"]}),
torch {machine["torch"]}, no GPU.

## Measured (validation pool of training structures, fixed seed)
| | before training | after epoch {last["epoch"] + 1} |
|---|---|---|
| validation triplet loss | {first["validation_loss"]:.3f} | {last["validation_loss"]:.3f} |
| leave-one-out nearest-neighbour class accuracy ({len(config["class_names"])} classes) | {first["validation_nn_accuracy"]:.3f} | {last["validation_nn_accuracy"]:.3f} |

Picking F1 on new tomograms (training and unseen structures, beside DoG):
`benchmarks/results/picker/picker_f1.md` (command inside).
"""


if __name__ == "__main__":
    main()
