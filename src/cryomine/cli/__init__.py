"""The ``cryomine`` command line: one verb per pipeline stage.

Each verb lives in its own module here and registers itself through ``register(app)``. Modules
import the heavy libraries (torch, zarr, ...) inside the command bodies, so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from typer.core import TyperGroup

from cryomine.errors import InputError

__all__ = ["app", "main"]

# The order here is the order of `cryomine --help`.
_COMMAND_MODULES: tuple[str, ...] = (
    "demo", "pipeline", "info", "structures", "simulate", "import", "pick", "picker", "match", "extract", "sort",
    "refine", "predict", "baseline", "average", "place", "report", "view", "evaluate",
)  # fmt: skip


class _CryomineGroup(TyperGroup):
    """Turns :class:`InputError` from any verb into a one-line message and exit status 2."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except InputError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=2) from error


app = typer.Typer(
    name="cryomine",
    cls=_CryomineGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Template-free structural pattern mining in cryo-electron tomography.\n\n"
        "Pick particles without templates, sort the subtomograms into structurally homogeneous "
        "classes with DISCA, average and re-embed them. Volumes are MRC, particle tables are "
        "RELION STAR, lengths are in Å unless an option says otherwise."
    ),
)


@app.callback()
def _configure(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log each step (INFO level) on stderr."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only warnings and errors; no progress bars."
    ),
) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from cryomine.cli import _common

    _common.QUIET = quiet


for _name in _COMMAND_MODULES:
    importlib.import_module(f"cryomine.cli._{_name}").register(app)


def main() -> None:
    """Entry point of the ``cryomine`` console script."""
    app()
