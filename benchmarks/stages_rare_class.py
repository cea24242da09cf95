"""Multi-stage sorting and a rare class: does a second stage find what one sort merges away?

Issue #13's evidence for ``cryomine sort --stages``. Data: three abundant structures
(``--abundant``, ``--per-class`` each) and one rare structure (``--rare``, ``--rare-count``
particles, e.g. 24 of 474 = 5 %), 24³ at 16 Å, ±60°, projection noise model (``fourier``),
z-scored, each subtomogram at exactly the SNR. Per SNR and seed: one sort in ``--stages``
stages (:class:`cryomine.sorting.StagedSorter` around DISCA ``--preset``, by default
``cryomine``; ``--random-weights`` starts it from random weights); stage 1 *is*
the single-stage sort, so both rows come from one run. Reported: K, homogeneity, the rare
structure's recall (the largest share of its particles in one class) and purity (that class's
share of the rare structure), per stage. Tuning structures only (BENCHMARKS.md §6). Cells are
JSON under ``--out-dir/cells``; existing cells are skipped. ``--refine`` adds two rows: the
single-stage and the staged answer, each refined by MPP from its classes (what ``cryomine refine
RUN_DIR`` runs), with their own wall times. Example::

    python benchmarks/stages_rare_class.py --snrs 0.1,0.03 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from cryomine._runrecord import machine_description
from cryomine.evaluate import sorting_metrics
from cryomine.simulate import simulate_subtomograms


def rare_class_scores(truth: np.ndarray, labels: np.ndarray, rare: int) -> dict[str, float]:
    """Recall and purity of the class that holds most of the rare structure's particles."""
    members = labels[truth == rare]
    best = int(np.bincount(members).argmax())
    in_best = int(np.sum(members == best))
    return {"class": best, "recall": in_best / members.size,
            "purity": in_best / int(np.sum(labels == best))}  # fmt: skip


def run_cell(args: argparse.Namespace, snr: float, seed: int) -> dict[str, Any]:
    from cryomine.sorting import DISCA
    from cryomine.sorting._stages import StagedSorter

    names = [*args.abundant, args.rare]
    sim = simulate_subtomograms(
        names, n_per_class=args.per_class, snr=snr, tilt_range_deg=(-60.0, 60.0),
        voxel_size_a=args.voxel_size, mode="fourier", seed=seed, device=args.device,
    )  # fmt: skip
    truth_all = sim.table["cmTrueClass"].to_numpy() - 1
    rare = len(args.abundant)
    keep = np.concatenate([np.flatnonzero(truth_all != rare),
                           np.flatnonzero(truth_all == rare)[: args.rare_count]])  # fmt: skip
    keep.sort()
    volumes = np.concatenate(list(sim.iter_subtomograms()))[keep]
    truth = truth_all[keep]
    weights = {"pretrained": None} if args.random_weights else {}
    sorter = StagedSorter(
        DISCA.from_preset(args.preset, voxel_size_a=args.voxel_size, device=args.device,
                          random_state=seed, max_iter=args.max_iter, **weights),
        stages=args.stages, random_state=seed, device=args.device,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        sorter.fit(volumes)
    wall_s = time.perf_counter() - start
    single = sorter.estimators_[0].labels_
    answers = [("single stage", single), (f"{args.stages} stages", sorter.labels_)]
    refine_s = {}
    if args.refine:  # what `cryomine refine RUN_DIR` runs, on each answer
        from cryomine.sorting import MPP

        for name, labels in list(answers):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught_refine:
                warnings.simplefilter("always", ConvergenceWarning)
                refined = MPP(random_state=seed, device=args.device).fit(
                    volumes, init_labels=labels
                )
            refine_s[f"{name}, then MPP refine"] = time.perf_counter() - start
            caught.extend(caught_refine)
            answers.append((f"{name}, then MPP refine", refined.labels_))
    rows = {}
    for name, labels in answers:
        metrics = sorting_metrics(truth, labels)
        rows[name] = {"k": metrics.n_predicted_classes, "homogeneity": metrics.homogeneity,
                      "accuracy": metrics.accuracy, "confusion": metrics.confusion,
                      "rare": rare_class_scores(truth, labels, rare),
                      "labels": np.asarray(labels).tolist()}  # fmt: skip
    for name, seconds in refine_s.items():
        rows[name]["wall_s"] = seconds
    return {
        "snr": snr, "seed": seed, "structures": names, "rare_count": args.rare_count,
        "per_class": args.per_class, "n": len(truth), "rows": rows,
        "class_stage": sorter.class_stage_.tolist(), "stages": sorter.stages_,
        "wall_s": wall_s, "warnings": [str(w.message) for w in caught],
        "machine": {**machine_description(), "load_average_1min": os.getloadavg()[0],
                    "torch_threads": torch.get_num_threads()},
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip


def _variant(args: argparse.Namespace) -> str:
    """File-name suffix of a non-default sorter: ``""``, ``"_paper"``, ``"_random"``..."""
    return (("" if args.preset == "cryomine" else f"_{args.preset}")
            + ("_random" if args.random_weights else "") + ("_refine" if args.refine else ""))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--abundant", default="4v4r,3j9i,atp_synthase", help="comma-separated structures")
    add("--rare", default="6v8o", help="the rare structure")
    add("--per-class", type=int, default=150, help="particles per abundant structure")
    add("--rare-count", type=int, default=24, help="particles of the rare structure")
    add("--snrs", default="0.1,0.03")
    add("--seeds", default="0")
    add("--stages", type=int, default=2)
    add("--max-iter", type=int, default=20, help="DISCA iterations per stage")
    add("--preset", default="cryomine", help="DISCA preset of every stage")
    add("--random-weights", action="store_true", help="start DISCA from random weights")
    add(
        "--refine",
        action="store_true",
        help="also refine the staged answer with MPP (init labels = the stages' classes)",
    )
    add("--voxel-size", type=float, default=16.0)
    add("--device", default="auto")
    add("--out-dir", type=Path, default=Path(__file__).parent / "results" / "stages")
    args = parser.parse_args(argv)
    args.abundant = [s.strip() for s in args.abundant.split(",") if s.strip()]
    if args.rare_count > args.per_class:
        raise SystemExit("--rare-count: at most --per-class particles can be kept")
    command = "python benchmarks/stages_rare_class.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    print(command, flush=True)
    cells = []
    for snr in [float(s) for s in args.snrs.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            name = (f"{'-'.join(args.abundant)}_{args.rare}x{args.rare_count}_per{args.per_class}"
                    f"_snr{snr:g}_seed{seed}_stages{args.stages}{_variant(args)}.json")  # fmt: skip
            path = args.out_dir / "cells" / name
            if path.exists():
                print(f"skip {name} (exists)", flush=True)
                cells.append(json.loads(path.read_text()))
                continue
            print(f"SNR {snr:g}, seed {seed} ...", flush=True)
            cell = run_cell(args, snr, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cell, indent=1, default=int) + "\n")
            tmp.replace(path)
            cells.append(cell)
            for row, values in cell["rows"].items():
                print(f"  {row}: K = {values['k']}, homogeneity {values['homogeneity']:.3f}, "
                      f"rare recall {values['rare']['recall']:.2f} purity "
                      f"{values['rare']['purity']:.2f}", flush=True)  # fmt: skip
    lines = [
        "# Multi-stage sorting: a rare class", "", f"`{command}`", "",
        f"Abundant: {', '.join(args.abundant)} × {args.per_class}; rare: {args.rare} × "
        f"{args.rare_count}. DISCA --preset {args.preset}"
        + (" from random weights" if args.random_weights else "")
        + f" in each stage, at most {args.max_iter} "
        "iterations. Rare recall: largest share of the rare structure's particles in one class; "
        "purity: that class's share of the rare structure.", "",
        "| SNR | seed | sort | K | homogeneity | rare recall | rare purity | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for cell in cells:
        for row, values in cell["rows"].items():
            lines.append(
                f"| {cell['snr']:g} | {cell['seed']} | {row} | {values['k']} | "
                f"{values['homogeneity']:.3f} | {values['rare']['recall']:.2f} | "
                f"{values['rare']['purity']:.2f} | {values.get('wall_s', cell['wall_s']):.0f} |"
            )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"rare_{args.rare}x{args.rare_count}{_variant(args)}"
    (args.out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.out_dir / f"{stem}.json").write_text(
        json.dumps({"command": command, "cells": cells}, indent=1, default=int) + "\n"
    )
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
