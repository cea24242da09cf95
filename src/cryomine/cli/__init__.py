"""The ``cryomine`` command line: one verb per pipeline stage.

Each verb lives in its own module here and registers itself through ``register(app)``. Modules
import the heavy libraries (torch, zarr, ...) inside the command bodies, so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cryomine.errors import InputError

__all__ = ["app", "main", "reflow_help"]

# The order here is the order of `cryomine --help`.
_COMMAND_MODULES: tuple[str, ...] = (
    "demo", "pipeline", "info", "structures", "simulate", "import", "pick", "picker", "match", "extract", "sort",
    "refine", "predict", "baseline", "average", "place", "report", "view", "evaluate",
)  # fmt: skip


#: A line that starts a list item in a help text: "- ", "* " or "1. " / "1) ".
_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+[.)])\s")


def reflow_help(text: str) -> str:
    """A docstring as ``--help`` should show it: the source's line breaks inside a paragraph
    become spaces (the terminal wraps), list items keep a line each, and a paragraph starting
    with ``\\b`` is left as written (click's convention)."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        rows: list[str] = []
        for line in paragraph.split("\n"):
            if rows and not _LIST_ITEM.match(line):
                rows[-1] += " " + line.strip()
            else:
                rows.append(line.strip())
        paragraphs.append("\n".join(rows))
    return "\n\n".join(paragraphs)


def _tidy(command: Any) -> None:
    """Reflow the help of ``command`` and of its subcommands, and give flags no type column
    (Typer would show ``<bool>`` for an option that takes no value)."""
    if getattr(command, "_cryomine_tidy", False):
        return
    command._cryomine_tidy = True  # type: ignore[attr-defined]
    if command.help:
        command.help = reflow_help(command.help)
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    make_help_option = command.get_help_option  # click builds --help anew for each call

    def get_help_option(ctx: typer.Context) -> Any:
        option = make_help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


class _CryomineGroup(TyperGroup):
    """Turns :class:`InputError` from any verb into a one-line message and exit status 2, and
    tidies each verb's help (:func:`reflow_help`)."""

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy(command)
        return command

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        _tidy(self)
        super().format_help(ctx, formatter)

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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log each step (INFO level) on stderr.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors; no progress bars.")
    ] = False,
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
