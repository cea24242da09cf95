"""``cryomine info``: version, torch, device and threads."""

from __future__ import annotations

import typer

__all__ = ["register"]


def info() -> None:
    """Print the cryomine and torch versions, the compute device and the CPU threads in use."""
    import os
    import platform

    import torch

    from cryomine import __version__

    device = "cuda" if torch.cuda.is_available() else "cpu"
    typer.echo(f"cryomine  {__version__}")
    typer.echo(f"python    {platform.python_version()}")
    typer.echo(f"torch     {torch.__version__}")
    if device == "cuda":
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        typer.echo(f"device    cuda ({names})")
    else:
        typer.echo("device    cpu (no CUDA device found)")
    typer.echo(f"threads   {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
