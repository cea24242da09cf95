"""Benchmark: TomoTwin beside cryomine's picker on the CPU — training cost, embedding speed, F1.

TomoTwin (tomotwin-cryoet, MPL-2.0) runs in its own venv (``benchmarks/peers/install_tomotwin.sh``)
through ``benchmarks/peers/tomotwin_launcher.py``; nothing of it is imported here. Its published
model cannot be downloaded on these machines, so a TomoTwin model is trained briefly on the same
kind of subvolumes the shipped cryomine model was trained on. Stages, each skipped when its output
exists in ``--work`` (so a crashed run resumes):

1. ``subvolumes``: windows of TomoTwin's size (37³ at 10 Å) cut from pools of small crowded
   tomograms made by ``cryomine.picker.simulate_window_pool`` (the picker's own training
   simulation, every training structure + membrane, gold, background; BENCHMARKS.md §6's unseen
   six left out), written as MRC with TomoTwin's ``id<code>`` file-name labels, protein white
   (TomoTwin inverts tomograms, not subvolumes). A second pool (new seed) is its validation set.
2. ``train``: ``tomotwin_train.py`` with TomoTwin's published SiameseNet configuration
   (resources/configs/config_siamese.json: 32-d, triplet loss on cosine distance, semi-hard
   mining, Adam 5.9e-5), except the batch size (``--batch-size``, 35 in the published file).
3. ``tomogram``: one crowded test tomogram at 10 Å (the ``unseen`` set of
   ``benchmarks/picker_f1.py``: the six unseen proteins among four training structures, SNR 0.1,
   a vesicle, gold), small enough for TomoTwin's window-by-window embedding on two cores.
4. ``tomotwin``: embed the tomogram (``--stride``), embed one example particle per structure
   (its first true particle, 37³ cut), ``map distance``, ``locate findmax`` with the particle
   diameter as box size, then every located pick above its ``global_min`` default (0.5).
5. cryomine, in this process: the shipped model, embedded at stride 4 (its default) and at
   TomoTwin's stride, one example per structure, automatic threshold; DoG beside both.

Scoring: hits within half the particle radius and within 8 nm, one-to-one
(``cryomine.evaluate.match_positions``), on the particles whose centres TomoTwin can reach
(≥ 18 voxels from every face: its windows lie wholly inside the tomogram); picks outside that
region and on the example are not counted, for every method alike. Speed: seconds per window of
TomoTwin's embedding, extrapolated to a 200 × 512 × 512 tomogram at strides 2 (TomoTwin's
default) and 4, beside cryomine's measured dense embedding of such a volume.

    OMP_NUM_THREADS=2 python benchmarks/tomotwin_side_by_side.py /work/shared/data/structures/maps \
        --work runs/tomotwin --out benchmarks/results/tomotwin
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import torch
from picker_f1 import (
    CROWD,
    UNSEEN,
    _densities,
    _scores,
    example_similarity,
    similarity_picks,
    simulate_benchmark_tomogram,
)
from picker_train import training_maps

from cryomine._runrecord import machine_description
from cryomine.io import positions_zyx
from cryomine.io._atomic import atomic_write_text
from cryomine.matching import (
    extract_peaks,
    false_alarm_threshold,
    make_template,
    run_search,
    search_rotations,
)
from cryomine.picker import (
    AUTO_THRESHOLD_MADS,
    EXTRA_CLASSES,
    TrainingConditions,
    cut_windows,
    embed_tomogram,
    load_picker,
    normalize_tomogram,
    simulate_window_pool,
)
from cryomine.picking import pick_particles
from cryomine.simulate import load_structure_densities

PEERS = Path(__file__).resolve().parent / "peers"
LAUNCHER = PEERS / "tomotwin_launcher.py"
VOXEL_A = 10.0
TT_WINDOW = 37
#: TomoTwin's published SiameseNet configuration (resources/configs/config_siamese.json).
TT_CONFIG = {
    "identifier": "SiameseNet",
    "network_config": {
        "output_channels": 32,
        "dropout": 0.2,
        "repeat_layers": 0,
        "norm_name": "GroupNorm",
        "norm_kwargs": {"num_groups": 64, "num_channels": 1024},
        "gem_pooling_p": 0,
    },
    "train_config": {
        "loss": "TripletLoss",
        "tl_margin": 0.539,
        "miner": True,
        "miner_margin": 0.734,
        "learning_rate": 5.945e-05,
        "optimizer": "Adam",
        "weight_decay": 0,
        "batchsize": 35,
        "patience": 50,
        "aug_train_shift_distance": 2,
    },
    "distance": "COSINE",
}
K_GRID = (8, 10, 12, 15, 20, 25, 30, 40)
TM_ANGULAR_STEP_DEG = 30.0
TT_METRIC_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _tomotwin(python: Path, *args: str, log: Path) -> float:
    """Run one TomoTwin command through the launcher; its wall time in seconds."""
    start = time.perf_counter()
    with log.open("a") as handle:
        handle.write(f"$ tomotwin {' '.join(args)}\n")
        handle.flush()
        done = subprocess.run(
            [str(python), str(LAUNCHER), *args], stdout=handle, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise SystemExit(f"TomoTwin {args[0]} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def _write_subvolume(path: Path, window: np.ndarray) -> None:
    with mrcfile.new(path, overwrite=True) as handle:
        handle.set_data(np.ascontiguousarray(window, dtype=np.float32))
        handle.voxel_size = VOXEL_A


def write_subvolumes(
    maps_dir: Path, folder: Path, *, seeds: list[int], per_class: int, rng_seed: int
) -> dict[str, object]:
    """Stage 1: TomoTwin-labelled 37³ training subvolumes from the picker's training pools."""
    paths = training_maps(maps_dir)
    loaded = load_structure_densities(paths, voxel_size_a=VOXEL_A, box_size=None)
    densities = {name.removesuffix("_10A"): d for name, d in loaded.items()}
    names = list(densities)
    codes = {name: f"9{i:03d}" for i, name in enumerate([*names, *EXTRA_CLASSES])}
    conditions = TrainingConditions()
    rng = np.random.default_rng(rng_seed)
    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for seed in seeds:
        pool = simulate_window_pool(densities, names, conditions=conditions, seed=seed)
        for label, name in enumerate(pool.class_names):
            rows = np.flatnonzero(pool.labels == label)
            rows = rng.permutation(rows)[: max(0, per_class - counts.get(name, 0))]
            windows = pool.windows(rows, TT_WINDOW, rng=None, shift_px=0)
            for window in windows:
                i = counts.get(name, 0)
                _write_subvolume(tmp / f"id{codes[name]}_{i:03d}.mrc", -window)
                counts[name] = i + 1
    tmp.rename(folder)
    return {"codes": codes, "counts": counts, "pool_seeds": seeds}


def _reachable(centres: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Centres whose TomoTwin window lies wholly inside the tomogram."""
    half = TT_WINDOW // 2
    upper = np.asarray(shape) - 1 - half
    return np.all((centres >= half) & (centres <= upper), axis=1)


def _inside(picks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return picks[_reachable(picks, shape)] if len(picks) else picks


def _not_near(picks: np.ndarray, example: np.ndarray, radius_px: float) -> np.ndarray:
    if len(picks) == 0:
        return picks
    return picks[np.linalg.norm(picks - example[None, :], axis=1) > radius_px]


def _scored(
    picks: np.ndarray,
    *,
    truth: np.ndarray,
    example: np.ndarray,
    radius_px: float,
    shape: tuple[int, ...],
) -> dict[str, object]:
    """Scores of the picks TomoTwin could reach, the example's own pick left out."""
    kept = _not_near(_inside(picks, shape), example, radius_px)
    return {"half_radius": _scores(truth, kept, radius_px), "8nm": _scores(truth, kept, 8.0)}


def template_matching_picks(
    density: np.ndarray, tomogram: np.ndarray, job_dir: Path, record: dict, name: str
) -> np.ndarray:
    """Picks of ``cryomine match`` with the true structure as template, at the false-alarm
    cut-off (F = 1) of a 30° search; the search time goes into ``record``. Resumable: the
    picks are kept in ``job_dir/picks.npy``."""
    done = job_dir / "picks.npy"
    if done.exists():
        return np.load(done)
    template = make_template(
        density, voxel_size_a=VOXEL_A, tilt_range_deg=(-60.0, 60.0), defocus_um=5.0
    )
    rotations = search_rotations(TM_ANGULAR_STEP_DEG)
    t0 = time.perf_counter()
    job = run_search(tomogram, template, rotations, job_dir, voxel_size_a=VOXEL_A, overwrite=True)
    record.setdefault("template_matching_s", {})[name] = time.perf_counter() - t0
    with mrcfile.open(job_dir / "scores.mrc") as handle:
        scores = np.array(handle.data)
    threshold = false_alarm_threshold(
        job["statistics"]["std"], job["n_positions"], len(rotations), 1.0
    )
    radius = float(template.parameters["mask_radius_px"])
    picks = extract_peaks(scores, threshold=threshold, exclusion_radius_px=radius).positions_zyx
    np.save(job_dir / "picks.partial.npy", picks)
    (job_dir / "picks.partial.npy").rename(done)
    return picks


def _windows(shape: tuple[int, ...], stride: int) -> int:
    return int(np.prod([(n - TT_WINDOW) // stride + 1 for n in shape]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps_dir", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="resumable working folder")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tomotwin"))
    parser.add_argument("--python", type=Path, default=PEERS / ".venv-tomotwin/bin/python")
    parser.add_argument("--per-class", type=int, default=12, help="training subvolumes per class")
    parser.add_argument("--epochs", type=int, default=2, help="total, with --checkpoint's")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="continue training a TomoTwin model of an earlier --work (its final.pth)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=(96, 192, 192))
    parser.add_argument("--copies", type=int, default=6, help="particles per structure")
    parser.add_argument("--membranes", type=int, default=1, help="vesicles in the tomogram")
    parser.add_argument("--gold", type=int, default=4, help="gold beads in the tomogram")
    parser.add_argument("--stride", type=int, default=8, help="TomoTwin's embedding stride")
    parser.add_argument("--seed", type=int, default=300, help="test tomogram seed")
    args = parser.parse_args()
    if not args.python.exists():
        raise SystemExit(f"{args.python}: run benchmarks/peers/install_tomotwin.sh first")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    log = work / "tomotwin.log"
    record_path = work / "record.json"
    record: dict = json.loads(record_path.read_text()) if record_path.exists() else {}
    record["command"] = " ".join(sys.argv)
    record["machine"] = machine_description()

    def save() -> None:
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")

    # 1. subvolumes
    for split, seeds, per_class in (
        ("train", [5000, 5001], args.per_class),
        ("valid", [5100], max(2, args.per_class // 4)),
    ):
        folder = work / f"subvolumes_{split}"
        if not folder.exists():
            t0 = time.perf_counter()
            info = write_subvolumes(
                args.maps_dir, folder, seeds=seeds, per_class=per_class, rng_seed=seeds[0]
            )
            record[f"subvolumes_{split}"] = {**info, "wall_s": time.perf_counter() - t0}
            save()
            print(f"{split} subvolumes: {sum(info['counts'].values())}", flush=True)

    # 2. TomoTwin training
    model_dir = work / "tomotwin_model"
    model_path = model_dir / "final.pth"
    if not model_path.exists():
        config = json.loads(json.dumps(TT_CONFIG))
        config["train_config"]["batchsize"] = args.batch_size
        (work / "config_siamese.json").write_text(json.dumps(config, indent=2))
        wall = _tomotwin(
            args.python,
            "train",
            "-v", str(work / "subvolumes_train"),
            "--validvolumes", str(work / "subvolumes_valid"),
            "-o", str(model_dir),
            "-nc", str(work / "config_siamese.json"),
            "--epochs", str(args.epochs),
            *(["--checkpoint", str(args.checkpoint)] if args.checkpoint else []),
            log=log,
        )  # fmt: skip
        earlier = {}
        if args.checkpoint is not None:
            earlier_record = json.loads((args.checkpoint.parent.parent / "record.json").read_text())
            earlier = {"continued_from": str(args.checkpoint), **earlier_record["tomotwin_train"]}
        record["tomotwin_train"] = {
            "wall_s": wall + earlier.get("wall_s", 0.0),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "earlier": earlier,
        }
        save()
        print(f"TomoTwin trained in {wall:.0f} s", flush=True)

    # 3. the test tomogram
    names = UNSEEN + CROWD
    densities = _densities(args.maps_dir, names)
    simulated = simulate_benchmark_tomogram(
        densities,
        args.seed,
        shape=tuple(args.shape),
        copies=args.copies,
        n_membranes=args.membranes,
        n_gold=args.gold,
    )
    volume = normalize_tomogram(simulated.tomogram)
    tomo_path = work / "tomogram.mrc"
    if not tomo_path.exists():
        with mrcfile.new(tomo_path) as handle:
            handle.set_data(volume.astype(np.float32))
            handle.voxel_size = VOXEL_A
    centres = positions_zyx(simulated.table)
    labels = simulated.table["cmStructure"].to_numpy()
    radii = simulated.parameters["bounding_radii_px"]
    diameters_px = {name: 2.0 * radii[name] for name in names}

    # 4. TomoTwin: references, embedding, map, locate
    refs = work / "references"
    if not refs.exists():
        tmp = work / "references.partial"
        tmp.mkdir(exist_ok=True)
        for name in names:
            example = centres[labels == name][:1]
            _write_subvolume(tmp / f"{name}.mrc", -cut_windows(volume, example, TT_WINDOW)[0])
        tmp.rename(refs)
    tt_model = str(model_path)
    emb_dir, ref_dir, map_dir, loc_dir = (work / d for d in ("emb", "refemb", "map", "locate"))
    if not (emb_dir / "tomogram_embeddings.temb").exists():
        wall = _tomotwin(
            args.python, "embed", "tomogram", "-m", tt_model, "-v", str(tomo_path),
            "-o", str(emb_dir), "-s", str(args.stride), "-b", "64", "-d", "0", log=log,
        )  # fmt: skip
        record["tomotwin_embed"] = {
            "wall_s": wall,
            "stride": args.stride,
            "shape_zyx": list(volume.shape),
            "windows": _windows(volume.shape, args.stride),
        }
        save()
        print(f"TomoTwin embedded the tomogram in {wall:.0f} s", flush=True)
    if not (ref_dir / "embeddings.temb").exists():
        _tomotwin(
            args.python, "embed", "subvolumes", "-m", tt_model, "-v", str(refs),
            "-o", str(ref_dir), log=log,
        )  # fmt: skip
    if not (map_dir / "map.tmap").exists():
        record["tomotwin_map_s"] = _tomotwin(
            args.python, "map", "distance", "-r", str(ref_dir / "embeddings.temb"),
            "-v", str(emb_dir / "tomogram_embeddings.temb"), "-o", str(map_dir), log=log,
        )  # fmt: skip
    located_csv = loc_dir / "located.csv"
    if not located_csv.exists():
        boxes = {f"{name}.mrc": round(diameters_px[name]) for name in names}
        (work / "boxsizes.json").write_text(json.dumps(boxes, indent=2))
        record["tomotwin_locate_s"] = _tomotwin(
            args.python, "locate", "findmax", "-m", str(map_dir / "map.tmap"),
            "-o", str(loc_dir), "-b", str(work / "boxsizes.json"), log=log,
        )  # fmt: skip
        dump = (
            "import json, sys, pandas as pd; df = pd.read_pickle(sys.argv[1]); "
            "df[['X', 'Y', 'Z', 'metric_best', 'size', 'predicted_class']].to_csv(sys.argv[2], "
            "index=False); json.dump(list(df.attrs['references']), open(sys.argv[3], 'w'))"
        )
        subprocess.run(
            [str(args.python), "-c", dump, str(loc_dir / "located.tloc"), str(located_csv),
             str(loc_dir / "references.json")],
            check=True,
        )  # fmt: skip
        save()
    if "tomotwin_map_similarity" not in record:
        spread = (
            "import json, sys, numpy as np, pandas as pd; m = pd.read_pickle(sys.argv[1]); "
            "d = m[[c for c in m.columns if c.startswith('d_class_')]].to_numpy(np.float64); "
            "print(json.dumps({q: float(np.percentile(d, float(q))) for q in "
            "('1', '50', '99')}))"
        )
        done = subprocess.run(
            [str(args.python), "-c", spread, str(map_dir / "map.tmap")],
            check=True,
            capture_output=True,
            text=True,
        )
        record["tomotwin_map_similarity"] = json.loads(done.stdout.strip().splitlines()[-1])
        save()
    references = [Path(r).name for r in json.loads((loc_dir / "references.json").read_text())]
    with located_csv.open() as handle:
        located = list(csv.DictReader(handle))

    # 5. cryomine's shipped model at its stride and at TomoTwin's, and DoG
    model = load_picker(None)
    embeddings: dict[int, np.ndarray] = {}
    for stride in sorted({4, args.stride}):
        t0 = time.perf_counter()
        embeddings[stride] = embed_tomogram(model, volume, stride=stride)
        record.setdefault("cryomine_embed_s", {})[str(stride)] = time.perf_counter() - t0
    noise = np.random.default_rng(0).normal(size=(200, 512, 512)).astype(np.float32)
    t0 = time.perf_counter()
    embed_tomogram(model, noise, stride=4)
    record["cryomine_embed_200x512x512_stride4_s"] = time.perf_counter() - t0
    del noise

    per_structure: dict[str, dict] = {}
    for name in names:
        members = centres[labels == name]
        example, rest = members[0], members[1:]
        truth = rest[_reachable(rest, volume.shape)]
        radius_half_px = 0.25 * diameters_px[name]

        scored = functools.partial(
            _scored, truth=truth, example=example, radius_px=radius_half_px, shape=volume.shape
        )

        entry: dict[str, object] = {"n_true": len(truth), "diameter_px": diameters_px[name]}
        target = references.index(f"{name}.mrc")
        rows = [r for r in located if int(r["predicted_class"]) == target]
        xyz = np.array([[float(r["Z"]), float(r["Y"]), float(r["X"])] for r in rows])
        metric = np.array([float(r["metric_best"]) for r in rows])
        xyz = xyz.reshape(-1, 3)
        entry["tomotwin"] = scored(xyz)
        entry["tomotwin_by_metric"] = {f"{m:g}": scored(xyz[metric >= m]) for m in TT_METRIC_GRID}
        for stride, emb in embeddings.items():
            similarity = example_similarity(model, volume, example[None, :], emb)
            by_k = {
                f"{k:g}": scored(
                    similarity_picks(
                        similarity, stride=stride, diameter_a=diameters_px[name] * VOXEL_A,
                        k=k, tomogram_shape=volume.shape,
                    )
                )
                for k in sorted({*K_GRID, AUTO_THRESHOLD_MADS})
            }  # fmt: skip
            entry[f"cryomine_stride{stride}"] = by_k[f"{AUTO_THRESHOLD_MADS:g}"]
            entry[f"cryomine_stride{stride}_by_k"] = by_k
        dog = pick_particles(
            simulated.tomogram,
            voxel_size_a=VOXEL_A,
            diameter_a=diameters_px[name] * VOXEL_A,
            contrast="dark",
        )
        entry["dog"] = scored(dog.positions_zyx)
        entry["template_matching"] = scored(
            template_matching_picks(
                densities[name], simulated.tomogram, work / f"tm_{name}", record, name
            )
        )
        save()
        per_structure[name] = entry
    record["per_structure"] = per_structure
    record["auto_threshold_k"] = AUTO_THRESHOLD_MADS
    save()
    write_report(record, args, names)


def _f1(entry: dict, key: str, criterion: str = "half_radius") -> float:
    return float(entry[key][criterion]["f1"])


def _best(entry: dict, key: str) -> float:
    return max(float(v["half_radius"]["f1"]) for v in entry[key].values())


def write_report(record: dict, args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Markdown beside the JSON record in ``args.out``."""
    per = record["per_structure"]
    s = args.stride
    columns = [
        ("TomoTwin", "tomotwin"),
        (f"cryomine stride {s}", f"cryomine_stride{s}"),
        ("cryomine stride 4", "cryomine_stride4"),
        ("DoG", "dog"),
        ("template matching", "template_matching"),
    ]
    lines = [
        "# TomoTwin beside cryomine's picker on two CPU cores",
        "",
        f"Command: `{record['command']}`; machine: {record['machine']['cpu']}. "
        "TomoTwin 0.9.1.2 (its SiameseNet, trained here) and cryomine's shipped picker; "
        "one example particle per structure; F1 with hits within half the particle radius "
        "(8 nm in brackets), on particles whose centres TomoTwin's windows reach.",
        "",
        "| structure | n | "
        + " | ".join(f"{label} F1" for label, _ in columns)
        + f" | ceiling: TomoTwin best metric | cryomine stride {s} best k |",
        "|---|---|" + "---|" * (len(columns) + 2),
    ]
    for name in names:
        e = per[name]
        cells = [f"{_f1(e, key):.3f} ({_f1(e, key, '8nm'):.3f})" for _, key in columns]
        lines.append(
            f"| {name}{' (unseen)' if name in UNSEEN else ''} | {e['n_true']} | "
            + " | ".join(cells)
            + f" | {_best(e, 'tomotwin_by_metric'):.3f} | {_best(e, f'cryomine_stride{s}_by_k'):.3f} |"
        )
    lines += ["", "| set | " + " | ".join(f"median {label} F1" for label, _ in columns) + " |"]
    lines.append("|---|" + "---|" * len(columns))
    for label, group in (("unseen six", UNSEEN), ("training four", CROWD)):
        medians = [float(np.median([_f1(per[n], key) for n in group])) for _, key in columns]
        lines.append(f"| {label} | " + " | ".join(f"{m:.3f}" for m in medians) + " |")
    pooled = []
    for _, key in columns:
        n_true = sum(per[n]["n_true"] for n in names)
        n_picked = sum(per[n][key]["half_radius"]["n_picked"] for n in names)
        hits = sum(round(per[n][key]["half_radius"]["recall"] * per[n]["n_true"]) for n in names)
        pooled.append(2 * hits / (n_true + n_picked) if n_true + n_picked else 0.0)
    lines.append("| all ten, pooled | " + " | ".join(f"{f:.3f}" for f in pooled) + " |")
    embed = record["tomotwin_embed"]
    per_window = embed["wall_s"] / embed["windows"]
    big = (200, 512, 512)
    lines += [
        "",
        f"TomoTwin training: {record['tomotwin_train']['epochs']} epochs, batch "
        f"{record['tomotwin_train']['batch_size']}, "
        f"{sum(record['subvolumes_train']['counts'].values())} subvolumes, "
        f"{record['tomotwin_train']['wall_s'] / 60:.1f} min. Its similarity map (cosine, all "
        "references, all windows), percentiles 1 / 50 / 99: "
        + " / ".join(f"{v:.3f}" for v in record["tomotwin_map_similarity"].values())
        + ".",
        f"Embedding {tuple(embed['shape_zyx'])}: TomoTwin stride {embed['stride']} "
        f"{embed['wall_s']:.0f} s ({embed['windows']} windows, {per_window:.3f} s per window); "
        + ", ".join(f"cryomine stride {k} {v:.1f} s" for k, v in record["cryomine_embed_s"].items())
        + ".",
        f"Template matching (true structure as template, {TM_ANGULAR_STEP_DEG:g}° step, "
        f"cut-off F = 1): {sum(record['template_matching_s'].values()):.0f} s for "
        f"{len(record['template_matching_s'])} structures.",
        f"200 × 512 × 512: cryomine stride 4 measured "
        f"{record['cryomine_embed_200x512x512_stride4_s']:.1f} s; TomoTwin extrapolated at "
        f"{per_window:.3f} s per window: stride 2 {_windows(big, 2) * per_window / 3600:.1f} h, "
        f"stride 4 {_windows(big, 4) * per_window / 3600:.1f} h.",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "tomotwin_side_by_side.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(args.out / "tomotwin_side_by_side.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
