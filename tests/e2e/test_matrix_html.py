"""matrix.html in a real browser: the changes section first, one row per scenario, every cell
that changed marked, and nothing loaded from anywhere. Built from the real per-version reports
in tests/unit/data/matrix (no cluster needed; chromium is the real tool here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.matrix import load_version_reports
from lab.matrix_render import write_matrix
from tests.e2e.test_run_report import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parents[1] / "unit" / "data" / "matrix"
VERSIONS = ("v1.34.4", "v1.35.4", "v1.36.3", "v1.37.2")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("matrix")
    matrix = load_version_reports({v: DATA / v for v in VERSIONS})
    write_matrix(matrix, out)
    return out / "matrix.html"


def browse(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_matrix_renders_in_chromium_changes_first_one_row_per_scenario(page, tmp_path):
    proc = browse(page, tmp_path / "profile", "--dump-dom")
    dom = proc.stdout
    assert dom.index('<section class="changes"') < dom.index('<section id="matrix"'), dom[:500]
    assert dom.count('<tr class="scenario"') == 7
    assert dom.count('<td class="cell changed"') == 2
    assert dom.count('<h3 class="upgrade">') == 4
    assert "&lt;host1&gt;" in dom and "<host1>" not in dom
    assert "Content Security Policy" not in proc.stderr, "the page tried to load something"


def test_matrix_page_is_drawn_not_blank(page, tmp_path):
    shot = tmp_path / "matrix.png"
    browse(page, tmp_path / "profile", "--window-size=1400,1800", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000, "a rendered page, not a blank one"
