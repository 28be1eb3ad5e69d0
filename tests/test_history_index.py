"""The history index: what readers get from it equals what a full scan of the archive gives,
and it mends itself after a crash, a retry or an old store."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml

from benchmarks.history_data import generate, make_root
from tests.conftest import REPO, cli
from tests.simulator import PlatformSimulator

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=SH)


@pytest.fixture
def history(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for k, v in make_root(root, 40, REPO / "templates").items():
        monkeypatch.setenv(k, v)
    written = generate(root / "var", groups=40, per_day=5, days=40, now=NOW)
    with time_machine.travel(NOW, tick=False):
        yield root, written


def _archive(root) -> list[tuple[dict, list[dict]]]:
    out = []
    for path in sorted((root / "var" / "archive").glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append((data["_default"]["1"], list(data["deliveries"].values())))
    return out


def _scan(root, *, status=None, group=None, since=None) -> list[dict]:
    """Every log row, by reading every archived file: what the index must agree with."""
    rows = []
    for meta, deliveries in _archive(root):
        for d in deliveries:
            updated = d.get("updated_at") or meta["created_at"]
            if ((status and d["status"] != status) or (group and d["group"] != group)
                    or (since and datetime.fromisoformat(updated) < since)):
                continue
            rows.append((updated, meta["id"], d["group"], d["status"]))
    return sorted(rows, reverse=True)


def _shown(rows: list[dict]) -> list[tuple]:
    return [(r["updated_at"], r["announcement"], r["group"], r["status"]) for r in rows]


@pytest.mark.parametrize(("args", "since_days", "status", "group", "limit"), [
    (["--since", "3d", "--limit", "50"], 3, None, None, 50),
    (["--status", "failed", "--since", "7d"], 7, "failed", None, None),
    (["--status", "expired", "--since", "30d", "--limit", "5"], 30, "expired", None, 5),
    (["--since", "2d"], 2, None, None, None),
    (["--group", "g0003", "--since", "10d"], 10, None, "g0003", None),
])
def test_log_from_the_index_equals_a_full_scan(history, args, since_days, status, group, limit):
    from datetime import timedelta

    root, _ = history
    got = _shown(cli(root, "log", *args, "--json").json())
    want = _scan(root, status=status, group=group, since=NOW - timedelta(days=since_days))
    want = [tuple(w) for w in want]
    if limit is None:
        assert sorted(got, reverse=True) == want and [g[0] for g in got] == [w[0] for w in want]
    else:   # newest first; rows tied with the last one shown may be any of the tied ones
        assert [g[0] for g in got] == [w[0] for w in want[:limit]]
        assert {g for g in got if g[0] > got[-1][0]} == {w for w in want[:limit] if w[0] > got[-1][0]}
    assert got


def test_queue_list_all_is_newest_first_and_stops_at_the_limit(history):
    root, written = history
    got = cli(root, "queue", "list", "--all", "--limit", "30", "--json").json()
    metas = sorted((m for m, _ in _archive(root)), key=lambda m: m["created_at"], reverse=True)
    assert [r["created_at"] for r in got] == [m["created_at"] for m in metas[:30]]
    assert {r["id"] for r in got} <= set(written.ids)
    assert set(got[0]) == {"id", "created_at", "scheduled_for", "expires_at", "status", "source",
                           "title", "urgent", "targets", "sent", "failed", "pending", "cancelled",
                           "expired"}
    assert len(cli(root, "queue", "list", "--all", "--json").json()) == 100   # the default limit


def test_the_generator_writes_the_index_the_store_would(history):
    root, _ = history
    index = root / "var" / "history"
    written = {p.relative_to(index): json.loads(p.read_text()) for p in index.rglob("*.json")}
    shutil.rmtree(index)
    before = cli(root, "stats", "--since", "60d", "--json").json()    # rebuilds every day
    rebuilt = {p.relative_to(index): json.loads(p.read_text()) for p in index.rglob("*.json")
               if p.parent.name != "months"}
    assert rebuilt == written
    assert cli(root, "stats", "--since", "60d", "--json").json() == before


def test_a_past_month_is_read_as_one_document_that_agrees_with_its_days(history, tmp_path):
    root, _ = history
    months = root / "var" / "history" / "months"
    from_days = cli(root, "stats", "--since", "60d", "--json").json()   # October whole: summed
    assert [p.name for p in months.glob("*.json")] == ["2026-10-01.json"]
    assert cli(root, "stats", "--since", "60d", "--json").json() == from_days   # read as one
    by = cli(root, "stats", "--since", "60d", "--by", "street", "--json").json()
    shutil.rmtree(months)
    assert cli(root, "stats", "--since", "60d", "--by", "street", "--json").json() == by
    assert cli(root, "dashboard", "--out", str(tmp_path / "page"), "--since", "60d").code == 0
    assert f"{from_days['deliveries']['sent']:,}" in (tmp_path / "page" / "index.html").read_text()
    # a month document that no longer matches the archive (an announcement of October
    # taken out of it, as a retry does) is summed again from its days
    doc = json.loads((months / "2026-10-01.json").read_text())
    doc["tally"]["published"] += 7
    (months / "2026-10-01.json").write_text(json.dumps(doc))
    assert cli(root, "stats", "--since", "60d", "--json").json()["announcements"] == \
        from_days["announcements"] + 7                     # trusted while the archive agrees
    archived = sorted((root / "var" / "archive" / "2026-10").glob("*.json"))[0]
    archived.rename(tmp_path / archived.name)
    shrunk = cli(root, "stats", "--since", "60d", "--json").json()
    assert shrunk["announcements"] == from_days["announcements"] - 1
    (tmp_path / archived.name).rename(archived)
    assert cli(root, "stats", "--since", "60d", "--json").json() == from_days


def test_a_day_the_index_missed_is_rebuilt(history):
    """A crash between the archive move and the index write, or a store older than the index."""
    root, _ = history
    before = cli(root, "stats", "--since", "7d", "--json").json()
    day = sorted((root / "var" / "history" / "days").glob("*.json"))[-1]
    data = json.loads(day.read_text())
    missing = sorted(data["announcements"])[0]
    del data["announcements"][missing]
    day.write_text(json.dumps(data))                       # one announcement not indexed
    assert cli(root, "stats", "--since", "7d", "--json").json() == before
    assert missing in json.loads(day.read_text())["announcements"]
    day.write_text("{not json")                              # a damaged index file
    assert cli(root, "stats", "--since", "7d", "--json").json() == before


def test_retry_of_a_finished_announcement_moves_it_out_of_the_index_and_back(root):
    with PlatformSimulator() as sim:
        good = sim.add_robot("wecom")
        gone = {"type": "wecom", "url": f"{sim.base_url}/cgi-bin/webhook/send?key=not-a-robot"}
        doc = {"defaults": {"timezone": "Asia/Shanghai"}, "groups": [
            {"id": "ok", "name": "好群", "tags": [], "channel": good.config()},
            {"id": "gone", "name": "散群", "tags": [], "channel": gone}]}
        (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        ann = cli(root, "announce", "通知", "--to", "all", "--json").json()["id"]
        cli(root, "run-once")
        stats = cli(root, "stats", "--json").json()
        assert (stats["deliveries"]["sent"], stats["deliveries"]["failed"]) == (1, 1)
        assert [r["group"] for r in cli(root, "log", "--status", "failed", "--json").json()] == ["gone"]
        assert cli(root, "queue", "retry", ann).code == 0          # out of the archive
        stats = cli(root, "stats", "--json").json()
        assert (stats["deliveries"]["failed"], stats["deliveries"]["pending"]) == (0, 1)
        assert stats["announcements"] == 1
        assert cli(root, "log", "--status", "failed", "--json").json() == []
        assert [r["id"] for r in cli(root, "queue", "list", "--all", "--json").json()] == [ann]
        cli(root, "run-once")                                       # fails again: back in
        stats = cli(root, "stats", "--json").json()
        assert (stats["deliveries"]["sent"], stats["deliveries"]["failed"]) == (1, 1)
        assert [r["group"] for r in cli(root, "log", "--status", "failed", "--json").json()] == ["gone"]
        assert len(cli(root, "log", "--json").json()) == 2


def test_retention_deletes_whole_months(history):
    from broadcaster.app import App
    from broadcaster.schedule.passes import apply_retention

    root, _ = history
    app = App(root)
    months = sorted(p.name for p in (root / "var" / "archive").iterdir())
    assert months == ["2026-10", "2026-11"]
    assert apply_retention(app, NOW) == 0                     # 180 days at least: nothing is that old
    assert cli(root, "run-once", "--json").code == 0           # once a day: October summed up
    assert (root / "var" / "history" / "months" / "2026-10-01.json").exists()
    gone = app.store.drop_before(datetime(2026, 11, 5).date())
    assert not (root / "var" / "history" / "months" / "2026-10-01.json").exists()
    assert gone > 0
    assert sorted(p.name for p in (root / "var" / "archive").iterdir()) == ["2026-11"]
    assert min(app.store.history.days()).isoformat() >= "2026-11-01"
    stats = cli(root, "stats", "--since", "60d", "--json").json()
    assert stats["daily"][0]["date"] == "2026-09-23" and not any(
        d["sent"] for d in stats["daily"] if d["date"] < "2026-11-01")


def test_a_groups_log_with_a_limit_opens_only_the_archived_files_it_needs(history, monkeypatch):
    """``log --group --limit`` on the embedded store opens announcements newest first and
    stops once the next one cannot beat the rows found, as the log of every group does."""
    from broadcaster.store.files import FileStore

    root, _ = history
    real, opened = FileStore.load_archived, []

    def counting(self, ann_id, **kw):
        if kw.get("group"):          # the log's own reads, not the index's mending
            opened.append(ann_id)
        return real(self, ann_id, **kw)

    monkeypatch.setattr(FileStore, "load_archived", counting)
    every = cli(root, "log", "--group", "g0003", "--since", "10d", "--json").json()
    all_opened = len(opened)
    opened.clear()
    first = cli(root, "log", "--group", "g0003", "--since", "10d", "--limit", "1", "--json").json()
    assert _shown(first) == _shown(every)[:1]
    day = opened[0][:8]
    of_day = {m["id"] for m, _ in _archive(root) if m["id"].startswith(day)}
    assert set(opened) < of_day, "not every announcement of the day"
    assert len(opened) < all_opened
