"""``cryomine match``: template matching in tomograms (``search``, then ``extract``).

``cryomine match search`` correlates a template with the whole tomogram at every voxel and every
rotation of a uniform grid and writes a job folder; ``cryomine match extract`` turns the score
map into picks above a statistical cut-off, optionally with a Monte Carlo p-value per pick.
See ``docs/matching.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import (
    Contrast,
    Device,
    HeaderVoxelSize,
    OverwriteFile,
    TomogramArgument,
    command_group,
)

__all__ = ["match_app", "register"]

match_app = command_group(
    "Template matching in tomograms: search (score maps), then extract (picks)."
)


def _parse_triple(text: str | None, what: str) -> tuple[int, int, int] | None:
    from cryomine.errors import InputError

    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(
            f"{what} {text!r}: expected one or three whole numbers, e.g. 128 or 64,256,256"
        ) from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or min(values) < 1:
        raise InputError(f"{what} {text!r}: expected one or three positive whole numbers")
    return values  # type: ignore[return-value]


def _parse_tilt_range(text: str) -> tuple[float, float] | None:
    from cryomine.errors import InputError

    if text.strip().lower() == "none":
        return None
    parts = text.split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"--tilt-range {text!r}: expected MIN,MAX in degrees (e.g. -60,60) or 'none'"
        ) from None
    if not -90.0 <= low <= high <= 90.0:
        raise InputError(f"--tilt-range {text!r}: expected -90 <= MIN <= MAX <= 90 degrees")
    return low, high


@match_app.command("search")
def search(
    tomogram: TomogramArgument,
    template: Annotated[
        str,
        typer.Option(
            "--template",
            help="Built-in structure name (see `cryomine structures list`), or a map (.mrc, "
            "protein bright) or atomic model (.pdb/.cif), resampled to the tomogram's voxel size.",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Job folder to write (or resume).")
    ],
    angular_step_deg: Annotated[
        float,
        typer.Option(
            "--angular-step",
            help="Spacing of the uniform rotation grid, degrees (15° = 4401 rotations).",
        ),
    ] = 15.0,
    symmetry: Annotated[
        str,
        typer.Option(
            "--symmetry", help="Cyclic symmetry of the template about its z axis (C1, C2, ...)."
        ),
    ] = "C1",
    tilt_range: Annotated[
        str,
        typer.Option(
            "--tilt-range",
            help="MIN,MAX tilt angles, degrees, for the missing wedge (tilt axis y); 'none' for no "
            "wedge.",
        ),
    ] = "-60,60",
    tilt_angles: Annotated[
        Path | None,
        typer.Option(
            "--tilt-angles",
            help="Text file of tilt angles (one per line, degrees; optional second column: the "
            "dose received before that tilt, e/Å²); overrides --tilt-range.",
        ),
    ] = None,
    dose_per_tilt: Annotated[
        float | None,
        typer.Option(
            "--dose-per-tilt",
            help="Dose per tilt image, e/Å² (needs --tilt-angles): weight the template per tilt "
            "(exposure filter) instead of the binary wedge; tilts acquired in file order unless "
            "the file's second column gives the accumulated dose.",
        ),
    ] = None,
    defocus_um: Annotated[
        float | None,
        typer.Option(
            "--defocus-um",
            help="Defocus, µm, underfocus positive; filters the template by the CTF.",
        ),
    ] = None,
    voltage_kv: Annotated[
        float, typer.Option("--voltage-kv", help="Acceleration voltage, kV (CTF).")
    ] = 300.0,
    cs_mm: Annotated[float, typer.Option("--cs-mm", help="Spherical aberration, mm (CTF).")] = 2.7,
    diameter_a: Annotated[
        float | None,
        typer.Option(
            "--particle-diameter",
            help="Particle diameter, Å: the spherical mask's diameter. Default: the template's "
            "extent.",
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Template mask (.mrc, the template's box, values in [0, 1])."),
    ] = None,
    box_size: Annotated[
        int | None,
        typer.Option(
            "--box-size", help="Template box, voxels (even). Default: the structure's own."
        ),
    ] = None,
    contrast: Contrast = "dark",
    voxel_size_a: HeaderVoxelSize = None,
    tile: Annotated[
        str | None,
        typer.Option(
            "--tile",
            help="Core tile edge(s), voxels: N or Z,Y,X; each tile is scored with the template box "
            "as halo.",
        ),
    ] = "128",
    device: Device = "cpu",
    keep_tiles: Annotated[
        bool, typer.Option("--keep-tiles", help="Keep the per-tile results.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace a finished search (or restart one with other options)."
        ),
    ] = False,
) -> None:
    """Score every voxel and rotation of a tomogram against a template (FLCF).

    The template is rotated over a uniform SO(3) grid, filtered by the missing wedge (per tilt,
    by the exposure filter, with --tilt-angles and --dose-per-tilt; and the CTF with
    --defocus-um), and compared with the tomogram by the locally normalised cross-correlation
    under its mask. The tomogram is memory-mapped and processed in tiles; an interrupted search
    resumes from its finished tiles when run again with the same options. Writes OUTPUT/scores.mrc,
    angles.mrc, rotations.csv, template.mrc, mask.mrc, job.json and run.json.
    """
    import numpy as np
    import torch

    from cryomine._device import resolve_device
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import progress
    from cryomine.errors import InputError
    from cryomine.io import read_mrc
    from cryomine.matching import (
        make_template,
        read_tilt_angles,
        read_tilt_file,
        run_search,
        search_rotations,
    )

    tile_shape = _parse_triple(tile, "--tile") if tile and tile.lower() != "none" else None
    tilt_range_deg = _parse_tilt_range(tilt_range)
    angles = accumulated = None
    dose_source = None
    if dose_per_tilt is not None:
        if tilt_angles is None:
            raise InputError("--dose-per-tilt needs --tilt-angles FILE (the tilts to weight)")
        if not (dose_per_tilt >= 0 and dose_per_tilt < float("inf")):
            raise InputError(f"--dose-per-tilt {dose_per_tilt}: expected a dose >= 0 in e/Å²")
    if tilt_angles is not None:
        if dose_per_tilt is None:  # the second column is ignored, as before
            angles, file_doses = read_tilt_angles(tilt_angles), None
        else:
            angles, file_doses = read_tilt_file(tilt_angles)
        tilt_range_deg = (float(angles.min()), float(angles.max()))
        if dose_per_tilt is not None:
            if file_doses is not None:
                accumulated, dose_source = file_doses, "tilt-angle file, second column"
            else:
                accumulated = dose_per_tilt * np.arange(len(angles), dtype=np.float64)
                dose_source = "file order x --dose-per-tilt"
    if diameter_a is not None and not diameter_a > 0:
        raise InputError(f"--particle-diameter {diameter_a}: expected a positive diameter in Å")
    torch_device = resolve_device(device)
    volume, voxel = read_mrc(tomogram, voxel_size_a=voxel_size_a)
    if volume.ndim != 3:
        raise InputError(f"{tomogram}: expected a 3-D tomogram, got shape {volume.shape}")
    user_mask = None
    if mask is not None:
        user_mask, _ = read_mrc(mask, voxel_size_a=voxel, mmap=False)
    structure: str | Path = Path(template) if Path(template).is_file() else template
    built = make_template(
        structure,
        voxel_size_a=voxel,
        box_size=box_size,
        tilt_range_deg=tilt_range_deg,
        defocus_um=defocus_um,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        contrast=contrast,  # type: ignore[arg-type]
        mask=user_mask,
        mask_radius_px=None if diameter_a is None else 0.5 * diameter_a / voxel,
        tilt_angles_deg=None if accumulated is None else angles,
        accumulated_dose=accumulated,
    )
    rotations = search_rotations(angular_step_deg, symmetry)
    parameters = {
        "tomogram": str(tomogram.resolve()),
        "template": template,
        "angular_step_deg": angular_step_deg,
        "symmetry": symmetry,
        "tilt_range_deg": None if tilt_range_deg is None else list(tilt_range_deg),
        "tilt_angles": None if tilt_angles is None else str(tilt_angles),
        "defocus_um": defocus_um,
        "particle_diameter_a": diameter_a,
        "mask": None if mask is None else str(mask),
        "contrast": contrast,
        "device": str(torch_device),
    }
    if dose_per_tilt is not None:
        parameters["dose_per_tilt"] = dose_per_tilt
        parameters["accumulated_dose_source"] = dose_source
    output.mkdir(parents=True, exist_ok=True)
    inputs = [tomogram] + ([mask] if mask is not None else [])
    with recording_run(output, "match search", parameters, inputs=inputs) as record:
        with record.timed("search"), progress("matching (tiles x rotations)") as report:
            job = run_search(
                volume,
                built,
                rotations,
                output,
                voxel_size_a=voxel,
                tile_shape=tile_shape,
                device=torch_device,
                parameters=parameters,
                overwrite=overwrite,
                keep_tiles=keep_tiles,
                progress=report,
            )
        record.results.update(
            n_rotations=job["n_rotations"],
            n_positions=job["n_positions"],
            score_std=job["statistics"]["std"],
            max_score=job["statistics"]["max_map"]["max"],
            torch_threads=torch.get_num_threads(),
        )
    typer.echo(
        f"searched {job['n_positions']} voxels x {job['n_rotations']} rotations "
        f"(score std {job['statistics']['std']:.4g}, max {job['statistics']['max_map']['max']:.4g}) "
        f"→ {output}"
    )


@match_app.command("extract")
def extract(
    job_dir: Annotated[Path, typer.Argument(help="Folder of a finished `cryomine match search`.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Picks: .star (RELION 5 centred Å by default), .coords (x y z px) or .json "
            "(copick).",
        ),
    ],
    false_alarms: Annotated[
        float,
        typer.Option(
            "--false-alarms",
            help="Expected number of chance scores above the cut-off in the whole search (sets "
            "it).",
        ),
    ] = 1.0,
    min_score: Annotated[
        float | None,
        typer.Option("--min-score", help="Use this score cut-off instead of the statistical one."),
    ] = None,
    number: Annotated[
        int | None, typer.Option("--number", help="Keep at most this many picks, best first.")
    ] = None,
    diameter_a: Annotated[
        float | None,
        typer.Option(
            "--particle-diameter",
            help="Particle diameter, Å: no two picks closer than its radius. Default: the mask's.",
        ),
    ] = None,
    border_a: Annotated[
        float,
        typer.Option("--border", help="Ignore peaks closer than this to the tomogram faces, Å."),
    ] = 0.0,
    flavour: Annotated[
        str,
        typer.Option(
            "--flavour", help="STAR coordinates: 'relion5' (centred Å) or 'relion4' (voxels)."
        ),
    ] = "relion5",
    p_values: Annotated[
        int,
        typer.Option(
            "--p-values",
            help="Monte Carlo significance test with this many pseudo-structures "
            "(cmTemplatePValue); 0: off.",
        ),
    ] = 0,
    max_p_value: Annotated[
        float | None,
        typer.Option(
            "--max-p-value",
            help="Keep only picks with cmTemplatePValue at most this (needs --p-values).",
        ),
    ] = None,
    p_value_step_deg: Annotated[
        float | None,
        typer.Option(
            "--p-value-step",
            help="Rotation grid of the significance test, degrees. Default: the search's.",
        ),
    ] = None,
    tomogram_path: Annotated[
        Path | None,
        typer.Option(
            "--tomogram",
            help="The searched tomogram, if it has moved since the search (for --p-values and "
            "names).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the pseudo-structures.")] = 0,
    device: Annotated[
        str, typer.Option("--device", help="'cpu', 'cuda[:i]' or 'auto' (significance test).")
    ] = "cpu",
    overwrite: OverwriteFile = False,
) -> None:
    """Picks from a search: peaks above the false-alarm cut-off, with orientations and scores.

    The cut-off is t = √2 σ erfcinv(2F / (positions × rotations)), σ the standard deviation of all
    scores of the search (pytom-match-pick's rule), unless --min-score is given. Peaks are taken
    best first; none is closer than the particle radius to a better one. The STAR file has RELION
    ZYZ angles, rlnAutopickFigureOfMerit (the score) and, with --p-values, cmTemplatePValue (the
    Monte Carlo p-value against that many pseudo-structures; --max-p-value drops picks above it).
    """
    import numpy as np

    from cryomine._device import resolve_device
    from cryomine._runrecord import recording_run
    from cryomine.cli._common import picks_format, progress, write_picks
    from cryomine.errors import InputError
    from cryomine.io import new_particle_table, read_mrc, tomogram_name
    from cryomine.io._atomic import check_writable
    from cryomine.matching import (
        Peaks,
        extract_peaks,
        false_alarm_threshold,
        read_job,
        read_rotations,
        search_rotations,
    )
    from cryomine.matching._job import read_job_template
    from cryomine.matching._significance import extract_windows, template_p_values

    picks_format(output)
    if flavour not in ("relion4", "relion5"):
        raise InputError(f"--flavour {flavour!r}: expected 'relion4' or 'relion5'")
    if p_values < 0:
        raise InputError(f"--p-values {p_values}: expected 0 (off) or a positive number")
    if max_p_value is not None and (not p_values or not 0 < max_p_value <= 1):
        raise InputError(f"--max-p-value {max_p_value}: needs --p-values and a value in (0, 1]")
    check_writable(output, overwrite=overwrite)
    job = read_job(job_dir)
    voxel = float(job["voxel_size_a"])
    stats = job["statistics"]
    n_rotations = int(job["n_rotations"])
    if min_score is None:
        threshold = false_alarm_threshold(
            stats["std"], int(job["n_positions"]), n_rotations, false_alarms
        )
    else:
        threshold = float(min_score)
    if diameter_a is not None:
        radius_px = 0.5 * diameter_a / voxel
    else:
        radius_px = job["template"].get("mask_radius_px") or job["template"]["box_size"] / 2
    border_px = round(border_a / voxel)
    parameters = {
        "job_dir": job_dir,
        "false_alarms": false_alarms,
        "min_score": min_score,
        "threshold": threshold,
        "number": number,
        "particle_diameter_a": diameter_a,
        "exclusion_radius_px": radius_px,
        "border_a": border_a,
        "flavour": flavour,
        "p_values": p_values,
        "p_value_step_deg": p_value_step_deg,
        "max_p_value": max_p_value,
        "output": output,
    }
    with recording_run(
        output.parent, "match extract", parameters, seed=seed, inputs=[job_dir / "scores.mrc"],
        name=f"{output.name}.run.json",
    ) as record:  # fmt: skip
        scores, _ = read_mrc(job_dir / "scores.mrc", voxel_size_a=voxel, check_finite=False)
        angles, _ = read_mrc(job_dir / "angles.mrc", voxel_size_a=voxel, check_finite=False)
        rotations = read_rotations(job_dir / "rotations.csv")
        if len(rotations) != n_rotations:
            raise InputError(
                f"{job_dir}: rotations.csv has {len(rotations)} rotations, job.json {n_rotations}"
            )
        with record.timed("extract"):
            peaks = extract_peaks(
                scores, threshold=threshold, exclusion_radius_px=float(radius_px),
                max_peaks=number, border_px=border_px,
            )  # fmt: skip
        index = (
            np.asarray(angles[tuple(peaks.positions_zyx.T)], dtype=np.int64)
            if len(peaks)
            else np.zeros(0, int)
        )
        if tomogram_path is None:
            tomogram_path = Path(job["parameters"].get("tomogram", "tomogram.mrc"))
        name = tomogram_name(tomogram_path)
        table = new_particle_table(
            peaks.positions_zyx.astype(np.float64), tomo_name=name, pixel_size_a=voxel,
            rotations=rotations[index] if len(index) else None, scores=peaks.scores,
        )  # fmt: skip
        if not len(index):
            for column in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"):
                table[column] = np.zeros(0)
        if p_values and len(peaks):
            template = read_job_template(job_dir, job)
            tomogram, _ = read_mrc(tomogram_path, voxel_size_a=voxel, check_finite=False)
            step = p_value_step_deg or float(job["parameters"].get("angular_step_deg", 30.0))
            mats = search_rotations(step, job["parameters"].get("symmetry", "C1")).as_matrix()
            windows = extract_windows(tomogram, peaks.positions_zyx, template.box_size, 2)
            with record.timed("significance"), progress("significance (structures)") as report:
                result = template_p_values(
                    windows, template, mats, n_null=p_values, max_shift_px=2,
                    rng=np.random.default_rng(seed), device=resolve_device(device),
                    progress=report,
                )  # fmt: skip
            table["cmTemplatePValue"] = result.p_values
            if max_p_value is not None:
                keep = result.p_values <= max_p_value + 1e-12
                table = table[keep].reset_index(drop=True)
                peaks = Peaks(peaks.positions_zyx[keep], peaks.scores[keep])
                table["cmParticleId"] = np.arange(1, len(table) + 1)
        write_picks(
            output, table, peaks.positions_zyx.astype(np.float64),
            object_name=Path(str(job["template"].get("structure", "particle"))).name.split(".")[0],
            run_name=name, overwrite=overwrite, flavour=flavour,
            tomogram_shapes={name: tuple(float(n) for n in job["tomogram_shape_zyx"])},
        )  # fmt: skip
        record.results.update(n_picks=len(peaks), threshold=threshold)
    typer.echo(f"{len(peaks)} picks above {threshold:.4g} (F = {false_alarms:g}) → {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(match_app, name="match")
