"""Pretrain the YOPO trunk that DISCA starts from (the model shipped in cryomine/data/yopo/).

Trains by supervised contrastive learning on simulated subtomograms of structures that no sort
is evaluated on (``cryomine.sorting._pretrain``), then writes the trunk, its record and a model
card. Excluded, by BENCHMARKS.md §6: the sorting validation structures, the learned picker's
unseen proteins, and the Table-1 five (plus the 70S subunits), which are kept out so that the
tuning set still measures structures the network never saw.

    python benchmarks/pretrain_yopo.py --maps ../shared/data/structures/maps --steps 2000 \
        -o src/cryomine/data/yopo/w0.25
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from cryomine import __version__
from cryomine.io._atomic import atomic_write_text
from cryomine.sorting._persist import write_bundle
from cryomine.sorting._pretrain import PRETRAINED_FORMAT, PretrainSettings, pretrain_trunk
from cryomine.structures import list_structures

#: Never trained on: sorting validation (BENCHMARKS.md §6), picker unseen proteins, and the
#: sorting tuning set's Table-1 five and 70S subunits (held out so tuning stays unseen).
EXCLUDED = {
    "4v7r", "4cr2", "1qvr", "3cf3", "5gjv",
    "6drv", "2uv8", "7n4y", "6utj", "1fa2", "5mrc",
    "6v8o", "atp_synthase", "chlamy_mito_atpsynthase_sta", "3j9i", "4v94", "4v4r",
    "4v4r_30s", "4v4r_50s",
}  # fmt: skip


def training_structures(maps: Path | None) -> list[str]:
    """Built-in structures plus ``*_10A.mrc.gz`` / ``*.mrc.gz`` maps in ``maps``, minus EXCLUDED."""
    chosen: dict[str, str] = {}
    for info in list_structures():
        if info.name not in EXCLUDED:
            chosen[info.name] = info.name
    if maps is not None:
        for path in sorted(maps.glob("*.mrc.gz")):
            name = path.name.split(".")[0].removesuffix("_10A")
            if name not in EXCLUDED and name not in chosen:
                chosen[name] = str(path)
    return list(chosen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=Path, default=None, help="folder of extra 10 Å maps")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", type=int, default=0,
                        help="ball-removed variants per structure, each its own class")  # fmt: skip
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--start-from", default=None,
                        help="fine-tune this trunk (builtin or a directory) instead of random weights")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, default=None, help="default OUTPUT.ckpt")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("cryomine.simulate").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    structures = training_structures(args.maps)
    settings = PretrainSettings(width=args.width, steps=args.steps, seed=args.seed,
                                variants=args.variants, learning_rate=args.learning_rate)  # fmt: skip
    print("structures:", ", ".join(Path(s).name.split(".")[0] for s in structures), flush=True)
    checkpoints = args.checkpoints or args.output.with_name(args.output.name + ".ckpt")
    start = time.time()

    def progress(step: int, total: int, loss: float) -> None:
        if step % 25 == 0:
            print(f"step {step}/{total} loss {loss:.4f} {time.time() - start:.0f} s", flush=True)

    trunk, record = pretrain_trunk(
        structures, settings, device=args.device, checkpoint_dir=checkpoints, progress=progress,
        start_from=args.start_from,
    )  # fmt: skip
    record.update({
        "cryomine_version": __version__,
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
    })  # fmt: skip
    write_bundle(
        args.output, meta=record, tensors={"trunk": trunk.state_dict()}, arrays={}, overwrite=True
    )
    atomic_write_text(args.output / "MODEL_CARD.md", model_card(record))
    print(json.dumps({k: record[k] for k in ("format", "wall_s", "structures")}), flush=True)
    assert record["format"] == PRETRAINED_FORMAT


def model_card(record: dict) -> str:
    """A Markdown model card: what was trained, on what, how long, on which machine."""
    settings = record["settings"]
    losses = record["losses"]
    per_voxel = "\n".join(
        f"| {voxel} | {len(names)} | {', '.join(names)} |"
        for voxel, names in record["structures_per_voxel_size"].items()
    )
    return f"""# Pretrained YOPO trunk (width {settings["width"]:g})

The starting weights of DISCA's feature network in the `cryomine` preset (`pretrained="builtin"`).
Trained by supervised contrastive learning (Khosla et al. 2020; temperature
{settings["temperature"]}) on subtomograms simulated on the fly by `cryomine.simulate`
(projection noise model, `fourier` and `tilt-series` imaging at random, SNR log-uniform in
{settings["snr_range"]}, tilt ±{settings["tilt_half_range_deg"]}°, defocus
{settings["defocus_um"]} µm, random pose and ±2 voxel shifts, {settings["box_size"]}³ boxes,
half-Nyquist low-pass and z-score as DISCA reads them). Each batch: one voxel size,
{settings["structures_per_batch"]} structures × {settings["views"]} subtomograms.
{settings["steps"]} AdamW steps (lr {settings["learning_rate"]}, cosine decay, weight decay
{settings["weight_decay"]}), seed {settings["seed"]}; BatchNorm statistics re-estimated at the end
on simulated batches of every voxel size.

- Command: `{record["command"]}`
- cryomine {record["cryomine_version"]}, torch {record["machine"]["torch"]},
  {record["machine"]["torch_threads"]} thread(s) on {record["machine"]["platform"]}
  ({record["machine"]["cpus"]} CPUs, shared); wall time {record["wall_s"] / 60:.1f} min on {record["device"]}.
- Loss (mean over each {settings["checkpoint_every"]} steps): {losses[0]["loss"]:.3f} at step
  {losses[0]["step"]} → {losses[-1]["loss"]:.3f} at step {losses[-1]["step"]}.
- Files: `state.json` (this record), `state.pt` (the trunk's state dict, `weights_only`).

## Structures ({len(record["structures"])})
Built-in structures and the shared 10 Å maps, minus every structure any claim is evaluated on
(BENCHMARKS.md §6): the sorting validation set, the learned picker's unseen proteins, and the
sorting tuning set's Table-1 five and 70S subunits. A structure is used at a voxel size where
its natural box is {settings["structure_box_range"][0]}–{settings["structure_box_range"][1]} voxels.

| voxel size (Å) | structures | names |
|---|---|---|
{per_voxel}

## Measured
What it changes in DISCA, on tuning and validation structures it never saw: docs/disca_measurements.md
("Pretrained network").
"""


if __name__ == "__main__":
    main()
