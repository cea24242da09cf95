"""RELION 3.1 maximum-likelihood 3-D classification beside cryomine, on the same subtomograms.

Issue #13's peer: what practitioners run today to sort subtomograms, RELION's ``relion_refine
--K`` (Debian's ``relion`` 3.1.3, a CPU build; ``benchmarks/peers/install_relion.sh``). For every
size (``--sizes``, ``CLASSESxPER_CLASS``, the first C of the validation structures 4v7r, 4cr2,
1qvr, 3cf3, 5gjv), SNR (``--snrs``) and seed (``--seeds``) the script simulates exactly the data
``benchmarks/disca_validation.py`` sorts (``simulate_subtomograms(..., tilt_range_deg=(-60, 60),
voxel_size_a=16, mode="fourier", seed=seed)``: 24³, ±2-voxel shifts, random orientations, 3-D CTF
× missing wedge, WBP-coloured noise in the wedge, each subtomogram at exactly the SNR, z-scored),
writes it for RELION, runs one classification at the true K and scores RELION's final
``rlnClassNumber`` with :func:`cryomine.evaluate.sorting_metrics`.

What RELION is given (RELION 3.0/3.1 subtomogram convention)
------------------------------------------------------------
- One 3-D MRC per subtomogram (``particles/pNNNNN.mrc``, float32, voxel size in the header),
  the simulated volume as is (protein bright).
- One 3-D CTF volume per subtomogram (``ctf/pNNNNN.mrc``) in the ``rlnCtfImage`` column. RELION
  3.1.3 (``MlOptimiser::getFourierTransformsAndCtfs``, read for the fact, no code copied) accepts
  either a cubic N³ volume with the zero frequency at the centre or the FFTW half-complex layout
  of ``N × N × (N/2 + 1)`` voxels (x the short axis; z and y unshifted, frequency 0 first), which
  it uses as the transfer ``Fctf`` of that particle directly; the data model is
  ``X = Fctf · P(V) + noise`` unless the optics group says ``rlnCtfDataAreCtfPremultiplied 1``
  (then ``Fctf²``, for data already multiplied by the CTF, as Warp writes them). The
  subtomograms here are not premultiplied, so the volume is the **signed** transfer the
  simulation applied, ``-ctf(k) · wedge(k)`` in the rfftn half layout (``(z, y, x//2 + 1)``, which
  is FFTW's) — :func:`cryomine.reconstruct.ctf` (its sign makes protein dark; the minus brings it
  bright, as the simulator does) with the simulation's own defocus, voltage, Cs, amplitude
  contrast and B-factor (``sim.parameters``), times :func:`cryomine.geometry.missing_wedge_mask`
  with its tilt range about y. This is the forward model of the data exactly: on noise-free
  data ``irfftn(rfftn(density) · ctf_volume)`` is the simulated signal.
- A RELION 3.1 STAR file: ``data_optics`` (one group: ``rlnImagePixelSize`` 16,
  ``rlnImageSize`` 24, ``rlnImageDimensionality`` 3, ``rlnVoltage``, ``rlnSphericalAberration``,
  ``rlnAmplitudeContrast`` of the simulation, ``rlnCtfDataAreCtfPremultiplied`` 0) and
  ``data_particles`` (``rlnImageName``, ``rlnCtfImage``, ``rlnMicrographName``,
  ``rlnCoordinateX/Y/Z``, ``rlnOpticsGroup``). No truth column reaches RELION.
- The initial reference: the average of all subtomograms (random orientations: a blob),
  low-passed to ``--ref-lowpass`` Å (60) with a raised-cosine edge; RELION low-passes it to
  ``--ini_high`` as well. It is not CTF-corrected (no ``--ctf_corrected_ref``).

The run (flags as recorded in every cell; ``--j`` is ``--threads``)::

    relion_refine --i particles.star --o out/run --ref ref.mrc --ini_high 60 --K <true K>
        --iter 25 --tau2_fudge 4 --particle_diameter 320 --flatten_solvent --zero_mask --ctf
        --sym C1 --healpix_order 2 --offset_range 3 --offset_step 1 --oversampling 1 --norm
        --scale --pad 2 --j 1 --pool 3 --dont_combine_weights_via_disc --random_seed <seed>

Healpix order 2 is 15° (RELION samples all three angles for 3-D data), shifts ±3 voxels in
1-voxel steps (the true shifts are within ±2 per axis); oversampling 1 halves both in the fine
pass. Cost on the 2-core shared machine of the committed run (one thread, load average ~5):
these defaults took ~15 min for the first iteration of a 3 × 10 smoke run (~30 s per particle and
iteration: 36 864 fine orientations × 984 fine translations), i.e. ~37 h for one 3 × 60 cell of
25 iterations, so the committed cells use ``--healpix-order 1 --offset-step 2`` (30° coarse, 15°
fine; 2-voxel coarse, 1-voxel fine shifts; ~0.2 s per particle and iteration), a choice made for
the time budget before any cell had run, not tuned on outcomes (``results.md`` states it). RELION switches ``--norm`` off for 3-D data by
itself. Classification runs exactly ``--iter`` iterations (no convergence stop); the labels are
those of the last ``_data.star``; K found counts the classes that received particles. The wall
time is that of ``relion_refine`` alone (``OMP_NUM_THREADS`` = ``--threads``); writing the inputs
is timed apart. Every cell is ``--out-dir/cells/<C>x<N>_snr<SNR>_seed<S>.json``; cells that exist
are skipped, so an interrupted run resumes. Examples::

    benchmarks/peers/install_relion.sh
    python benchmarks/relion_classify.py --sizes 3x10 --snrs 0.1 --iter 2 --out-dir /tmp/relion
    python benchmarks/relion_classify.py --sizes 3x60 --snrs 0.1,0.03 --seeds 0
    python benchmarks/relion_classify.py --sizes 3x60,5x100 --snrs 0.1,0.03 --seeds 0 --threads 2
    python benchmarks/relion_classify.py --summary-only --healpix-order 1 --offset-step 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pandas as pd
import starfile
import torch
from disca_validation import (  # same set and --sizes (script dir on sys.path)
    VALIDATION,
    parse_sizes,
)

from cryomine._runrecord import machine_description
from cryomine.evaluate import sorting_metrics
from cryomine.geometry import missing_wedge_mask
from cryomine.reconstruct import ctf
from cryomine.simulate import simulate_subtomograms

RESULTS = Path(__file__).parent / "results" / "relion"


def relion_version() -> str:
    """``relion_refine --version`` (first line), or why it could not be run."""
    try:
        done = subprocess.run(["relion_refine", "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        return "relion_refine not found (run benchmarks/peers/install_relion.sh)"
    text = (done.stdout + done.stderr).strip().splitlines()
    package = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "relion"],
                             capture_output=True, text=True)  # fmt: skip
    suffix = f" (Debian package {package.stdout.strip()})" if package.returncode == 0 else ""
    return (text[0].strip() if text else "unknown") + suffix


def _machine(threads: int) -> dict[str, Any]:
    return {**machine_description(), "load_average_1min": os.getloadavg()[0],
            "relion_threads": threads}  # fmt: skip


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)


def _write_mrc(path: Path, volume: np.ndarray, voxel_size_a: float) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(volume, dtype=np.float32))
        mrc.voxel_size = voxel_size_a


def ctf_wedge_volume(parameters: dict[str, Any]) -> np.ndarray:
    """The simulation's signed transfer ``-CTF · wedge``, FFTW half layout ``(n, n, n // 2 + 1)``.

    ``z`` and ``y`` unshifted (frequency 0 first), ``x`` the half axis: RELION 3.1's
    ``rlnCtfImage`` layout for 3-D data, written with x the fastest MRC axis.
    """
    n = int(parameters["box_size"])
    shape = (n, n, n)
    transfer = -ctf(
        shape, parameters["voxel_size_a"], defocus_um=parameters["defocus_um"],
        voltage_kv=parameters["voltage_kv"], cs_mm=parameters["cs_mm"],
        amplitude_contrast=parameters["amplitude_contrast"],
        b_factor_a2=parameters["b_factor_a2"], rfft=True,
    ).numpy()  # fmt: skip
    wedge = missing_wedge_mask(
        shape, tilt_range_deg=tuple(parameters["tilt_range_deg"]), tilt_axis="y", rfft=True
    )
    return (transfer * wedge).astype(np.float32)


def lowpass(volume: np.ndarray, voxel_size_a: float, resolution_a: float) -> np.ndarray:
    """Low-pass to ``resolution_a`` Å, raised-cosine edge one Fourier shell wide."""
    n = volume.shape[0]
    kz = np.fft.fftfreq(n)[:, None, None]
    ky = np.fft.fftfreq(n)[None, :, None]
    kx = np.fft.rfftfreq(n)[None, None, :]
    radius = np.sqrt(kz**2 + ky**2 + kx**2) * n  # in Fourier shells
    cutoff = n * voxel_size_a / resolution_a
    ramp = np.clip(radius - cutoff + 0.5, 0.0, 1.0)
    filt = 0.5 * (1.0 + np.cos(np.pi * ramp))
    axes = (0, 1, 2)
    spectrum = np.fft.rfftn(volume, axes=axes) * filt
    return np.fft.irfftn(spectrum, s=volume.shape, axes=axes).astype(np.float32)


def write_inputs(work: Path, volumes: np.ndarray, parameters: dict[str, Any],
                 ref_lowpass_a: float) -> dict[str, Any]:  # fmt: skip
    """Particles, CTF volumes, ``particles.star`` and ``ref.mrc`` under ``work``."""
    voxel = float(parameters["voxel_size_a"])
    n = int(parameters["box_size"])
    (work / "particles").mkdir(parents=True, exist_ok=True)
    (work / "ctf").mkdir(parents=True, exist_ok=True)
    ctf_volume = ctf_wedge_volume(parameters)
    names, ctf_names = [], []
    for i, volume in enumerate(volumes):
        name, ctf_name = f"particles/p{i:05d}.mrc", f"ctf/p{i:05d}.mrc"
        _write_mrc(work / name, volume, voxel)
        _write_mrc(work / ctf_name, ctf_volume, voxel)  # same optics for every subtomogram
        names.append(name)
        ctf_names.append(ctf_name)
    optics = pd.DataFrame({
        "rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1],
        "rlnVoltage": [float(parameters["voltage_kv"])],
        "rlnSphericalAberration": [float(parameters["cs_mm"])],
        "rlnAmplitudeContrast": [float(parameters["amplitude_contrast"])],
        "rlnImagePixelSize": [voxel], "rlnImageSize": [n], "rlnImageDimensionality": [3],
        "rlnCtfDataAreCtfPremultiplied": [0],
    })  # fmt: skip
    centre = float(n // 2)
    particles = pd.DataFrame({
        "rlnImageName": names, "rlnCtfImage": ctf_names,
        "rlnMicrographName": ["simulated"] * len(names),
        "rlnCoordinateX": centre, "rlnCoordinateY": centre, "rlnCoordinateZ": centre,
        "rlnOpticsGroup": 1,
    })  # fmt: skip
    starfile.write({"optics": optics, "particles": particles}, work / "particles.star",
                   overwrite=True)  # fmt: skip
    reference = lowpass(volumes.mean(axis=0), voxel, ref_lowpass_a)
    _write_mrc(work / "ref.mrc", reference, voxel)
    return {"ctf_volume_shape_zyx": list(ctf_volume.shape),
            "ctf_volume_min_max": [float(ctf_volume.min()), float(ctf_volume.max())],
            "ref_lowpass_a": ref_lowpass_a}  # fmt: skip


def relion_flags(args: argparse.Namespace, k: int, seed: int) -> list[str]:
    return [
        "--i", "particles.star", "--o", "out/run", "--ref", "ref.mrc",
        "--ini_high", f"{args.ini_high:g}", "--K", str(k), "--iter", str(args.iter),
        "--tau2_fudge", f"{args.tau2_fudge:g}", "--particle_diameter", f"{args.diameter:g}",
        "--flatten_solvent", "--zero_mask", "--ctf", "--sym", "C1",
        "--healpix_order", str(args.healpix_order), "--offset_range", f"{args.offset_range:g}",
        "--offset_step", f"{args.offset_step:g}",
        "--oversampling", "1", "--norm", "--scale", "--pad", "2", "--j", str(args.threads),
        "--pool", "3", "--dont_combine_weights_via_disc", "--random_seed", str(seed + 1),
    ]  # fmt: skip


def _labels(data_star: Path, n: int) -> np.ndarray:
    table = starfile.read(data_star, always_dict=True)["particles"]
    index = table["rlnImageName"].map(lambda s: int(re.search(r"p(\d+)\.mrc", s).group(1)))
    labels = np.full(n, -1, dtype=int)
    labels[index.to_numpy()] = table["rlnClassNumber"].to_numpy(dtype=int)
    return labels


def per_iteration(out: Path, truth: np.ndarray) -> list[dict[str, Any]]:
    """Class sizes, homogeneity and label change after each iteration (``run_itNNN_data.star``)."""
    history, previous = [], None
    for path in sorted(out.glob("run_it*_data.star")):
        iteration = int(re.search(r"_it(\d+)_", path.name).group(1))
        if iteration == 0:
            continue
        labels = _labels(path, len(truth))
        sizes = np.bincount(labels, minlength=labels.max() + 1)[1:].tolist()
        entry = {"iteration": iteration, "class_sizes": sizes,
                 "homogeneity": sorting_metrics(truth, labels).homogeneity,
                 "label_change": None if previous is None
                 else float(np.mean(labels != previous))}  # fmt: skip
        model = out / path.name.replace("_data.star", "_model.star")
        if model.exists():
            general = starfile.read(model, always_dict=True).get("model_general")
            if general is not None:
                entry["resolution_a"] = float(general["rlnCurrentResolution"])
        history.append(entry)
        previous = labels
    return history


def run_cell(args: argparse.Namespace, classes: int, per_class: int, snr: float,
             seed: int) -> dict[str, Any]:  # fmt: skip
    sim = simulate_subtomograms(
        args.structures[:classes], n_per_class=per_class, snr=snr, tilt_range_deg=(-60.0, 60.0),
        voxel_size_a=args.voxel_size, mode="fourier", seed=seed, device="cpu",
    )  # fmt: skip
    volumes = np.concatenate(list(sim.iter_subtomograms()))
    truth = sim.table["cmTrueClass"].to_numpy() - 1
    work = Path(tempfile.mkdtemp(prefix=f"relion_{classes}x{per_class}_", dir=args.work_root))
    try:
        start = time.perf_counter()
        inputs = write_inputs(work, volumes, sim.parameters, args.ref_lowpass)
        np.savetxt(work / "truth_0based.txt", truth, fmt="%d")
        write_s = time.perf_counter() - start
        (work / "out").mkdir()
        flags = relion_flags(args, classes, seed)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        print(f"  [{work}] relion_refine {' '.join(flags)}", flush=True)
        start = time.perf_counter()
        with open(work / "relion_stdout.txt", "w") as log:
            done = subprocess.run(["relion_refine", *flags], cwd=work, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)  # fmt: skip
        wall_s = time.perf_counter() - start
        log_text = (work / "relion_stdout.txt").read_text(errors="replace")
        final = work / "out" / f"run_it{args.iter:03d}_data.star"
        cell: dict[str, Any] = {
            "classes": classes, "per_class": per_class, "n": len(truth), "snr": snr,
            "seed": seed, "structures": args.structures[:classes], "k_given": classes,
            "iterations": args.iter, "threads": args.threads, "wall_s": wall_s,
            "write_inputs_s": write_s, "returncode": done.returncode,
            "relion_version": relion_version(), "command": "relion_refine " + shlex.join(flags),
            "simulation": sim.parameters, "inputs": inputs,
            "machine": _machine(args.threads),
        }  # fmt: skip
        if done.returncode != 0 or not final.exists():
            cell["error"] = log_text[-4000:]
            return cell
        labels = _labels(final, len(truth))
        metrics = sorting_metrics(truth, labels)
        sizes = np.bincount(labels, minlength=classes + 1)[1:]
        cell.update({
            "k_with_particles": int(np.count_nonzero(sizes)), "class_sizes": sizes.tolist(),
            "homogeneity": metrics.homogeneity, "accuracy": metrics.accuracy,
            "metrics": metrics.to_dict(), "labels": labels.tolist(),
            "per_iteration": per_iteration(work / "out", truth),
            "log_tail": log_text[-1500:],
        })  # fmt: skip
        return cell
    finally:
        if args.keep_work:
            print(f"  kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def cell_path(out_dir: Path, classes: int, per_class: int, snr: float, seed: int) -> Path:
    return out_dir / "cells" / f"{classes}x{per_class}_snr{snr:g}_seed{seed}.json"


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def summary(cells: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N | SNR | seed | K given | K with particles | homogeneity | accuracy | wall s "
        "| iterations | threads |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(cells, key=lambda c: (c["n"], -c["snr"], c["seed"])):
        if "error" in c:
            lines.append(f"| {c['n']} | {c['snr']:g} | {c['seed']} | {c['k_given']} | failed "
                         f"(rc {c['returncode']}) | — | — | {c['wall_s']:.0f} | {c['iterations']} "
                         f"| {c['threads']} |")  # fmt: skip
            continue
        lines.append(
            f"| {c['n']} | {c['snr']:g} | {c['seed']} | {c['k_given']} | "
            f"{c['k_with_particles']} ({'/'.join(map(str, c['class_sizes']))}) | "
            f"{c['homogeneity']:.3f} | {_fmt(c['accuracy'], '.3f')} | {c['wall_s']:.0f} | "
            f"{c['iterations']} | {c['threads']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--structures", default=",".join(VALIDATION), help="comma-separated, validation set")
    add("--sizes", default="3x60", help="CLASSESxPER_CLASS, comma-separated")
    add("--snrs", default="0.1,0.03", help="comma-separated SNRs")
    add("--seeds", default="0", help="comma-separated seeds (simulation and RELION)")
    add("--iter", type=int, default=25, help="RELION iterations (--iter)")
    add("--threads", type=int, default=1, help="RELION threads (--j, OMP_NUM_THREADS)")
    add("--healpix-order", dest="healpix_order", type=int, default=2, help="15° at 2")
    add("--offset-range", dest="offset_range", type=float, default=3.0, help="voxels")
    add("--offset-step", dest="offset_step", type=float, default=1.0, help="voxels")
    add("--tau2-fudge", dest="tau2_fudge", type=float, default=4.0, help="--tau2_fudge")
    add("--diameter", type=float, default=320.0, help="--particle_diameter, Å")
    add("--ini-high", dest="ini_high", type=float, default=60.0, help="--ini_high, Å")
    add("--ref-lowpass", dest="ref_lowpass", type=float, default=60.0,
        help="low-pass of the initial reference (average of all subtomograms), Å")  # fmt: skip
    add("--voxel-size", type=float, default=16.0, help="voxel size, Å")
    add("--out-dir", type=Path, default=RESULTS)
    add("--keep-work", action="store_true", help="keep RELION's working directory")
    add("--summary-only", action="store_true", help="tabulate the cells there are, run none")
    add("--work-root", type=Path, default=None, help="where the working directories go")
    args = parser.parse_args(argv)
    args.structures = [s.strip() for s in args.structures.split(",") if s.strip()]
    snrs = [float(s) for s in args.snrs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    if shutil.which("relion_refine") is None:
        raise SystemExit("relion_refine not found: run benchmarks/peers/install_relion.sh")
    command = "python benchmarks/relion_classify.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    print(command, flush=True)
    version = relion_version()
    print(f"RELION: {version}", flush=True)
    for size in [] if args.summary_only else parse_sizes(args.sizes):
        for snr in snrs:
            for seed in seeds:
                path = cell_path(args.out_dir, *size, snr, seed)
                if path.exists():
                    print(f"{path.name}: exists, skipped", flush=True)
                    continue
                print(f"{size[0]}x{size[1]} SNR {snr:g} seed {seed}", flush=True)
                cell = run_cell(args, *size, snr, seed)
                _write_json(path, cell)
                print("  " + (f"failed: {cell['error'][-500:]}" if "error" in cell else
                              f"K {cell['k_with_particles']} of {cell['k_given']}, sizes "
                              f"{cell['class_sizes']}, homogeneity {cell['homogeneity']:.3f}, "
                              f"accuracy {_fmt(cell['accuracy'], '.3f')}, "
                              f"{cell['wall_s']:.0f} s"), flush=True)  # fmt: skip
    cells = [json.loads(p.read_text()) for p in sorted((args.out_dir / "cells").glob("*.json"))]
    machine = _machine(args.threads)
    lines = [
        "# RELION 3.1 3-D classification on the validation structures", "",
        f"`{command}`", "",
        f"RELION: {version}. Machine: {machine['cpu']} ({machine['cpu_count']} CPUs, "
        f"{args.threads} RELION thread(s), 1-min load average {machine['load_average_1min']:.1f} "
        "at the end; other jobs shared the CPU, so wall times are upper bounds). Data: those of "
        "`disca_validation.py` (24³ at 16 Å, ±60°, fourier imaging, z-scored); RELION gets each "
        "subtomogram as a 3-D MRC with its signed CTF × wedge volume (`rlnCtfImage`, FFTW half "
        "layout, not premultiplied) and the average of all subtomograms low-passed to 60 Å as "
        "the reference, at the true K. Labels from the last iteration's `_data.star`; K with "
        "particles counts non-empty classes (sizes in brackets); accuracy only when that K is "
        f"the true K. Sampling: healpix order {args.healpix_order} "
        f"({60 / 2**args.healpix_order:g}° coarse, half that after oversampling), "
        f"offsets ±{args.offset_range:g} voxels in steps of {args.offset_step:g} (half after "
        "oversampling); the script's defaults (order 2, step 1) cost ~30 s per particle and "
        "iteration on this machine (~37 h per 3 × 60 cell), so the run used the coarser "
        "sampling when it differs, chosen for time before any cell ran. Flags (each cell's "
        "JSON has the exact command):", "",
        "`relion_refine " + shlex.join(relion_flags(args, 0, 0)).replace("--K 0", "--K <K>")
        .replace("--random_seed 1", "--random_seed <seed + 1>") + "`", "",
        *summary(cells), "",
    ]  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = args.out_dir / "results.md.tmp"
    tmp.write_text("\n".join(lines))
    tmp.replace(args.out_dir / "results.md")
    _write_json(args.out_dir / "results.json", {
        "command": command, "relion_version": version, "machine": machine,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cells": [{k: v for k, v in c.items() if k not in ("labels", "log_tail")} for c in cells],
    })  # fmt: skip
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
