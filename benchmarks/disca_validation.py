"""Sorting on the validation structures: K and homogeneity against N and SNR, methods side by side.

The evidence grid of issues #11 and #13 (BENCHMARKS.md §6: never tuned on). For every size
(``--sizes``, ``CLASSESxPER_CLASS``: ``3x60`` takes the first three structures, the three-class
validation case), SNR (``--snrs``) and seed (``--seeds``): one DISCA sort per preset
(``--presets``), and with ``--methods`` multi-pattern pursuit from the data alone (``mpp``) and
from the DISCA ``cryomine`` preset's labels (``disca-mpp``, reusing that cell's labels); beside
each (size, SNR, seed) the oracle, template matching with the true references, on the first
``--oracle-per-class`` subtomograms of each class of the same data (its decisions are per
particle, so the rates estimate the full set's). The table reports medians over seeds of K,
homogeneity and wall time per sort. Every cell is a JSON file under ``--out-dir/cells``; cells that
exist are skipped, so an interrupted run resumes. Data: 24³ at 16 Å, ±60°, projection noise model
(``fourier`` imaging), z-scored, each subtomogram at exactly the SNR. Examples::

    python benchmarks/disca_validation.py                                   # the full grid
    python benchmarks/disca_validation.py --sizes 3x60,5x100 --snrs 0.1 --seeds 0
    python benchmarks/disca_validation.py --sizes 3x60 --methods disca,mpp,disca-mpp --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryomine._runrecord import machine_description
from cryomine.evaluate import sorting_metrics
from cryomine.simulate import simulate_subtomograms

VALIDATION = ["4v7r", "4cr2", "1qvr", "3cf3", "5gjv"]


def _machine() -> dict[str, Any]:
    return {**machine_description(), "load_average_1min": os.getloadavg()[0],
            "torch_threads": torch.get_num_threads()}  # fmt: skip


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"3x60,5x100"`` → ``[(3, 60), (5, 100)]`` (classes, subtomograms per class)."""
    sizes = []
    for item in text.split(","):
        classes, _, per_class = item.strip().partition("x")
        if not (classes.isdigit() and per_class.isdigit()):
            raise SystemExit(f"--sizes: {item!r} is not CLASSESxPER_CLASS (e.g. 5x100)")
        sizes.append((int(classes), int(per_class)))
    return sizes


def simulate(args: argparse.Namespace, classes: int, per_class: int, snr: float,
             seed: int) -> tuple[np.ndarray, np.ndarray, dict]:  # fmt: skip
    sim = simulate_subtomograms(
        args.structures[:classes], n_per_class=per_class, snr=snr, tilt_range_deg=(-60.0, 60.0),
        voxel_size_a=args.voxel_size, mode="fourier", seed=seed, device=args.device,
    )  # fmt: skip
    volumes = np.concatenate(list(sim.iter_subtomograms()))
    return volumes, sim.table["cmTrueClass"].to_numpy() - 1, sim.references_ctf


def _write(path: Path, cell: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell, indent=1) + "\n")
    tmp.replace(path)


def run_sort(args: argparse.Namespace, preset: str, volumes: np.ndarray, truth: np.ndarray,
             seed: int) -> dict[str, Any]:  # fmt: skip
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from cryomine.sorting import DISCA, StagedSorter

    base, _, variant = preset.partition("-")
    overrides = {"random": {"pretrained": None}, "candidate": {"pretrained": args.candidate_trunk},
                 "diagppca": {"covariance_types": ("diag", "ppca")},
                 "split": {"split_classes": True}, "nosplit": {"split_classes": False},
                 "sqrt": {"feature_transform": "signed-sqrt"}}  # fmt: skip
    overrides = overrides.get(variant, {})
    model = DISCA.from_preset(
        base, width=args.width, k_range=tuple(args.k_range), max_iter=args.max_iter,
        device=args.device, random_state=seed, voxel_size_a=args.voxel_size, **overrides,
    )  # fmt: skip
    stages = int(variant.removeprefix("stages")) if variant.startswith("stages") else 1
    sorter = StagedSorter(model, stages=stages, random_state=seed, device=args.device)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if stages > 1:
            sorter.fit(volumes)
            labels, fits = sorter.labels_, sorter.estimators_
        else:
            labels, fits = model.fit(volumes).labels_, [model]
    wall_s = time.perf_counter() - start
    metrics = sorting_metrics(truth, labels)
    per_iteration = [
        [{k: e.get(k) for k in ("n_classes", "covariance_type", "splits", "ddbi", "label_change",
                                "feature_change", "steps", "weight_change", "timings_s")}
         for e in fit.history_]
        for fit in fits
    ]  # fmt: skip
    return {
        "k": metrics.n_predicted_classes, "homogeneity": metrics.homogeneity,
        "accuracy": metrics.accuracy, "wall_s": wall_s,
        "n_iter": sum(fit.n_iter_ for fit in fits), "best_iteration": fits[0].best_iteration_,
        "labels": labels.tolist(),
        "converged": all(fit.converged_ for fit in fits),
        "warnings": [str(w.message) for w in caught],
        "per_iteration": per_iteration[0],
        **({"stages": sorter.stages_, "class_stage": sorter.class_stage_.tolist(),
            "per_iteration_of_stage": per_iteration,
            "stage_1": {"k": fits[0].n_classes_,
                        "homogeneity": sorting_metrics(truth, fits[0].labels_).homogeneity}}
           if stages > 1 else {}),
        "settings": model.json_params(), "metrics": metrics.to_dict(),
    }  # fmt: skip


def run_mpp(args: argparse.Namespace, volumes: np.ndarray, truth: np.ndarray, seed: int,
            init_labels: np.ndarray | None, early: bool = False) -> dict[str, Any]:  # fmt: skip
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from cryomine.sorting import MPP

    model = MPP(random_state=seed, device=args.device, max_iter=args.mpp_max_iter,
                judge_splits_early=early)  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(volumes, init_labels=init_labels)
    wall_s = time.perf_counter() - start
    metrics = sorting_metrics(truth, model.labels_)
    return {
        "k": model.n_classes_, "homogeneity": metrics.homogeneity, "accuracy": metrics.accuracy,
        "wall_s": wall_s, "n_iter": model.n_iter_, "converged": model.converged_,
        "start_k": None if init_labels is None else int(np.unique(init_labels).size),
        "warnings": [str(w.message) for w in caught], "labels": model.labels_.tolist(),
        "per_iteration": [{k: e.get(k) for k in ("n_classes", "sizes", "label_change", "events",
                                                 "timings_s")} for e in model.history_],
        "settings": model.get_params(), "metrics": metrics.to_dict(),
    }  # fmt: skip


def run_oracle(args: argparse.Namespace, volumes: np.ndarray, truth: np.ndarray,
               references: dict) -> dict[str, Any]:  # fmt: skip
    from cryomine.sorting.baselines import TemplateMatchingClassifier

    scored = np.concatenate([np.flatnonzero(truth == k)[: args.oracle_per_class]
                             for k in np.unique(truth)])  # fmt: skip
    start = time.perf_counter()
    oracle = TemplateMatchingClassifier(
        references, tilt_range_deg=(-60.0, 60.0), angular_step_deg=args.tm_step,
        refine_to_deg=args.tm_refine_to, device=args.device,
    ).fit(volumes[scored])  # fmt: skip
    metrics = sorting_metrics(truth[scored], oracle.labels_)
    return {"k": metrics.n_predicted_classes, "homogeneity": metrics.homogeneity,
            "accuracy": metrics.accuracy, "n_scored": len(scored),
            "wall_s": time.perf_counter() - start}  # fmt: skip


def run_grid(args: argparse.Namespace) -> list[dict]:
    cells = []
    for classes, per_class in parse_sizes(args.sizes):
        for snr in args.snrs:
            for seed in args.seeds:
                data = None
                jobs = [("oracle", None)] if args.oracle_per_class > 0 else []
                if "disca" in args.methods:
                    jobs += [("disca", p) for p in args.presets]
                jobs += [(m, None) for m in args.methods
                         if m.removesuffix("-early") in ("mpp", "disca-mpp")]  # fmt: skip
                stem = f"{classes}x{per_class}_snr{snr:g}_seed{seed}_"
                for method, preset in jobs:
                    name = stem + (preset or method)
                    path = args.out_dir / "cells" / f"{name}.json"
                    if path.exists():
                        cells.append(json.loads(path.read_text()))
                        continue
                    if args.summary_only:
                        continue
                    if data is None:
                        data = simulate(args, classes, per_class, snr, seed)
                    volumes, truth, references = data
                    print(f"{name} ...", flush=True)
                    if method == "oracle":
                        result = run_oracle(args, volumes, truth, references)
                    elif method == "disca":
                        result = run_sort(args, preset, volumes, truth, seed)
                    else:
                        start, disca_wall = None, None
                        if method.startswith("disca-mpp"):
                            disca = args.out_dir / "cells" / f"{stem}cryomine.json"
                            saved = json.loads(disca.read_text()) if disca.exists() else {}
                            if "labels" not in saved:  # cells from before labels were kept
                                saved = run_sort(args, "cryomine", volumes, truth, seed)
                            start, disca_wall = np.asarray(saved["labels"]), saved["wall_s"]
                        result = run_mpp(args, volumes, truth, seed, start,
                                         early=method.endswith("-early"))  # fmt: skip
                        result["disca_wall_s"] = disca_wall
                        result["disca_preset"] = "cryomine"
                    cell = {"method": method, "preset": preset, "classes": classes,
                            "per_class": per_class, "n": classes * per_class, "snr": snr,
                            "seed": seed, "structures": args.structures[:classes], **result,
                            "machine": _machine(),
                            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime())}  # fmt: skip
                    _write(path, cell)
                    print(f"  K = {cell['k']}, homogeneity {cell['homogeneity']:.3f}, "
                          f"{cell['wall_s']:.0f} s", flush=True)  # fmt: skip
                    cells.append(cell)
    return cells


def cells_on_disk(out_dir: Path) -> list[dict]:
    """Every cell under ``out_dir/cells``, whichever invocation wrote it (the summary's rows)."""
    return [json.loads(path.read_text()) for path in sorted((out_dir / "cells").glob("*.json"))]


def summary(cells: list[dict]) -> list[str]:
    lines = ["| N | SNR | method | seeds | K (each seed) | median homogeneity | "
             "median wall (s) | iterations |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    keys = sorted({(c["classes"], c["per_class"], c["snr"]) for c in cells},
                  key=lambda k: (k[0] * k[1], -k[2]))  # fmt: skip
    for classes, per_class, snr in keys:
        presets = sorted({c["preset"] for c in cells if c["preset"]},
                         key=lambda p: (p != "cryomine", p != "paper", p))  # fmt: skip
        for label in ["oracle", *presets, "mpp", "mpp-early", "disca-mpp", "disca-mpp-early"]:
            group = [c for c in cells if (c["classes"], c["per_class"], c["snr"]) ==
                     (classes, per_class, snr) and (c["preset"] or c["method"]) == label]  # fmt: skip
            if not group:
                continue
            group.sort(key=lambda c: c["seed"])
            names = {"oracle": "template matching, true references (oracle, "
                               f"{group[0].get('n_scored')} scored)",
                     "mpp": "MPP from the data alone (`--method mpp`)",
                     "disca-mpp": "DISCA, then MPP from its classes (`--method disca-mpp`)",
                     "mpp-early": "MPP from the data alone, judging splits early",
                     "disca-mpp-early": "DISCA, then MPP, judging splits early",
                     "cryomine-random": "DISCA --preset cryomine --pretrained none",
                     "cryomine-candidate": "DISCA --preset cryomine --pretrained CANDIDATE "
                                           "(`--candidate-trunk`)",
                     "cryomine-stages2": "DISCA --preset cryomine --stages 2",
                     "cryomine-diagppca": "DISCA --preset cryomine --covariance diag,ppca",
                     "cryomine-split": "DISCA --preset cryomine --split-classes",
                     "cryomine-nosplit": "DISCA --preset cryomine --no-split-classes",
                     "cryomine-sqrt": "DISCA --preset cryomine --feature-transform signed-sqrt"}  # fmt: skip
            name = names.get(label, f"DISCA --preset {label}")
            iterations = ", ".join(str(c.get("n_iter", "–")) for c in group)
            lines.append(
                f"| {classes} × {per_class} | {snr:g} | {name} | "
                f"{', '.join(str(c['seed']) for c in group)} | "
                f"{', '.join(str(c['k']) for c in group)} | "
                f"{np.median([c['homogeneity'] for c in group]):.3f} | "
                f"{np.median([c['wall_s'] for c in group]):.0f} | {iterations} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--structures", default=",".join(VALIDATION), help="comma-separated, validation set")
    add("--sizes", default="3x60,5x100,5x200,5x400", help="CLASSESxPER_CLASS, comma-separated")
    add("--snrs", default="0.1,0.03,0.01", help="comma-separated SNRs")
    add("--presets", default="cryomine,paper",
        help="comma-separated DISCA presets; cryomine-random: the cryomine preset from random "
             "weights instead of the pretrained trunk; cryomine-candidate: from the trunk in "
             "--candidate-trunk; cryomine-stagesN: in N stages (--stages); cryomine-diagppca: "
             "with the covariance models diag and ppca; cryomine-split / cryomine-nosplit: "
             "with / without the split test (--split-classes); cryomine-sqrt: with "
             "--feature-transform signed-sqrt")  # fmt: skip
    add("--candidate-trunk", type=Path,
        help="a pretrained trunk to compare with the shipped one (preset cryomine-candidate)")  # fmt: skip
    add("--methods", default="disca",
        help="comma-separated from disca, mpp, disca-mpp, and mpp-early, disca-mpp-early "
             "(MPP with judge_splits_early)")  # fmt: skip
    add("--mpp-max-iter", type=int, default=60, help="MPP iterations at most")
    add("--summary-only", action="store_true", help="tabulate the cells there are, run none")
    add("--seeds", default="0,1,2", help="comma-separated seeds (simulation and DISCA)")
    add("--oracle-per-class", type=int, default=20,
        help="template matching on this many per class (0: no oracle)")  # fmt: skip
    add("--tm-step", type=float, default=30.0, help="oracle global grid step, degrees")
    add("--tm-refine-to", type=float, default=7.5, help="oracle finest step, degrees")
    add("--k-range", type=int, nargs=2, default=[2, 10], help="candidate K (min max)")
    add("--width", type=float, default=0.25, help="YOPO width multiplier")
    add("--max-iter", type=int, default=10, help="DISCA EM iterations at most")
    add("--voxel-size", type=float, default=16.0, help="voxel size, Å")
    add("--threads", type=int, default=2, help="torch CPU threads")
    add("--device", default="auto")
    add("--out-dir", type=Path, default=Path(__file__).parent / "results" / "disca_validation")
    args = parser.parse_args(argv)
    args.structures = [s.strip() for s in args.structures.split(",") if s.strip()]
    args.snrs = [float(s) for s in args.snrs.split(",")]
    args.presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if "cryomine-candidate" in args.presets and args.candidate_trunk is None:
        parser.error(
            "--presets cryomine-candidate needs --candidate-trunk DIR (a pretrained trunk)"
        )
    torch.set_num_threads(args.threads)
    command = "python benchmarks/disca_validation.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    print(command, flush=True)
    run_grid(args)
    cells = cells_on_disk(args.out_dir)
    machine = _machine()
    lines = [
        "# Sorting on the validation structures: K and homogeneity against N and SNR", "",
        f"Last command: `{command}`. The table holds every cell under `cells/`, whichever "
        "command wrote it; each cell's JSON has its own settings and machine.", "",
        f"Machine: {machine['cpu']} ({machine['cpu_count']} CPUs, {args.threads} torch threads, "
        f"CUDA {machine['cuda']}, 1-min load average {machine['load_average_1min']:.1f} at the "
        f"end; other jobs shared the CPU, so wall times are upper bounds). Structures: "
        f"{', '.join(args.structures)} (the first three for 3 × N), 24³ at "
        f"{args.voxel_size:g} Å, ±60°, projection noise (fourier), z-scored. DISCA width "
        f"{args.width:g}, K {args.k_range[0]}..{args.k_range[1]}, at most {args.max_iter} "
        f"iterations; MPP defaults (docs/mpp.md), at most {args.mpp_max_iter} iterations. "
        "The wall time of DISCA → MPP is that of MPP alone; DISCA's is its own row. Each DISCA → "
        "MPP cell names the DISCA run it started from (`disca_preset`).", "",
        *summary(cells), "",
    ]  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.md").write_text("\n".join(lines))
    payload = {
        "command": command,
        "machine": machine,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cells": cells,
    }
    (args.out_dir / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
