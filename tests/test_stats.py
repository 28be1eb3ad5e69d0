"""``stats`` and ``dashboard``: the office's figures, checked against what was written."""

from __future__ import annotations

import json
import re
from datetime import datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml

from benchmarks.history_data import generate, make_root
from broadcaster.stats.dashboard import lookup
from broadcaster.store.tally import Tally, bucket, quantile, reason_of
from tests.conftest import REPO, cli
from tests.simulator import PlatformSimulator

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=SH)


@pytest.fixture
def history(tmp_path, monkeypatch):
    """40 groups, 5 deliveries a day each, 3 days of history, at a frozen NOW."""
    root = tmp_path / "root"
    env = make_root(root, 40, REPO / "templates")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    written = generate(root / "var", groups=40, per_day=5, days=3, now=NOW)
    with time_machine.travel(NOW, tick=False):
        yield root, written


# -- the tally ---------------------------------------------------------------------

def test_buckets_keep_two_significant_digits():
    assert [bucket(v) for v in (0, 4.4, 99.6, 123, 1250, 98765)] == ["0", "4", "100", "120", "1200", "99000"]


def test_quantiles_are_nearest_rank():
    hist = {"1": 50, "2": 45, "30": 5}
    assert quantile(hist, 0.5) == 1.0 and quantile(hist, 0.95) == 2.0 and quantile(hist, 0.96) == 30.0
    assert quantile({}, 0.5) is None


def test_reasons_are_one_short_line():
    assert reason_of("93000: invalid webhook url\ntrace") == "93000: invalid webhook url"
    assert reason_of(None) == "unknown"
    assert len(reason_of("x" * 500)) == 80


def _ann(ann_id: str, statuses: list[str], status: str = "done") -> tuple[dict, list[dict]]:
    meta = {"id": ann_id, "created_at": "2026-11-22T09:00:00+08:00",
            "scheduled_for": "2026-11-22T09:00:00+08:00", "status": status, "source": "cli"}
    rows = [{"group": f"g{i}", "status": s, "sent_at": "2026-11-22T09:00:07+08:00" if s == "sent" else None,
             "latency_ms": 120.0 if s == "sent" else None, "last_error": "bad key" if s == "failed" else None}
            for i, s in enumerate(statuses)]
    return meta, rows


def test_a_tally_counts_each_announcement_once_and_survives_json():
    t = Tally()
    t.add(*_ann("a", ["sent", "sent", "failed", "expired"]))
    t.add(*_ann("a", ["sent", "sent", "failed", "expired"]))   # the same one again: ignored
    t.add(*_ann("b", ["cancelled", "cancelled"], status="cancelled"))
    assert t.totals() == {"sent": 2, "failed": 1, "expired": 1, "pending": 0, "cancelled": 2}
    assert t.published() == 1                     # cancelled before anything was sent
    assert t.failures == {"g2": {"bad key": 1}} and t.latency_s == {"7": 2}
    stored = json.dumps(t.as_json())
    merged = Tally()
    merged.merge(Tally.from_json(json.loads(stored)))
    merged.merge(Tally.from_json(json.loads(stored)))   # per-announcement totals merge once...
    assert len(merged.announcements) == 2
    assert merged.totals()["sent"] == 4            # ...group counters add up (days never overlap)


# -- stats on generated history ------------------------------------------------------

def test_stats_count_what_was_written(history):
    root, written = history
    data = cli(root, "stats", "--since", "7d", "--json").json()
    assert data["announcements"] == written.announcements
    d = data["deliveries"]
    assert {k: d[k] for k in ("sent", "failed", "expired")} == written.counts
    assert d["pending"] == 0
    assert sum(f["count"] for f in data["failures"]) == written.counts["failed"]
    assert {f["platform"] for f in data["failures"]} <= {"wecom", "dingtalk", "feishu", "slack",
                                                          "discord", "webhook"}
    assert data["groups_reached"] == 40
    assert data["since"] == "2026-11-15T00:00:00+08:00" and data["until"] == "2026-11-22T10:30:00+08:00"
    assert len(data["daily"]) == 8
    assert sum(day["sent"] for day in data["daily"]) == written.counts["sent"]
    assert data["daily"][-1]["sent"] == 0               # today: nothing yet
    assert 0 <= data["latency"]["median_s"] <= data["latency"]["p95_s"] <= 600
    assert data["inbound"] == {"messages": 0, "answered": 0, "missed": 0, "top_misses": []}
    assert {"opened", "resolved", "overdue", "by_grid"} <= set(data["tickets"])


def test_the_window_is_whole_days(history):
    root, written = history
    one = cli(root, "stats", "--since", "1d", "--json").json()   # yesterday and today
    assert one["since"] == "2026-11-21T00:00:00+08:00"
    assert one["deliveries"]["sent"] == sum(d["sent"] for d in one["daily"])
    assert 0 < one["deliveries"]["sent"] < written.counts["sent"]
    assert one["announcements"] == written.announcements // 3


@pytest.mark.parametrize("dimension", ["street", "community", "grid", "platform"])
def test_by_dimension_adds_up(history, dimension):
    root, written = history
    data = cli(root, "stats", "--by", dimension, "--json").json()
    rows = data["by"]["rows"]
    assert data["by"]["dimension"] == dimension
    assert sum(r["sent"] for r in rows) == written.counts["sent"]
    assert sum(r["groups"] for r in rows) == 40
    expected = {"street": 10, "community": 1, "grid": 40, "platform": 6}[dimension]
    assert len(rows) == expected


def test_stats_table_is_plain_when_piped(history):
    root, written = history
    r = cli(root, "stats", "--by", "street")
    assert r.code == 0, r.err
    assert not set("│─┃━┏┓┗┛╭╮╰╯") & set(r.out)
    assert re.search(rf"^deliveries sent\s+{written.counts['sent']:,}$", r.out, re.M)
    assert "by street" in r.out and "failures" in r.out


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["stats", "--by", "city"], 1, "--by"),
    (["stats", "--since", "forever"], 1, "--since"),
    (["dashboard"], 2, "--out"),
])
def test_bad_input_is_refused_as_json(history, args, code, needle):
    root, _ = history
    r = cli(root, *args, "--json")
    assert r.code == code
    assert needle in r.json()["error"]["message"]


# -- through the real pipeline ----------------------------------------------------------

def test_stats_after_real_sends(root):
    with PlatformSimulator() as sim:
        good, flaky = sim.add_robot("wecom"), sim.add_robot("dingtalk").fail_next("5xx", 1)
        gone = {"type": "wecom", "url": f"{sim.base_url}/cgi-bin/webhook/send?key=not-a-robot"}
        doc = {"defaults": {"timezone": "Asia/Shanghai"}, "groups": [
            {"id": "ok", "name": "好群", "tags": ["street:a", "kind:grid"], "channel": good.config()},
            {"id": "flaky", "name": "抖群", "tags": ["street:a"], "channel": flaky.config()},
            {"id": "gone", "name": "散群", "tags": ["street:b"], "channel": gone}]}
        (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        assert cli(root, "announce", "社区通知", "--to", "all").code == 0
        assert cli(root, "run-once", env={"BROADCASTER_RETRY_BASE": "600"}).code == 0
        data = cli(root, "stats", "--json", "--by", "street").json()
    assert data["announcements"] == 1 and data["by_source"] == {"cli": 1}
    assert {k: data["deliveries"][k] for k in ("sent", "failed", "pending")} == \
        {"sent": 1, "failed": 1, "pending": 1}
    [failure] = data["failures"]
    assert failure["platform"] == "wecom" and "93000" in failure["reason"] and failure["count"] == 1
    assert data["groups_reached"] == 1
    assert data["top_failed_groups"][0]["group"] == "gone"
    assert data["request_ms"]["median"] is not None
    street = {r["key"]: r for r in data["by"]["rows"]}
    assert street["a"]["sent"] == 1 and street["a"]["pending"] == 1 and street["b"]["failed"] == 1


# -- the dashboard ------------------------------------------------------------------------

class _Figures(HTMLParser):
    """Every ``data-key``/``data-value`` and every chart shape's ``data-value`` of a page."""

    def __init__(self):
        super().__init__()
        self.cards: dict[str, str | None] = {}
        self.shapes: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.embedded = ""
        self._chart = self._series = None
        self._in_json = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-key" in a:
            self.cards[a["data-key"]] = a.get("data-value")
        if tag == "svg":
            self._chart = a.get("data-chart")
        if tag == "g" and a.get("class") == "series":
            self._series = a["data-series"]
        if tag == "rect" and "data-value" in a and self._series:
            self.shapes.setdefault((self._chart, self._series), []).append(
                (a["data-label"], int(a["data-value"])))
        if tag == "script" and a.get("id") == "figures":
            self._in_json = True

    def handle_endtag(self, tag):
        if tag == "g":
            self._series = None
        if tag == "script":
            self._in_json = False

    def handle_data(self, data):
        if self._in_json:
            self.embedded += data


def test_the_dashboard_shows_the_numbers_stats_prints(history, tmp_path):
    root, _ = history
    figures = cli(root, "stats", "--json").json()
    r = cli(root, "dashboard", "--out", str(tmp_path / "dash"), "--json")
    assert r.code == 0, r.err
    page = (tmp_path / "dash" / "index.html").read_text(encoding="utf-8")
    parsed = _Figures()
    parsed.feed(page)
    assert json.loads(parsed.embedded) == figures
    assert len(parsed.cards) == 14
    for key, value in parsed.cards.items():
        expected = lookup(figures, key)
        assert (None if value is None else float(value)) == (None if expected is None else float(expected)), key
    daily = {d["date"][5:]: d for d in figures["daily"]}
    for series in ("sent", "failed"):
        shown = parsed.shapes[("daily", series)]
        assert all(daily[label][series] == value for label, value in shown)
        assert sum(v for _, v in shown) == figures["deliveries"][series]
    platforms: dict[str, int] = {}
    for f in figures["failures"]:
        platforms[f["platform"]] = platforms.get(f["platform"], 0) + f["count"]
    assert dict(parsed.shapes[("failure-platforms", "count")]) == platforms
    top = parsed.shapes[("failed-groups", "count")]
    assert [v for _, v in top] == [g["failed"] for g in figures["top_failed_groups"]]
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<script src" not in page


def test_outside_text_is_escaped_on_the_page(root, tmp_path):
    with PlatformSimulator() as sim:
        gone = {"type": "wecom", "url": f"{sim.base_url}/cgi-bin/webhook/send?key=not-a-robot"}
        doc = {"defaults": {"timezone": "Asia/Shanghai"}, "groups": [
            {"id": "evil", "name": "<script>alert(1)</script>群", "tags": [], "channel": gone}]}
        (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        cli(root, "announce", "x", "--to", "all")
        cli(root, "run-once")
    assert cli(root, "dashboard", "--out", str(tmp_path / "dash")).code == 0
    page = (tmp_path / "dash" / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;群" in page       # the failed-groups chart
    assert "\\u003cscript\\u003ealert(1)" in page                  # the embedded figures


# -- the token that guards /dashboard -----------------------------------------------------

def _token_root(root, token_line: str):
    (root / "groups.yaml").write_text(
        "defaults:\n  timezone: Asia/Shanghai\n" + token_line +
        "groups:\n  - {id: g1, name: 群, channel: {type: file, path: out}}\n", encoding="utf-8")


def test_the_dashboard_token_is_checked_in_constant_time_and_redacted(root, monkeypatch):
    from broadcaster.app import App
    from broadcaster.stats.dashboard import authorized

    _token_root(root, "")
    assert authorized(App(root), "Bearer anything") is None          # no token: no page (404)
    monkeypatch.setenv("DASH_TOKEN", "s3cret-token-0123456789")
    _token_root(root, "  dashboard_token: ${DASH_TOKEN}\n")
    app = App(root)
    assert authorized(app, "Bearer s3cret-token-0123456789") is True
    assert authorized(app, "bearer s3cret-token-0123456789") is True
    assert authorized(app, "Bearer wrong") is False
    assert authorized(app, None) is False
    assert authorized(app, "Basic s3cret-token-0123456789") is False
    assert app.redact("the token is s3cret-token-0123456789") == "the token is ***"


def test_a_short_or_inline_dashboard_token(root):
    _token_root(root, "  dashboard_token: short\n")
    r = cli(root, "check", "--json")
    assert r.code == 1 and "dashboard_token" in r.out and "16 characters" in r.out
    _token_root(root, "  dashboard_token: an-inline-token-0123456789\n")
    assert cli(root, "check").code == 0
    assert not list((root / "var" / "cache").glob("*"))   # a file holding a secret is never cached


# -- work orders, as the tickets commands leave them ------------------------------------------

def test_ticket_figures_come_from_the_ticket_store(root):
    from tests.tickets_helpers import write_tickets_root

    write_tickets_root(root)
    opened_at = datetime(2026, 11, 16, 9, 0, tzinfo=SH)      # a Monday
    with time_machine.travel(opened_at, tick=False):
        ids = [cli(root, "tickets", "open", "--group", g, text, "--json").json()["id"]
               for g, text in (("hlz-g01", "楼道垃圾没人清"), ("hlz-g01", "路灯坏了"),
                               ("huju-g01", "消防通道被占"))]
    with time_machine.travel(datetime(2026, 11, 16, 15, 0, tzinfo=SH), tick=False):
        assert cli(root, "tickets", "accept", ids[0], "--by", "wang-li").code == 0
        assert cli(root, "tickets", "resolve", ids[0], "--result", "已清运", "--by", "wang-li").code == 0
    with time_machine.travel(datetime(2026, 11, 22, 10, 0, tzinfo=SH), tick=False):
        t = cli(root, "stats", "--json").json()["tickets"]
        dash = cli(root, "dashboard", "--out", str(root / "dash"))
    assert (t["opened"], t["resolved"], t["overdue"]) == (3, 1, 2)
    assert t["median_handling_hours"] == 6.0
    assert t["by_status"] == {"assigned": 2, "resolved": 1}
    grids = {r["grid"]: r for r in t["by_grid"]}
    assert grids["hlz-g01"] == {"grid": "hlz-g01", "name": "汇林绿洲第1网格群", "opened": 2,
                                "resolved": 1, "overdue": 1, "median_handling_hours": 6.0}
    assert grids["huju-g01"]["overdue"] == 1
    assert dash.code == 0
    page = (root / "dash" / "index.html").read_text(encoding="utf-8")
    assert 'data-chart="ticket-status" data-series="1"' in page and "已办结" in page
    assert 'data-chart="overdue-grids" data-series="1"' in page and "汇林绿洲第1网格群" in page
