"""``cryomine demo``: the main job on built-in data, as the sequence of verbs a user would run.

The demo simulates a small particle set of three built-in structures with ground truth, sorts it
with DISCA, scores the sorting against the truth and writes the HTML report. Each step is an
ordinary ``cryomine`` verb, printed before it runs, so the demo doubles as a worked example of the
command line.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from cryomine.cli._common import Device, PerClass, SubtomogramSnr

__all__ = ["demo_commands", "register"]

DEMO_STRUCTURES = ("4v4r", "3j9i", "4v94")  # 70S ribosome, 20S proteasome, TRiC


def demo_commands(
    output: Path, *, per_class: int, snr: float, seed: int, device: str
) -> list[list[str]]:
    """The verbs the demo runs, as argument lists for ``cryomine``."""
    particles = output / "particles"
    sort_dir = output / "sort"
    structures = [arg for name in DEMO_STRUCTURES for arg in ("-s", name)]
    return [
        ["simulate", "subtomograms", *structures, "--per-class", str(per_class), "--snr", str(snr),
         "--tilt-range", "60", "--box", "24", "--mode", "fourier", "--seed", str(seed), "-o", str(particles)],
        ["sort", str(particles), "-o", str(sort_dir), "--k-range", "2", "8", "--max-iter", "10",
         "--width", "0.25", "--seed", str(seed), "--device", device],
        ["evaluate", "sorting", "--truth", str(particles / "particles.star"),
         "--pred", str(sort_dir / "particles.star"), "-o", str(output / "sorting_metrics.json")],
        ["report", str(sort_dir), "-o", str(output / "report.html")],
    ]  # fmt: skip


def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for everything the demo writes.")
    ] = Path("demo_output"),
    per_class: PerClass = 60,
    snr: SubtomogramSnr = 0.1,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (integer) for simulation and sorting.")
    ] = 0,
    device: Device = "auto",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the outputs of an earlier demo in OUTPUT.")
    ] = False,
) -> None:
    """Simulate three built-in structures, sort them with DISCA, score the result, write a report.

    Writes OUTPUT/particles (simulated particle set with truth), OUTPUT/sort (DISCA run),
    OUTPUT/sorting_metrics.json and OUTPUT/report.html. Takes a few minutes on two CPU cores.
    Steps whose outputs exist are skipped unless --overwrite is given, so an interrupted demo
    continues where it stopped.
    """
    import shutil

    from cryomine.cli import app

    if overwrite and output.exists():
        for name in ("particles", "sort", "sorting_metrics.json", "report.html"):
            target = output / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    output.mkdir(parents=True, exist_ok=True)
    commands = demo_commands(output, per_class=per_class, snr=snr, seed=seed, device=device)
    finished = [
        output / "particles" / "particles.star",
        output / "sort" / "particles.star",
        None,
        None,
    ]
    for args, done in zip(commands, finished, strict=True):
        if done is not None and done.exists():
            typer.echo(f"\n# already done, skipped: cryomine {shlex.join(args)}")
            continue
        if args[0] == "sort" and (output / "sort").exists():
            args = [*args, "--resume"]
        typer.echo(f"\n$ cryomine {shlex.join(args)}")
        status = app(args, standalone_mode=False)
        if status not in (None, 0):  # the step printed its error already
            raise typer.Exit(code=int(status))
    typer.echo(
        f"\nDemo finished. Everything is in {output}/; open the report: {output / 'report.html'}"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
