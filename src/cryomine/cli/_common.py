"""Shared pieces of the command line: progress reporting, option helpers and shared options.

The shared options and arguments are annotated types (Typer's ``Annotated`` style, which every
command uses); a command declares one with its default, e.g. ``seed: Seed = 0`` or
``device: Device = "auto"`` (no default for a required option or an argument, e.g.
``output: RunOutput``), and gets the same flag and help text as every other command that uses it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "LOWPASS_HELP",
    "PICK_FORMATS",
    "QUIET",
    "BinFactor",
    "Contrast",
    "Device",
    "DogMinScore",
    "HeaderVoxelSize",
    "KRange",
    "MaxPicks",
    "MetricsOutput",
    "OverwriteDirectory",
    "OverwriteFile",
    "OverwriteOutputs",
    "OverwriteRun",
    "ParticleDiameter",
    "ParticleSetArgument",
    "ParticleSetOutput",
    "ParticleSetTiltRange",
    "PerClass",
    "ProgressCallback",
    "Resume",
    "RunOutput",
    "Seed",
    "SimulationDefocus",
    "SimulationTiltStep",
    "SimulationVoxelSize",
    "SortRunArgument",
    "Structures",
    "SubtomogramSnr",
    "TiltRange",
    "TomogramArgument",
    "command_group",
    "parse_lowpass",
    "particle_set_tilt_range",
    "picks_format",
    "progress",
    "simulated_tilt_range",
    "symmetric_tilt_range",
    "write_picks",
]

#: ``--device`` (default ``"auto"``): where torch runs.
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda[:i].")]
#: ``--seed``: the random seed of a command with one source of randomness.
Seed = Annotated[int, typer.Option("--seed", help="Random seed (integer).")]
#: ``--overwrite`` of a command that writes one directory.
OverwriteDirectory = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output directory.")
]
#: ``--overwrite`` of a command that writes one file.
OverwriteFile = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output file.")
]
#: ``--overwrite`` of a command that writes a run directory (``baseline``).
OverwriteRun = Annotated[bool, typer.Option("--overwrite", help="Replace a finished run.")]
#: ``--resume`` of a resumable run (``sort``, ``refine``).
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from RUN_DIR/checkpoints.")
]
#: ``--overwrite`` of a resumable run (``sort``, ``refine``).
OverwriteOutputs = Annotated[
    bool, typer.Option("--overwrite", help="Replace the outputs of a finished run.")
]
#: ``--voxel-size`` (default ``None``) of a command that reads tomograms' MRC headers.
HeaderVoxelSize = Annotated[
    float | None, typer.Option("--voxel-size", help="Override the header voxel size, Å.")
]
#: ``--output`` / ``-o`` (default ``None``) of the ``evaluate`` commands.
MetricsOutput = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the metrics to this JSON file.")
]
#: ``--output`` / ``-o`` (required) of a command that writes a run directory (``sort``,
#: ``refine``, ``baseline``).
RunOutput = Annotated[Path, typer.Option("--output", "-o", help="Run directory to write.")]
#: ``--output`` / ``-o`` (required) of a command that writes a particle set (``import warp``,
#: ``simulate subtomograms``).
ParticleSetOutput = Annotated[
    Path, typer.Option("--output", "-o", help="Output particle-set directory.")
]
#: The ``PARTICLES_DIR`` argument of ``sort`` and ``baseline``.
ParticleSetArgument = Annotated[
    Path, typer.Argument(help="Particle set directory (particles.star + subtomograms).")
]
#: The ``TOMOGRAM`` argument of a command that reads one tomogram.
TomogramArgument = Annotated[
    Path, typer.Argument(help="Tomogram (.mrc .rec .st .map, optionally .gz).")
]
#: The ``RUN_DIR`` argument of ``report`` and ``view``.
SortRunArgument = Annotated[
    Path, typer.Argument(help="Sort run directory (output of cryomine sort).")
]
#: ``--k-range`` of ``sort``, ``baseline`` and ``pipeline``.
KRange = Annotated[
    tuple[int, int],
    typer.Option("--k-range", help="Smallest and largest number of classes tried (count)."),
]
#: ``--tilt-range`` (default ``None``) of a command that reads a particle set's missing wedge.
ParticleSetTiltRange = Annotated[
    float | None,
    typer.Option(
        "--tilt-range",
        help="Maximum tilt in degrees (60 means ±60°); default: the simulated set's, else 60.",
    ),
]
#: ``--contrast`` of the tomogram read by ``pick``, ``extract``, ``match search`` and
#: ``pipeline``.
Contrast = Annotated[
    str,
    typer.Option(
        "--contrast", help="Protein 'dark' (IMOD/AreTomo/Warp reconstructions) or 'bright'."
    ),
]
#: ``--structure`` / ``-s`` (required, repeatable) of the ``simulate`` commands.
Structures = Annotated[
    list[str],
    typer.Option(
        "--structure",
        "-s",
        help="Structure: a built-in name (see `cryomine structures`) or a map/model file; "
        "repeat for more.",
    ),
]
#: ``--tilt-range`` of a command that takes one symmetric tilt range (``simulate``, ``average``,
#: ``pipeline``).
TiltRange = Annotated[
    float,
    typer.Option("--tilt-range", help="Maximum tilt in degrees: 60 means ±60° (tilt axis y)."),
]
#: ``--per-class`` of ``simulate subtomograms`` and ``demo``.
PerClass = Annotated[
    int, typer.Option("--per-class", help="Simulated subtomograms per structure (count).")
]
#: ``--snr`` of ``simulate subtomograms`` and ``demo``.
SubtomogramSnr = Annotated[
    float,
    typer.Option("--snr", help="SNR of each subtomogram: var(signal) / var(noise), unitless."),
]
#: ``--particle-diameter`` (required) of ``pick``, ``picker locate`` and ``pipeline``.
ParticleDiameter = Annotated[
    float, typer.Option("--particle-diameter", help="Expected particle diameter, Å.")
]
#: ``--max-picks`` (default ``None``) of ``pick`` and ``pipeline``.
MaxPicks = Annotated[
    int | None,
    typer.Option("--max-picks", help="Keep at most this many picks per tomogram, best first."),
]
#: ``--min-score`` (default ``None``) of DoG picking (``pick``, ``pipeline``).
DogMinScore = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        help="Keep picks whose DoG response is at least this many tomogram standard deviations.",
    ),
]
#: ``--bin`` of ``extract`` and ``pipeline``.
BinFactor = Annotated[
    int,
    typer.Option("--bin", help="Bin the subtomograms by this whole factor (Fourier cropping)."),
]
#: ``--tilt-step`` of the ``simulate`` commands.
SimulationTiltStep = Annotated[float, typer.Option("--tilt-step", help="Tilt increment, degrees.")]
#: ``--voxel-size`` of the ``simulate`` commands.
SimulationVoxelSize = Annotated[float, typer.Option("--voxel-size", help="Voxel size, Å.")]
#: ``--defocus`` of the ``simulate`` commands.
SimulationDefocus = Annotated[
    float,
    typer.Option("--defocus", help="Underfocus in µm, positive (the paper's '-5 µm' is 5)."),
]


def command_group(help: str) -> typer.Typer:
    """A verb with sub-commands (e.g. ``cryomine simulate``): run alone, it shows its help.

    The verb's name is given where it is registered (``app.add_typer(group, name=...)``).
    """
    return typer.Typer(no_args_is_help=True, help=help)


#: Set by the ``--quiet`` global option.
QUIET = False

#: Library functions report progress through this: ``callback(n_done, n_total)``.
ProgressCallback = Callable[[int, int], None]


@contextmanager
def progress(description: str) -> Iterator[ProgressCallback]:
    """Yield a ``callback(n_done, n_total)`` that shows progress on stderr.

    A rich progress bar with rate and ETA on a terminal; plain lines (at most one every few
    seconds, and the last one) when stderr is not a terminal, e.g. in CI logs; nothing with
    ``--quiet``.
    """
    if QUIET:
        yield lambda done, total: None
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):  # items per second (rich has bytes/s only)
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                shown = "-/s" if speed is None else f"{speed:.1f}/s"
                return Text(shown, style="progress.data.speed")

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        return

    start = time.monotonic()
    last = -1.0

    def log_line(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last < 5.0:
            return
        last = now
        elapsed = now - start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {(total - done) / rate:.0f} s" if 0 < done < total and rate > 0 else ""
        print(
            f"{description}: {done}/{total} ({rate:.1f}/s, {elapsed:.0f} s{eta})",
            file=sys.stderr,
            flush=True,
        )

    yield log_line


LOWPASS_HELP = (
    "Low-pass applied to every subtomogram before sorting: resolution in Å, "
    "'auto' (4 voxels = half Nyquist) or 'none'."
)


def parse_lowpass(text: str) -> float | str | None:
    """``--lowpass`` value: a resolution in Å (float), ``"auto"`` or ``None`` (``"none"``)."""
    from cryomine.errors import InputError

    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    try:
        return float(text)
    except ValueError:
        raise InputError(
            f"--lowpass {text!r}: expected a resolution in Å, 'auto' or 'none'"
        ) from None


#: File endings of the picks ``pick`` and ``match picks`` write: STAR, plain coordinates, copick.
PICK_FORMATS = (".star", ".coords", ".json")


def picks_format(output: Path) -> str:
    """The lower-case ending of ``output``; :class:`InputError` unless one of ``PICK_FORMATS``."""
    from cryomine.errors import InputError

    suffix = output.suffix.lower()
    if suffix not in PICK_FORMATS:
        raise InputError(
            f"{output}: unknown picks format; expected a name ending in {', '.join(PICK_FORMATS)}"
        )
    return suffix


def read_picks(
    picks: Path, *, tomo_name: str, tomogram_shape: tuple[int, ...], voxel_size_a: float
) -> Any:
    """The rows of a picks file (``.star``, ``.coords`` or copick ``.json``) for one tomogram.

    ``.coords`` (x y z voxels) and copick picks belong to the tomogram named ``tomo_name``; a
    STAR file's rows are kept where ``rlnTomoName`` is that tomogram. Returns a particle table
    (:func:`cryomine.io.positions_zyx` gives the centres, voxels).
    """
    from cryomine.errors import InputError
    from cryomine.io import (
        new_particle_table,
        read_coords,
        read_copick_picks,
        read_particles,
        tomogram_name,
    )

    suffix = picks.suffix.lower()
    if suffix == ".coords":
        table = new_particle_table(
            read_coords(picks), tomo_name=tomo_name, pixel_size_a=voxel_size_a
        )
    elif suffix == ".json":
        table = read_copick_picks(picks, voxel_size_a=voxel_size_a)
        table["rlnTomoName"] = tomo_name
    elif suffix == ".star":
        table = read_particles(
            picks, tomogram_shapes={tomo_name: tuple(tomogram_shape)}, pixel_size_a=voxel_size_a
        )
    else:
        raise InputError(f"{picks}: unknown picks format; expected .star, .coords or .json")
    mine = table["rlnTomoName"].astype(str).map(tomogram_name) == tomo_name
    if not mine.any():
        raise InputError(f"{picks}: no rows with rlnTomoName {tomo_name!r} (the tomogram's name)")
    return table[mine].reset_index(drop=True)


def write_picks(
    output: Path,
    table: Any,
    positions_zyx: Any,
    *,
    object_name: str,
    run_name: str,
    overwrite: bool,
    **star_options: Any,
) -> None:
    """Write picks in the format of ``output``'s ending (:func:`picks_format`).

    ``.star``: the particle ``table`` (``star_options`` go to :func:`cryomine.io.write_particles`);
    ``.coords``: ``positions_zyx`` (voxels); ``.json``: ``table`` as copick picks of
    ``object_name`` in run ``run_name`` (user ``cryomine``, session ``0``).
    """
    from cryomine.io import write_coords, write_copick_picks, write_particles

    suffix = picks_format(output)
    if suffix == ".star":
        write_particles(output, table, overwrite=overwrite, **star_options)
    elif suffix == ".coords":
        write_coords(output, positions_zyx, overwrite=overwrite)
    else:
        write_copick_picks(
            output,
            table,
            object_name=object_name,
            user_id="cryomine",
            session_id="0",
            run_name=run_name,
            overwrite=overwrite,
        )


def symmetric_tilt_range(max_tilt_deg: float) -> tuple[float, float]:
    """``(-max_tilt_deg, max_tilt_deg)``, degrees, of a ``--tilt-range`` (maximum tilt).

    Raises :class:`InputError` unless the maximum tilt is in ``(0, 90]`` degrees.
    """
    from cryomine.errors import InputError

    if not 0 < max_tilt_deg <= 90:
        raise InputError(f"--tilt-range {max_tilt_deg}: expected a maximum tilt in (0, 90] degrees")
    return (-float(max_tilt_deg), float(max_tilt_deg))


def particle_set_tilt_range(particles_dir: Path, max_tilt_deg: float | None) -> tuple[float, float]:
    """The ``(min, max)`` tilt range, degrees, of a particle set's missing wedge.

    ``--tilt-range`` (:data:`ParticleSetTiltRange`) when given (:func:`symmetric_tilt_range`),
    else the range ``cryomine simulate subtomograms`` recorded for the set, else ±60°.
    """
    if max_tilt_deg is not None:
        return symmetric_tilt_range(max_tilt_deg)
    return simulated_tilt_range(particles_dir) or (-60.0, 60.0)


def simulated_tilt_range(particles_dir: Path) -> tuple[float, float] | None:
    """The tilt range recorded by ``cryomine simulate subtomograms`` in the set's run.json
    (``None`` for other sets)."""
    import json

    try:
        record = json.loads((Path(particles_dir) / "run.json").read_text())
        low, high = record["parameters"]["tilt_range_deg"]
        return float(low), float(high)
    except (OSError, ValueError, KeyError, TypeError):
        return None
