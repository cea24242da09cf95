import typer
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError

runner = CliRunner()


def test_help_lists_verbs():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "info" in result.output


def test_info_reports_versions_and_device():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "cryomine" in result.output
    assert "torch" in result.output
    assert "device" in result.output


def test_input_error_becomes_one_line_and_exit_status_2():
    probe = typer.Typer()

    @probe.command("fail")
    def fail() -> None:
        raise InputError("tomo.mrc: file not found")

    @probe.command("other")
    def other() -> None:
        pass

    app.add_typer(probe, name="probe-for-test")
    try:
        result = runner.invoke(app, ["probe-for-test", "fail"])
    finally:
        app.registered_groups.pop()
    assert result.exit_code == 2
    assert result.output.strip() == "error: tomo.mrc: file not found"


def test_reflow_help_joins_source_lines_and_keeps_list_items():
    from cryomine.cli import reflow_help

    text = """Summary line.

    A sentence broken
    across two source lines.

    - first item,
      continued
    - second item

    \b
    kept
    as is"""
    assert reflow_help(text) == (
        "Summary line.\n\nA sentence broken across two source lines.\n\n"
        "- first item, continued\n- second item\n\n\b\nkept\nas is"
    )


def test_verb_help_reads_as_prose_and_flags_show_no_type():
    result = CliRunner().invoke(app, ["sort", "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    # the docstring breaks this sentence across source lines; --help shows it on one
    assert "rlnMaxValueProbDistribution), features.npy" in result.output
    nested = CliRunner().invoke(app, ["simulate", "subtomograms", "--help"], terminal_width=400)
    assert nested.exit_code == 0 and "<bool>" not in nested.output
