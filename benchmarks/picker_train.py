"""Train the picker model that ships with cryomine (src/cryomine/data/picker/).

Training structures: every map in MAPS_DIR (the shared ``structures/maps`` folder, 10 Å maps)
except the six unseen proteins of BENCHMARKS.md §6, which are never trained or tuned on. The run
goes through the ``cryomine picker train`` command; its output folder is then copied (model.pt,
config.json, history.json, run.json — no checkpoint) into the package data folder by ``--ship``.

    OMP_NUM_THREADS=1 python benchmarks/picker_train.py /work/shared/data/structures/maps \
        -o runs/picker_shipped --epochs 34 --steps-per-epoch 40 --max-wall-time 2040 --ship
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()

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
        SHIPPED.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED_FILES:
            shutil.copy2(args.output / name, SHIPPED / name)
        print(f"shipped {', '.join(SHIPPED_FILES)} → {SHIPPED}", file=sys.stderr)


if __name__ == "__main__":
    main()
