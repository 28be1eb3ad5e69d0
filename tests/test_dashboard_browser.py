"""The dashboard as a person sees it: opened in headless Chromium at a phone's size.

Chromium is Debian's ``chromium`` package, which ``make test`` installs when it
is missing; where it cannot be installed this test is skipped and says why.
The screenshot is kept as ``.pytest_cache/dashboard-test.png`` for people to look at.
"""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from benchmarks.bench_tickets import write_root
from benchmarks.history_data import generate
from benchmarks.resident_data import generate_residents
from tests.browser import Browser, find_chromium
from tests.conftest import REPO, cli

pytestmark = pytest.mark.browser

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
SHOT = REPO / ".pytest_cache" / "dashboard-test.png"   # not var/: that is the state dir

# What the page draws, read back from the rendered DOM: per chart, its series,
# how many of their shapes have a visible size, their colours, and where it is.
CHARTS_JS = """
Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    chart: svg.dataset.chart, declared: Number(svg.dataset.series),
    box: {x: box.left + scrollX, y: box.top + scrollY, width: box.width, height: box.height},
    series: Array.from(svg.querySelectorAll('g.series')).map(g => {
      const shapes = Array.from(g.querySelectorAll('rect'));
      return {key: g.dataset.series,
              visible: shapes.filter(r => {
                const b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length,
              colors: [...new Set(shapes.map(r => getComputedStyle(r).fill))]};
    }),
  };
})
"""

# Series each chart is expected to draw for the generated district (its deliveries,
# residents' questions and work orders).
EXPECTED = {"daily": 2, "failure-reasons": 1, "failure-platforms": 1, "failed-groups": 1,
            "questions": 1, "ticket-status": 1, "overdue-grids": 1}


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(x) for x in css[css.index("(") + 1: css.index(")")].split(",")[:3])


def _pixels_of(image, box: dict, scale: float, colors: list[str]) -> int:
    """How many pixels inside ``box`` have exactly one of ``colors``."""
    wanted = {_rgb(c) for c in colors}
    crop = image.crop((int(box["x"] * scale), int(box["y"] * scale),
                       int((box["x"] + box["width"]) * scale), int((box["y"] + box["height"]) * scale)))
    return sum(n for n, rgb in crop.getcolors(maxcolors=1 << 20) if rgb[:3] in wanted)


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed and could not be installed here: `make test` installs "
                    "Debian's chromium package when run as root (apt-get install -y chromium)")
    with Browser(binary) as browser:
        yield browser


def test_the_dashboard_renders_on_a_phone_without_errors(chromium, tmp_path, monkeypatch):
    from PIL import Image

    root = tmp_path / "root"
    for k, v in write_root(root, 120).items():
        monkeypatch.setenv(k, v)
    generate(root / "var", groups=120, per_day=4, days=14, now=NOW)
    generate_residents(root, groups=120, days=14, now=NOW)
    with time_machine.travel(NOW, tick=False):
        assert cli(root, "dashboard", "--out", str(tmp_path / "dash"), "--since", "14d").code == 0
    page = tmp_path / "dash" / "index.html"
    visit = chromium.open(page.as_uri(), CHARTS_JS)

    SHOT.parent.mkdir(exist_ok=True)
    SHOT.write_bytes(visit.screenshot)
    assert visit.errors == []
    assert [u for u in visit.requests if u != page.as_uri()] == []       # nothing fetched: offline
    charts = {c["chart"]: c for c in visit.charts}
    assert {k: charts[k]["declared"] for k in EXPECTED} == EXPECTED
    image = Image.open(io.BytesIO(visit.screenshot)).convert("RGB")
    scale = image.width / 412
    assert scale == 2                                                  # the phone's pixel ratio
    for name, count in EXPECTED.items():
        chart = charts[name]
        assert len(chart["series"]) == count, name
        assert chart["box"]["width"] > 300 and chart["box"]["height"] > 40, (name, chart["box"])
        assert chart["box"]["x"] + chart["box"]["width"] <= 412, name     # fits the phone's width
        for series in chart["series"]:
            assert series["visible"] > 0, (name, series)
            painted = _pixels_of(image, chart["box"], scale, series["colors"])
            assert painted > 50, (name, series["key"], painted)        # drawn, in its own colour
    daily = charts["daily"]["series"]
    assert [s["key"] for s in daily] == ["sent", "failed"] and daily[0]["visible"] == 14


def test_the_browser_check_sees_errors_and_requests(chromium, tmp_path):
    """The checks above would notice a console error, an exception or a fetch."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    visit = chromium.open(page.as_uri())
    assert any("boom" in e for e in visit.errors)
    assert any("undefinedFunction" in e for e in visit.errors)
    assert "http://127.0.0.1:9/x.png" in visit.requests
