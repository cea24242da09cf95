"""The report in a real browser: headless Chromium renders it offline, without console errors.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``; CI installs it). Chromium loads a test
copy of the report with one added script that, on ``load``, writes into ``document.title`` how
many images decoded (``naturalWidth > 0``), how many there are and how many class cards; the
title is read back from ``--dump-dom``. A screenshot of the unmodified report must not be blank.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")

# CI installs Chromium and sets CRYOMINE_REQUIRE_BROWSER=1, so there a missing browser fails
# the run instead of skipping the test.
if os.environ.get("CRYOMINE_REQUIRE_BROWSER") == "1" and not CHROMIUM.is_file():
    raise RuntimeError(f"CRYOMINE_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="headless-browser test needs /usr/bin/chromium (apt-get install -y chromium)",
)

_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
]  # fmt: skip

_CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.title = "cm-check " + decoded.length + " " + images.length + " "
    + document.querySelectorAll(".class-card").length;
});
</script>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def rendered(rendered_report: Path) -> Path:
    return rendered_report


def test_every_image_decodes_in_chromium(rendered: Path, tmp_path: Path) -> None:
    document = rendered.read_text(encoding="utf-8")
    n_images = document.count("<img ")
    check = tmp_path / "check.html"
    check.write_text(document.replace("</body>", _CHECK_SCRIPT + "</body>"), encoding="utf-8")
    result = _chromium(["--virtual-time-budget=10000", "--dump-dom", check.as_uri()],
                       tmp_path / "profile")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    title = re.search(r"<title>cm-check (\d+) (\d+) (\d+)</title>", result.stdout)
    assert title is not None, result.stdout[:500]
    decoded, total, cards = (int(v) for v in title.groups())
    assert total == n_images >= 16
    assert decoded == total
    assert cards == 3
    assert _console_lines(result.stderr) == []


def test_screenshot_is_not_blank_and_page_is_quiet(rendered: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    result = _chromium(["--window-size=1280,4000", f"--screenshot={shot}", rendered.as_uri()],
                       tmp_path / "profile")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file()
    image = matplotlib.image.imread(shot)
    assert image.shape[:2] == (4000, 1280)
    grey = image[..., :3].mean(axis=-1)
    # not blank: many grey levels, and both the dark header and light page are there
    assert np.unique(np.round(grey * 255)).size > 50
    assert grey[:40].mean() < 0.4 and grey.mean() > 0.6
    assert _console_lines(result.stderr) == []
