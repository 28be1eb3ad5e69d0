"""Scheduling: cron in a timezone, catch-up after downtime, once across processes, DST."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from broadcaster.app import App
from broadcaster.config.schedules import Job, make_trigger
from broadcaster.errors import InputError
from broadcaster.schedule import scheduler
from tests.conftest import REPO, cli, write_groups

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")

GROUPS = """
defaults: {timezone: Asia/Shanghai}
groups:
  - id: g1
    name: 第1网格群
    tags: [community:hlz]
    channel: {type: file, path: out}
  - id: g2
    name: 第2网格群
    tags: [community:other]
    channel: {type: file, path: out}
"""


def job(cron="0 7 * * *", tz="Asia/Shanghai", catch_up="once", grace=timedelta(hours=1)) -> Job:
    return Job(id="j", cron=cron, timezone=tz, content="template", to=("all",),
               template="sorting_reminder", catch_up=catch_up, grace=grace)


def at(*args, tz=SH) -> datetime:
    return datetime(*args, tzinfo=tz)


def simulate(j: Job, start: datetime, end: datetime, step: timedelta, record=None):
    """Call plan() every ``step`` from start to end; the scheduled times that fired."""
    fired, now = [], start.astimezone(ZoneInfo("UTC"))   # real clocks step in UTC
    while now <= end:
        record, when = scheduler.plan(j, record, now)
        if when is not None:
            fired.append(when)
        now += step
    return fired


# --- pure planning ------------------------------------------------------------------

def test_fires_once_per_scheduled_time_when_polled_every_minute():
    fired = simulate(job(), at(2026, 11, 21, 6, 58), at(2026, 11, 23, 7, 5), timedelta(minutes=1))
    assert fired == [at(2026, 11, 21, 7), at(2026, 11, 22, 7), at(2026, 11, 23, 7)]


def test_new_job_does_not_catch_up_the_past():
    assert scheduler.plan(job(), None, at(2026, 11, 22, 8, 30))[1] is None
    # but the minute cron runs in counts as now
    assert scheduler.plan(job(), None, at(2026, 11, 22, 7, 0, 30))[1] == at(2026, 11, 22, 7)


@pytest.mark.parametrize(("catch_up", "grace", "expect"), [
    ("once", timedelta(hours=2), at(2026, 11, 22, 7)),
    ("once", timedelta(hours=1), None),
    ("skip", timedelta(hours=2), None),
])
def test_stopped_across_7_restarted_at_830(catch_up, grace, expect):
    j = job(catch_up=catch_up, grace=grace)
    record, _ = scheduler.plan(j, None, at(2026, 11, 22, 6, 50))     # last seen before 07:00
    record, when = scheduler.plan(j, record, at(2026, 11, 22, 8, 30))
    assert when == expect
    assert scheduler.plan(j, record, at(2026, 11, 22, 8, 31))[1] is None


def test_long_downtime_fires_latest_only_and_is_cheap():
    j = job(cron="* * * * *", grace=timedelta(hours=1))
    record, _ = scheduler.plan(j, None, at(2025, 1, 1, 0, 0))
    record, when = scheduler.plan(j, record, at(2026, 11, 22, 8, 30, 10))
    assert when == at(2026, 11, 22, 8, 30)


def test_dst_spring_forward_and_fall_back_fire_once_per_day():
    daily = job(cron="0 7 * * *", tz="America/New_York")
    fired = simulate(daily, at(2026, 3, 6, 0, tz=NY), at(2026, 3, 10, 0, tz=NY),
                     timedelta(minutes=10))
    assert [f.astimezone(NY).hour for f in fired] == [7, 7, 7, 7]
    assert [f.utcoffset() for f in fired][1:3] == [timedelta(hours=-5), timedelta(hours=-4)]
    # 02:30 does not exist on 2026-03-08: it fires once, after the gap
    gap = job(cron="30 2 * * *", tz="America/New_York")
    fired = simulate(gap, at(2026, 3, 7, 3, tz=NY), at(2026, 3, 9, 3, tz=NY), timedelta(minutes=5))
    assert len(fired) == 2
    # 01:30 happens twice on 2026-11-01: it fires once (polling in UTC steps through both)
    fold = job(cron="30 1 * * *", tz="America/New_York")
    start = datetime(2026, 10, 31, 12, tzinfo=ZoneInfo("UTC"))
    fired = simulate(fold, start, start + timedelta(days=2), timedelta(minutes=5))
    assert len(fired) == 2 and fired[0].day == 1 and fired[1].day == 2


def test_cron_weekday_is_crontab_not_apscheduler():
    # 2026-11-22 is a Sunday; crontab 1 = Monday (APScheduler's own 1 would be Tuesday)
    trig = make_trigger("0 9 * * 1", SH)
    assert trig.get_next_fire_time(None, at(2026, 11, 22)) == at(2026, 11, 23, 9)
    assert make_trigger("0 9 * * 0", SH).get_next_fire_time(None, at(2026, 11, 22)) == \
        at(2026, 11, 22, 9)


# --- with the store -----------------------------------------------------------------

@pytest.fixture
def app(root: Path, tmp_path: Path) -> App:
    write_groups(root, GROUPS)
    (root / "schedules" / "s.yaml").write_text(textwrap.dedent("""
        jobs:
          - id: sorting
            cron: "0 7 * * *"
            content: template
            template: sorting_reminder
            to: [community:hlz]
            grace: 2h
          - id: skipper
            cron: "0 7 * * *"
            content: template
            template: sorting_reminder
            to: [all]
            catch_up: skip
    """), encoding="utf-8")
    return App(root, tmp_path / "state")


def _deliveries(app) -> list[tuple[str, str]]:
    from broadcaster.queue import outbox

    return sorted((a.meta.source, d.group) for a in outbox.active(app) for d in a.deliveries)


def test_fire_due_records_then_runs(app):
    assert scheduler.fire_due(app, at(2026, 11, 22, 6, 50)) == []
    assert scheduler.fire_due(app, at(2026, 11, 22, 8, 30)) == ["sorting"]      # once, not skip
    assert scheduler.fire_due(app, at(2026, 11, 22, 8, 31)) == []
    assert _deliveries(app) == [("job:sorting@2026-11-22T07:00:00+08:00", "g1")]
    state = app.store.read_state("schedule")
    assert state["sorting"]["fired"] == "2026-11-22T07:00:00+08:00"
    assert state["sorting"]["status"] == "done"
    assert "skipped" in state["skipper"]


def test_next_fire_times_and_run_job(app):
    nxt = scheduler.next_fire_times(app, at(2026, 11, 22, 7, 0))
    assert nxt["sorting"] == at(2026, 11, 23, 7)
    ids = scheduler.run_job(app, "sorting", at(2026, 11, 22, 10))
    assert len(ids) == 1
    with pytest.raises(InputError, match="did you mean sorting"):
        scheduler.run_job(app, "sortin", at(2026, 11, 22, 10))


def test_jobs_cli(app):
    res = cli(app.root, "jobs", "list", "--json", env={"BROADCASTER_STATE_DIR": str(app.state_dir)})
    assert res.code == 0, res.err
    rows = res.json()
    assert [r["id"] for r in rows] == ["sorting", "skipper"]
    assert set(rows[0]) >= {"id", "cron", "timezone", "content", "to", "next_fire"}
    res = cli(app.root, "jobs", "run", "nope", env={"BROADCASTER_STATE_DIR": str(app.state_dir)})
    assert res.code == 1


RACE = """
import sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from broadcaster.app import App
from broadcaster.schedule import scheduler
app = App(sys.argv[1], sys.argv[2])
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
now = datetime(2026, 11, 22, 7, 0, 20, tzinfo=ZoneInfo("Asia/Shanghai"))
print(",".join(scheduler.fire_due(app, now)))
"""


@pytest.fixture(params=["files", "postgres"])
def any_app(request, monkeypatch) -> App:
    """``app`` on the embedded store, then on PostgreSQL (the processes it starts too)."""
    if request.param == "postgres":
        monkeypatch.setenv("BROADCASTER_DATABASE_URL", request.getfixturevalue("pg_url"))
    return request.getfixturevalue("app")


def test_two_processes_racing_over_the_same_minute_fire_once(any_app):
    import time

    app = any_app

    # both have seen 06:59 (the job exists); both wake at 07:00:20
    scheduler.fire_due(app, at(2026, 11, 22, 6, 59))
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(app.root), str(app.state_dir),
                               str(start)], cwd=REPO, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outs) == ["", "", "sorting,skipper"]
    assert len(_deliveries(app)) == 3      # sorting → g1; skipper → g1, g2


CLAIM_RACE = """
import sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from broadcaster.app import App
app = App(sys.argv[1], sys.argv[2])
app.store.ensure()
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
print(app.store.claim_slot("sorting", datetime(2026, 11, 22, 7, tzinfo=ZoneInfo("Asia/Shanghai"))))
"""


def test_on_postgres_a_slot_is_claimed_once_by_its_key_alone(app, pg_url, monkeypatch):
    """Three processes claim one slot at the same moment, outside the schedule document's
    lock: the table's primary key lets exactly one in. And a slot fired once stays fired
    when the schedule document is lost (it would fire again on a document alone)."""
    import time

    import psycopg

    monkeypatch.setenv("BROADCASTER_DATABASE_URL", pg_url)
    app = App(app.root, app.state_dir)
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM_RACE, str(app.root), str(app.state_dir),
                               str(start)], cwd=REPO, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    assert sorted(p.communicate(timeout=60)[0].strip() for p in procs) == ["False", "False", "True"]

    assert scheduler.fire_due(app, at(2026, 11, 22, 6, 59)) == []
    assert scheduler.fire_due(app, at(2026, 11, 22, 7, 0, 20)) == ["skipper"]   # sorting's taken
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM documents WHERE name = 'schedule'")
    assert scheduler.fire_due(app, at(2026, 11, 22, 7, 0, 40)) == []    # both slots taken
    assert scheduler.fire_due(app, at(2026, 11, 23, 7, 0, 10)) == ["sorting", "skipper"]
    app.store.close()


def test_schedule_runner_wakes_and_leaves_out_a_broken_job(app):
    import threading

    woke = threading.Event()
    runner = scheduler.ScheduleRunner(app, on_due=woke.set)
    try:
        assert runner.start() == []
        assert {j.id for j in runner.jobs} == {"sorting", "skipper"}
        assert runner.next_wake() is not None
        (app.root / "schedules" / "t.yaml").write_text("jobs:\n  - id: x\n    cron: '0 7 *'\n")
        problems = runner.reload()
        assert problems and "t.yaml:2" in problems[0] and "left out" in problems[0]
        assert {j.id for j in runner.jobs} == {"sorting", "skipper"}   # the others run on
    finally:
        runner.shutdown()


def test_state_is_valid_json(app):
    scheduler.fire_due(app, at(2026, 11, 22, 6, 50))
    state = json.loads((app.state_dir / "state" / "schedule.json").read_text())
    [doc] = state["state"].values()
    assert doc["sorting"] == {"last": "2026-11-21T22:50:00+00:00", "tz": "Asia/Shanghai",
                              "next": "2026-11-21T23:00:00+00:00", "cron": "0 7 * * * Asia/Shanghai"}


def test_a_broken_feed_stops_only_itself(app):
    scheduler.fire_due(app, at(2026, 11, 22, 6, 50))
    (app.root / "feeds" / "news.yaml").write_text("news: [{id: Bad}]\n", encoding="utf-8")
    assert scheduler.fire_due(app, at(2026, 11, 22, 6, 55)) == []      # nothing due: not read
    problems: list[str] = []
    fired = scheduler.fire_due(app, at(2026, 11, 22, 7, 0, 30), problems=problems)
    assert fired == ["sorting", "skipper"]                                # the jobs still fire
    assert any("news.yaml:1" in p and "feed left out" in p for p in problems), problems


# -- nothing due: no trigger is built (start-up time of every cron minute) ----------------------

def test_a_pass_with_nothing_due_builds_no_trigger_and_still_fires_on_time(app, monkeypatch):
    assert scheduler.fire_due(app, at(2026, 11, 22, 6, 50)) == []       # plans: next 07:00
    built = []
    real = Job.trigger
    monkeypatch.setattr(Job, "trigger", lambda self: built.append(self.id) or real(self))
    assert scheduler.fire_due(app, at(2026, 11, 22, 6, 55)) == []
    assert built == []                                                  # the recorded next time sufficed
    assert scheduler.fire_due(app, at(2026, 11, 22, 7, 0, 30)) == ["sorting", "skipper"]
    assert sorted(set(built)) == ["skipper", "sorting"]


def test_an_edited_cron_is_planned_again(app):
    scheduler.fire_due(app, at(2026, 11, 22, 6, 50))
    path = app.root / "schedules" / "s.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"0 7 * * *"', '"52 6 * * *"', 1),
                    encoding="utf-8")
    assert scheduler.fire_due(app, at(2026, 11, 22, 6, 52, 30)) == ["sorting"]   # not 07:00's plan


def test_a_broken_new_cron_is_still_reported(app):
    scheduler.fire_due(app, at(2026, 11, 22, 6, 50))
    path = app.root / "schedules" / "s.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"0 7 * * *"', '"0 25 * * *"', 1),
                    encoding="utf-8")
    problems: list[str] = []
    scheduler.fire_due(app, at(2026, 11, 22, 6, 55), problems=problems)
    assert any("s.yaml" in p and "cron" in p for p in problems), problems


def test_run_once_with_nothing_due_does_not_load_apscheduler(app):
    scheduler.fire_due(app, at(2026, 11, 22, 6, 50))
    code = textwrap.dedent(f"""
        import sys
        from datetime import datetime
        from zoneinfo import ZoneInfo
        from broadcaster.app import App
        from broadcaster.schedule import scheduler
        app = App({str(app.root)!r}, {str(app.state_dir)!r})
        fired = scheduler.fire_due(app, datetime(2026, 11, 22, 6, 55, tzinfo=ZoneInfo("Asia/Shanghai")))
        print(fired, "apscheduler" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         timeout=60, check=True).stdout
    assert out.strip() == "[] False"
