"""Table 1 of the DISCA paper on our simulated data: each sorter beside the paper's figures.

Experiments (``--experiment``):

- ``table`` (default): per dataset (tilt range × SNR, ``--settings``) and method: estimated K,
  homogeneity, accuracy (when K is right) and wall time, as a Markdown table laid out like the
  paper's Table 1 with the paper's figures (BENCHMARKS.md) beside ours, plus JSON.
- ``sample-size``: the same metrics against the number of subtomograms (``--sizes``) at the
  first setting, with a PNG.
- ``invariance``: t-SNE of ``--copies`` randomly rotated and shifted copies of
  ``--per-class-originals`` subtomograms per class, in DISCA feature space and in the
  autoencoder's code space, coloured by class (PNGs).

Data (BENCHMARKS.md §1): five built-in structures spanning 0.3–2.3 MDa, random orientations and
±2-voxel shifts, 300 kV, 5 µm underfocus, Cs 2.7 mm, tilt series with the missing wedge of the
tilt range, each subtomogram at exactly the target SNR. The ATP-synthase dimer does not fit a 24³
box at 13 Å, so the default sampling is **16 Å per voxel in a 24³ box** (384 Å), where all five
fit. Every result cell is a JSON file under ``--out-dir/cells``; cells that exist are skipped, so
an interrupted run resumes. Examples::

    python benchmarks/sorting_table1.py --per-class 400                        # the full grid
    python benchmarks/sorting_table1.py --per-class 30 --settings 60:0.1 \\
        --methods template-matching,autoencoder
    python benchmarks/sorting_table1.py --experiment sample-size --sizes 50,100,200 \\
        --settings 60:0.1
    python benchmarks/sorting_table1.py --experiment invariance --per-class 40 --settings 60:0.1
    python benchmarks/sorting_table1.py --per-class 400 --noise-model paper --no-normalize \
        --no-zscore --out-dir benchmarks/results/sorting_table1_paper  # like for like (grid a)

Rows (``--methods``): ``template-matching`` with the true CTF-filtered references (the oracle:
the physical limit of any classifier on the data), ``scale`` (a mixture on log std alone: how
much the noise-scale leak explains), ``autoencoder``, ``disca-paper`` (``--preset paper``;
``--no-zscore`` skips its z-score like the reference code), ``cryomine`` (the default sorter) and
``mpp`` (multi-pattern pursuit from the data alone); ``disca`` is the constructor defaults at
``--width`` (the rows of the first committed table).

Cells of the projection model with normalized data keep their file names; other data get a
``_paper`` and/or ``_raw`` suffix, so they never mix in one ``--out-dir``.
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

_HISTORY_KEYS = ("n_classes", "covariance_type", "ddbi", "label_change", "steps", "weight_change")
STRUCTURES = ["6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"]
METHODS = ["template-matching", "scale", "autoencoder", "disca", "disca-paper", "cryomine", "mpp"]
LABELS = {"template-matching": "Template matching (true references)", "scale": "Scale only",
          "autoencoder": "Autoencoder", "disca": "DISCA (constructor defaults at --width)",
          "disca-paper": "DISCA --preset paper", "cryomine": "DISCA --preset cryomine",
          "mpp": "MPP from the data alone"}  # fmt: skip
#: the paper's rows each of our methods is compared with (its Table 1 has no MPP or scale row)
PAPER_ROW = {"disca-paper": "disca", "cryomine": "disca"}
TILTS = [60.0, 40.0]
SNRS = [0.1, 0.03, 0.01, 0.003, 0.001]
# The paper's Table 1 (BENCHMARKS.md): method -> tilt -> (K, homogeneity, accuracy %) per SNR.
_PAPER_ROWS = {
    "template-matching": {
        60: ([5, 4, 5, 5, 3], [0.7013, 0.4709, 0.1496, 0.0136, 0.0032],
             [83.95, 69.75, 45.35, 25.25, 20.95]),
        40: ([6, 5, 3, 3, 3], [0.5543, 0.3336, 0.0655, 0.0062, 0.0012],
             [76.25, 61.15, 36.60, 23.80, 21.20]),
    },
    "autoencoder": {
        60: ([5] * 5, [0.3843, 0.4539, 0.3613, 0.4915, 0.3881], [56.75, None, 53.45, 64.80, None]),
        40: ([5, 5, 5, 6, 6], [0.5227, 0.3470, 0.3735, 0.3878, 0.3874],
             [None, 53.35, None, None, None]),
    },
    "disca": {
        60: ([5] * 5, [0.9878, 0.9373, 0.8746, 0.8712, 0.8719],
             [99.70, 97.80, 94.80, 94.25, 94.50]),
        40: ([5, 5, 5, 6, 6], [0.9568, 0.8020, 0.8344, 0.8366, 0.8323],
             [98.70, 90.35, 91.80, None, None]),
    },
}  # fmt: skip


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def paper_figures(method: str, tilt: float, snr: float) -> dict[str, Any] | None:
    """The paper's (K, homogeneity, accuracy %) for one cell, ``None`` off its grid."""
    rows = _PAPER_ROWS.get(PAPER_ROW.get(method, method), {}).get(round(tilt))
    if rows is None or snr not in SNRS:
        return None
    i = SNRS.index(snr)
    return {"k": rows[0][i], "homogeneity": rows[1][i], "accuracy_percent": rows[2][i]}


def parse_settings(text: str | None) -> list[tuple[float, float]]:
    """``"60:0.1,40:0.01"`` → ``[(60.0, 0.1), (40.0, 0.01)]``; ``None``: the paper's 10."""
    if not text:
        return [(t, s) for t in TILTS for s in SNRS]
    settings = []
    for item in text.split(","):
        tilt, _, snr = item.strip().partition(":")
        try:
            settings.append((float(tilt), float(snr)))
        except ValueError:
            raise SystemExit(f"--settings: {item!r} is not TILT:SNR, e.g. 60:0.1") from None
    return settings


def _machine() -> dict[str, Any]:
    return {**machine_description(), "load_average_1min": os.getloadavg()[0]}


def simulate(args: argparse.Namespace, tilt: float, snr: float, per_class: int) -> Any:
    """Simulated volumes ``(N, S, S, S)``, 0-based truth ``(N,)`` and CTF-filtered references."""
    start = time.perf_counter()
    sim = simulate_subtomograms(
        args.structures, n_per_class=per_class, snr=snr, tilt_range_deg=(-tilt, tilt),
        box_size=args.box, voxel_size_a=args.voxel_size, defocus_um=5.0,
        mode=args.mode if args.noise_model == "projection" else None,
        noise_model=args.noise_model, normalize=args.normalize, seed=args.seed,
        device=args.device,
    )  # fmt: skip
    volumes = np.concatenate(list(sim.iter_subtomograms()))
    truth = sim.table["cmTrueClass"].to_numpy() - 1
    return volumes, truth, sim.references_ctf, time.perf_counter() - start


def run_method(
    args: argparse.Namespace, method: str, volumes: np.ndarray, references: dict, tilt: float
) -> tuple[np.ndarray, dict[str, Any], Any]:
    """Labels, extra numbers and the fitted estimator of one method (all are scikit-learn shaped)."""
    k_range = tuple(args.k_range)
    if method == "template-matching":
        from cryomine.sorting.baselines import TemplateMatchingClassifier

        model = TemplateMatchingClassifier(
            references, tilt_range_deg=(-tilt, tilt), angular_step_deg=args.tm_step,
            refine_to_deg=args.tm_refine_to, device=args.device,
        ).fit(volumes)  # fmt: skip
        result = model.result_
        pairs = len(volumes) * len(references)
        extra = {"n_rotations_scored": result.n_rotations_scored,
                 "angular_step_deg": args.tm_step, "refine_to_deg": args.tm_refine_to,
                 "timings_s": result.timings_s,
                 "seconds_per_subtomogram_reference":
                     result.timings_s["total"] / pairs}  # fmt: skip
        return model.labels_, extra, model
    if method == "autoencoder":
        from cryomine.sorting.baselines import AutoencoderClustering

        model = AutoencoderClustering(
            k_range=k_range, epochs=args.ae_epochs, pca_components=args.pca_components,
            voxel_size_a=args.voxel_size, device=args.device, random_state=args.seed,
        ).fit(volumes)  # fmt: skip
        result = model.result_
        extra = {"epochs": args.ae_epochs, "losses": result.losses,
                 "lowpass_fraction_of_nyquist": result.lowpass_fraction,
                 "bic": {str(k): v for k, v in result.bic.items()}}  # fmt: skip
        return model.labels_, extra, model
    if method == "disca":
        from cryomine.sorting import DISCA

        model = DISCA(
            k_range=k_range, max_iter=args.max_iter, width=args.width,
            pca_components=args.pca_components, device=args.device, random_state=args.seed,
        )  # fmt: skip
        model.fit(volumes)
        extra = {"iterations": model.n_iter_, "best_iteration": model.best_iteration_,
                 "settings": model.get_params()}  # fmt: skip
        return model.labels_, extra, model
    if method in ("disca-paper", "cryomine"):
        from cryomine.sorting import DISCA

        model = DISCA.from_preset(
            method.removeprefix("disca-"), k_range=k_range, max_iter=args.max_iter,
            voxel_size_a=args.voxel_size, zscore=args.zscore or method == "cryomine",
            device=args.device,
            random_state=args.seed,
        )  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(volumes)
        extra = {"iterations": model.n_iter_, "best_iteration": model.best_iteration_,
                 "converged": model.converged_, "warnings": [str(w.message) for w in caught],
                 "per_iteration": [{k: e.get(k) for k in _HISTORY_KEYS} for e in model.history_],
                 "settings": model.json_params()}  # fmt: skip
        return model.labels_, extra, model
    if method == "mpp":
        from cryomine.sorting import MPP

        model = MPP(max_iter=args.mpp_max_iter, tilt_range_deg=(-tilt, tilt),
                    random_state=args.seed, device=args.device)  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(volumes)
        extra = {"iterations": model.n_iter_, "converged": model.converged_,
                 "warnings": [str(w.message) for w in caught],
                 "per_iteration": [{k: e.get(k) for k in ("n_classes", "sizes", "label_change")}
                                   for e in model.history_],
                 "settings": model.get_params()}  # fmt: skip
        return model.labels_, extra, model
    if method == "scale":
        from cryomine.sorting.baselines import ScaleMixture

        model = ScaleMixture(k_range=k_range, random_state=args.seed).fit(volumes)
        extra = {"bic": {str(k): v for k, v in model.bic_.items()},
                 "mean_log_std": model.means_.tolist()}  # fmt: skip
        return model.labels_, extra, model
    raise SystemExit(f"--methods: unknown method {method!r}; expected {', '.join(METHODS)}")


def data_suffix(args: argparse.Namespace) -> str:
    """``""`` for the default data (projection model, z-scored), else ``_paper`` / ``_raw``."""
    return ("_paper" if args.noise_model == "paper" else "") + ("" if args.normalize else "_raw")


def cell_path(args: argparse.Namespace, tilt: float, snr: float, method: str, n: int) -> Path:
    skips_zscore = method == "disca-paper" and not args.zscore
    name = f"tilt{tilt:g}_snr{snr:g}_n{n}_{method}{data_suffix(args)}{'_noz' * skips_zscore}.json"
    return args.out_dir / "cells" / name


def run_cell(args: argparse.Namespace, tilt: float, snr: float, per_class: int,
             method: str, data: dict) -> dict[str, Any]:  # fmt: skip
    """Run one method on one dataset (simulated on first use, cached in ``data``), or load it."""
    n = per_class * len(args.structures)
    path = cell_path(args, tilt, snr, method, n)
    if path.exists():
        print(f"skip {path.name} (exists)", flush=True)
        return json.loads(path.read_text())
    key = (tilt, snr, per_class)
    if key not in data:
        data.clear()
        data[key] = simulate(args, tilt, snr, per_class)
    volumes, truth, references, simulate_s = data[key]
    if method == "template-matching" and args.tm_per_class is not None:
        # each particle is classified on its own, so a per-class subset estimates the same rates
        scored = np.concatenate([np.flatnonzero(truth == k)[: args.tm_per_class]
                                 for k in np.unique(truth)])  # fmt: skip
        volumes, truth = volumes[scored], truth[scored]
    print(f"{LABELS[method]}: tilt ±{tilt:g}°, SNR {snr:g}, N = {len(volumes)} ...", flush=True)
    start = time.perf_counter()
    labels, extra, _ = run_method(args, method, volumes, references, tilt)
    wall_s = time.perf_counter() - start
    metrics = sorting_metrics(truth, labels)
    cell = {
        "method": method, "tilt_deg": tilt, "snr": snr, "n_subtomograms": n,
        "n_per_class": per_class, "n_scored": len(volumes), "k": metrics.n_predicted_classes,
        "homogeneity": metrics.homogeneity, "accuracy": metrics.accuracy, "wall_s": wall_s,
        "simulate_s": simulate_s, "noise_model": args.noise_model,
        "normalized": args.normalize, "metrics": metrics.to_dict(), "extra": extra,
        "paper": paper_figures(method, tilt, snr), "machine": _machine(),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell, indent=1, default=_json_default) + "\n")
    tmp.replace(path)
    accuracy = "-" if metrics.accuracy is None else f"{100 * metrics.accuracy:.2f} %"
    print(f"  K = {cell['k']}, homogeneity {cell['homogeneity']:.4f}, accuracy {accuracy}, "
          f"{wall_s:.1f} s", flush=True)  # fmt: skip
    return cell


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "homogeneity":
        return f"{value:.4f}"
    if kind == "accuracy":
        return f"{value:.2f} %"
    if kind == "wall":
        return f"{value:.0f}"
    return str(value)


def table_markdown(cells: list[dict], settings: list[tuple[float, float]],
                   methods: list[str]) -> list[str]:  # fmt: skip
    """Rows method × (K, homogeneity, accuracy, wall time); each cell ``ours (paper)``."""
    by_key = {(c["method"], c["tilt_deg"], c["snr"]): c for c in cells}
    header = "| method | " + " | ".join(f"±{t:g}°: {s:g}" for t, s in settings) + " |"
    lines = [header, "|---" * (len(settings) + 1) + "|"]
    for method in methods:
        for kind, title in (("k", "K"), ("homogeneity", "homogeneity"),
                            ("accuracy", "accuracy"), ("wall", "wall time (s)")):  # fmt: skip
            row = []
            for tilt, snr in settings:
                cell = by_key.get((method, tilt, snr))
                paper = paper_figures(method, tilt, snr)
                if cell is None:
                    ours = "not run"
                elif kind == "accuracy":
                    acc = cell["accuracy"]
                    ours = _fmt(None if acc is None else 100 * acc, kind)
                else:
                    ours = _fmt(cell["wall_s"] if kind == "wall" else cell[kind], kind)
                if kind == "wall" or paper is None:
                    row.append(ours)
                else:
                    key = "accuracy_percent" if kind == "accuracy" else kind
                    row.append(f"{ours} ({_fmt(paper[key], kind)})")
            lines.append(f"| {LABELS[method]} {title} | " + " | ".join(row) + " |")
    return lines


def write_report(args: argparse.Namespace, name: str, payload: dict, lines: list[str]) -> None:
    args.out_dir.mkdir(parents=True, exist_ok=True)
    text_json = json.dumps(payload, indent=1, default=_json_default)
    (args.out_dir / f"{name}.json").write_text(text_json + "\n")
    machine = payload["machine"]
    text = [
        f"# {payload['title']}", "",
        f"`{payload['command']}`", "",
        f"Machine: {machine['cpu']} ({machine['cpu_count']} CPUs, CUDA {machine['cuda']}, 1-min "
        f"load average {machine['load_average_1min']:.1f}). Data: {', '.join(args.structures)}, "
        f"{args.box}³ at {args.voxel_size:g} Å, "
        + (f"projection noise model ({args.mode})" if args.noise_model == "projection"
           else "the paper's noise model (nominal SNR)")
        + (", z-scored" if args.normalize else ", unnormalized")
        + f", seed {args.seed}.", "",
        *lines, "",
    ]  # fmt: skip
    (args.out_dir / f"{name}.md").write_text("\n".join(text))
    print("\n".join(text), flush=True)


def experiment_table(args: argparse.Namespace, command: str) -> None:
    settings = parse_settings(args.settings)
    data: dict = {}
    cells = [run_cell(args, t, s, args.per_class, m, data)
             for t, s in settings for m in args.methods]  # fmt: skip
    lines = [
        f"Each cell: ours (paper's Table 1). N = {args.per_class} × {len(args.structures)} "
        "subtomograms; K estimated over "
        f"{args.k_range[0]}..{args.k_range[1]} (template matching: references that received "
        "particles); accuracy only when K is right."
        + (f" Template matching classified the first {args.tm_per_class} per class of the same "
           "data (each particle is classified on its own)." if args.tm_per_class else "")
        + f" DISCA rows: at most {args.max_iter} iterations"
        + (f"; `disca` at width {args.width}" if "disca" in args.methods else "")
        + ("; presets at their own width (`paper` 1.0 from random weights, `cryomine` 0.25 from "
           "the shipped pretrained trunk)" if {"disca-paper", "cryomine"} & set(args.methods)
           else "")
        + ("" if args.zscore else "; the paper preset's input not z-scored (`--no-zscore`)")
        + (f". MPP: at most {args.mpp_max_iter} iterations." if "mpp" in args.methods else "."),
        "",
        *table_markdown(cells, settings, args.methods),
    ]  # fmt: skip
    payload = {
        "title": "Sorting simulated subtomograms: the DISCA paper's Table 1",
        "command": command,
        "machine": _machine(),
        "arguments": vars(args),
        "cells": cells,
    }
    write_report(args, "sorting_table1", payload, lines)


def experiment_sample_size(args: argparse.Namespace, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tilt, snr = parse_settings(args.settings)[0]
    sizes = [int(s) for s in args.sizes.split(",")]
    data: dict = {}
    cells = [run_cell(args, tilt, snr, max(1, n // len(args.structures)), m, data)
             for n in sizes for m in args.methods]  # fmt: skip
    lines = [f"Tilt ±{tilt:g}°, SNR {snr:g}.", "", "| method | N | K | homogeneity | accuracy |"
             " wall (s) |", "|---|---|---|---|---|---|"]  # fmt: skip
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for method in args.methods:
        mine = sorted(
            (c for c in cells if c["method"] == method), key=lambda c: c["n_subtomograms"]
        )
        for c in mine:
            acc = None if c["accuracy"] is None else 100 * c["accuracy"]
            lines.append(
                f"| {LABELS[method]} | {c['n_subtomograms']} | {c['k']} | "
                f"{c['homogeneity']:.4f} | {_fmt(acc, 'accuracy')} | {c['wall_s']:.0f} |"
            )
        axis.plot([c["n_subtomograms"] for c in mine], [c["homogeneity"] for c in mine], "o-",
                  label=LABELS[method])  # fmt: skip
    axis.set(xscale="log", xlabel="subtomograms", ylabel="homogeneity", ylim=(0, 1.02),
             title=f"±{tilt:g}°, SNR {snr:g}")  # fmt: skip
    axis.legend()
    figure.tight_layout()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out_dir / "sample_size.png", dpi=120)
    payload = {"title": "Sorting accuracy against the number of subtomograms", "command": command,
               "machine": _machine(), "arguments": vars(args), "cells": cells}  # fmt: skip
    write_report(args, "sample_size", payload, [*lines, "", "![](sample_size.png)"])


def experiment_invariance(args: argparse.Namespace, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from cryomine.geometry import random_rotations, transform_volumes

    tilt, snr = parse_settings(args.settings)[0]
    volumes, truth, references, _ = simulate(args, tilt, snr, args.per_class)
    rng = np.random.default_rng(args.seed)
    picks = np.concatenate([rng.choice(np.flatnonzero(truth == k), args.per_class_originals,
                                       replace=False) for k in np.unique(truth)])  # fmt: skip
    generator = torch.Generator().manual_seed(args.seed)
    copies, classes, origin = [], [], []
    for index in picks:
        stack = torch.from_numpy(np.repeat(volumes[index][None], args.copies, axis=0))
        shifts = rng.uniform(-2.0, 2.0, size=(args.copies, 3))
        moved, _ = transform_volumes(stack, random_rotations(args.copies, rng=rng).as_matrix(),
                                     shifts, fill="noise", generator=generator)  # fmt: skip
        copies.append(moved.numpy())
        classes += [int(truth[index])] * args.copies
        origin += [int(index)] * args.copies
    copies_arr = np.concatenate(copies).astype(np.float32)
    embeddings = {}
    for method in [m for m in args.methods if m in ("disca", "autoencoder")]:
        start = time.perf_counter()
        _, _, model = run_method(args, method, volumes, references, tilt)
        features = model.transform(copies_arr)
        perplexity = min(30.0, (len(copies_arr) - 1) / 3)
        tsne = TSNE(n_components=2, random_state=args.seed, init="pca", perplexity=perplexity)
        embeddings[method] = (tsne.fit_transform(np.asarray(features, np.float64)),
                              time.perf_counter() - start)  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for method, (points, seconds) in embeddings.items():
        figure, axis = plt.subplots(figsize=(5, 5))
        for k in np.unique(classes):
            mask = np.asarray(classes) == k
            axis.scatter(points[mask, 0], points[mask, 1], s=3, label=args.structures[k])
        axis.set_title(
            f"{LABELS[method]}: {args.copies} rotated + shifted copies\n"
            f"of {args.per_class_originals} subtomograms per class",
            fontsize=10,
        )
        axis.set(xticks=[], yticks=[])
        axis.legend(markerscale=4, fontsize=7)
        figure.tight_layout()
        figure.savefig(args.out_dir / f"invariance_{method}.png", dpi=120)
        lines.append(f"![{method}](invariance_{method}.png) ({seconds:.0f} s)")
    payload = {"title": "Invariance: t-SNE of transformed copies", "command": command,
               "machine": _machine(), "arguments": vars(args), "origin": origin,
               "classes": classes,
               "tsne": {m: p.tolist() for m, (p, _) in embeddings.items()}}  # fmt: skip
    write_report(args, "invariance", payload, lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--experiment", choices=["table", "sample-size", "invariance"], default="table")
    add("--structures", default=",".join(STRUCTURES), help="comma-separated structure names")
    add("--methods", default=",".join(METHODS), help="comma-separated: " + ", ".join(METHODS))
    add("--settings", default=None, help="TILT:SNR pairs, e.g. 60:0.1,40:0.01 (default all 10)")
    add("--per-class", type=int, default=400, help="subtomograms per structure")
    add("--sizes", default="50,100,200,400", help="sample-size experiment: total subtomograms")
    add("--copies", type=int, default=200, help="invariance: transformed copies per original")
    add("--per-class-originals", type=int, default=5, help="invariance: originals per class")
    add("--box", type=int, default=24, help="box edge, voxels")
    add("--voxel-size", type=float, default=16.0, help="voxel size, Å")
    add("--mode", default="tilt-series", choices=["tilt-series", "fourier"],
        help="imaging of the projection noise model")  # fmt: skip
    add("--noise-model", default="projection", choices=["projection", "paper"],
        help="projection: every subtomogram at exactly the SNR; paper: the DISCA paper's 3-D "
        "protocol, SNR nominal (docs/simulation.md)")  # fmt: skip
    add("--no-normalize", dest="normalize", action="store_false",
        help="leave the simulated subtomograms unnormalized (the paper's data are)")  # fmt: skip
    add(
        "--no-zscore",
        dest="zscore",
        action="store_false",
        help="DISCA rows: skip the per-subtomogram z-score, as the paper's reference code does",
    )
    add("--k-range", type=int, nargs=2, default=[2, 20], help="candidate K (min max)")
    add("--width", type=float, default=0.25, help="DISCA YOPO width multiplier")
    add("--max-iter", type=int, default=20, help="DISCA EM iterations")
    add("--pca-components", type=int, default=16, help="PCA dimensions for the mixtures")
    add("--tm-step", type=float, default=30.0, help="template matching global grid step, degrees")
    add(
        "--tm-per-class",
        type=int,
        default=None,
        help="template matching: classify only the first N per class of the same data "
        "(its decisions are per particle, so the rates estimate the full set's)",
    )
    add("--tm-refine-to", type=float, default=7.5, help="template matching finest step, degrees")
    add("--mpp-max-iter", type=int, default=100, help="MPP iterations")
    add("--ae-epochs", type=int, default=30, help="autoencoder training epochs")
    add("--seed", type=int, default=0)
    add("--device", default="auto")
    add("--out-dir", type=Path, default=Path(__file__).parent / "results" / "sorting_table1")
    args = parser.parse_args(argv)
    args.structures = [s.strip() for s in args.structures.split(",") if s.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in args.methods:
        if method not in METHODS:
            raise SystemExit(f"--methods: unknown {method!r}; expected {', '.join(METHODS)}")
    command = "python benchmarks/sorting_table1.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    print(command, flush=True)
    {"table": experiment_table, "sample-size": experiment_sample_size,
     "invariance": experiment_invariance}[args.experiment](args, command)  # fmt: skip


if __name__ == "__main__":
    main()
