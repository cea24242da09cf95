"""The CLI progress helper: plain lines when not a terminal, a rich bar on one, silence if quiet."""

from __future__ import annotations

import io
import re
import sys

import pytest

from cryomine.cli import _common


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(n: int) -> None:
    with _common.progress("work") as bar:
        for done in range(1, n + 1):
            bar(done, n)


def test_plain_lines_with_rate_and_the_last_one(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(_common, "QUIET", False)
    monkeypatch.setattr(sys, "stderr", stream)
    _run(50)
    lines = stream.getvalue().splitlines()
    assert 1 <= len(lines) <= 2  # the first one, then throttled to one per 5 s, and the last
    assert re.fullmatch(r"work: 50/50 \([0-9.]+/s, \d+ s\)", lines[-1])
    assert lines[0].startswith("work: 1/50") and "ETA" in lines[0]


def test_rich_bar_on_a_terminal_goes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = _Terminal()
    monkeypatch.setattr(_common, "QUIET", False)
    monkeypatch.setattr(sys, "stderr", stream)
    _run(20)
    shown = stream.getvalue()
    assert "work" in shown and "20/20" in shown and "/s" in shown
    assert capsys.readouterr().out == ""  # nothing on stdout


def test_quiet_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    for stream in (io.StringIO(), _Terminal()):
        monkeypatch.setattr(_common, "QUIET", True)
        monkeypatch.setattr(sys, "stderr", stream)
        _run(10)
        assert stream.getvalue() == ""
