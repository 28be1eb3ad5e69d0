"""One broken config item stops only itself: a bad cron line, a bad feed, a job that
fails, one group's unset ``${VAR}``. Each is named (``check`` exit 1, ``run-once``
exit 1 after the rest of its pass, ``status``) and everything else is delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
import yaml

from tests.conftest import cli, cli_process
from tests.simulator import PlatformSimulator

GOOD_JOB = {"id": "sorting", "cron": "* * * * *", "content": "template",
            "template": "sorting_reminder", "to": ["all"]}


def _groups(root, sim, n=3, broken_env=None):
    """``n`` webhook groups; with ``broken_env``, the last one's URL is that unset variable."""
    robots, groups = {}, []
    for i in range(n):
        robot = sim.add_robot("webhook", key=f"k{i}")
        robots[f"g{i}"] = robot
        groups.append({"id": f"g{i}", "name": f"第{i}网格群", "tags": ["kind:grid"],
                       "channel": robot.config()})
    if broken_env:
        groups[-1]["channel"] = {"type": "webhook", "url": f"${{{broken_env}}}"}
    (root / "groups.yaml").write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True),
                                      encoding="utf-8")
    return robots


def _jobs(root, name, jobs):
    (root / "schedules" / name).write_text(yaml.safe_dump({"jobs": jobs}, allow_unicode=True),
                                           encoding="utf-8")


def test_a_bad_cron_line_stops_only_its_job(root):
    with PlatformSimulator() as sim:
        robots = _groups(root, sim)
        _jobs(root, "good.yaml", [GOOD_JOB])
        (root / "schedules" / "bad.yaml").write_text(
            "jobs:\n  - id: typo\n    cron: \"61 * * * *\"\n    content: news\n    to: [all]\n")
        assert cli_process(root, "announce", "紧急：明早停水", "--to", "all", "--urgent").code == 0
        r = cli_process(root, "run-once", "--json")
        assert r.code == 1, r.err                                  # after doing the rest
        out = r.json()
        assert out["fired"] == ["sorting"] and out["sent"] == 6    # the notice and the job
        assert "bad.yaml:3" in r.err and "job left out" in r.err
        assert all(len(robot.texts) == 2 for robot in robots.values())
        status = cli_process(root, "status", "--json").json()
        assert any("bad.yaml:3" in p for p in status["problems"]), status["problems"]
        check = cli_process(root, "check")
        assert check.code == 1 and "bad.yaml:3" in check.err
        listed = cli(root, "jobs", "list", "--json")
        assert listed.code == 0 and [j["id"] for j in listed.json()] == ["sorting"]
        assert "warning: " in listed.err and "bad.yaml:3" in listed.err
        (root / "schedules" / "bad.yaml").unlink()                 # fixed: the next run is clean
        again = cli_process(root, "run-once", "--json")
        assert again.code == 0, again.err
        assert cli_process(root, "status", "--json").json()["problems"] == []


def test_a_failing_job_exits_1_and_status_shows_it_until_it_next_succeeds(root):
    with PlatformSimulator() as sim:
        robots = _groups(root, sim)
        _jobs(root, "jobs.yaml", [GOOD_JOB, {**GOOD_JOB, "id": "broken-template",
                                             "template": "sorting_reminder_gone"}])
        r = cli_process(root, "run-once", "--json")
        assert r.code == 1
        assert "job broken-template" in r.err and "sorting_reminder_gone" in r.err
        assert r.err.count("job broken-template") == 1, r.err     # said once
        assert r.json()["fired"] == ["sorting"]
        assert all(len(robot.texts) == 1 for robot in robots.values())
        status = cli_process(root, "status")
        assert "job failed: broken-template" in status.out
        [failed] = cli_process(root, "status", "--json").json()["failed_jobs"]
        assert failed["job"] == "broken-template" and "sorting_reminder_gone" in failed["error"]
        (root / "templates" / "sorting_reminder_gone.md.j2").write_text("垃圾分类提醒\n")
        state = root / "var" / "state" / "schedule.json"          # the next minute comes
        doc = yaml.safe_load(state.read_text())
        for record in doc["state"]["1"].values():
            record["last"] = "2000-01-01T00:00:00+00:00"
            record.pop("wall", None)
        state.write_text(yaml.safe_dump(doc))
        again = cli_process(root, "run-once", "--json")
        assert again.code == 0, again.err
        assert "broken-template" in again.json()["fired"]
        assert cli_process(root, "status", "--json").json()["failed_jobs"] == []


def test_a_bad_feed_entry_stops_only_that_feed(root, tmp_path):
    feed = tmp_path / "news.rss"
    feed.write_text("""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>
        <title>社区</title><item><title>旧闻</title><link>https://example.org/1</link>
        <guid>1</guid></item></channel></rss>""", encoding="utf-8")
    with PlatformSimulator() as sim:
        robots = _groups(root, sim, n=2)
        (root / "feeds" / "news.yaml").write_text(yaml.safe_dump({"news": [
            {"id": "good", "title": "社区通知", "url": feed.as_uri(), "to": ["all"]},
            {"id": "Bad Id", "url": "ftp://nowhere", "to": ["all"]},
        ]}, allow_unicode=True), encoding="utf-8")
        _jobs(root, "news.yaml", [{"id": "news", "cron": "* * * * *", "content": "news",
                                   "to": ["all"]}, GOOD_JOB])
        r = cli_process(root, "run-once", "--json")
        assert r.code == 1
        assert "feeds/news.yaml" in r.err and "feed left out" in r.err
        assert sorted(r.json()["fired"]) == ["news", "sorting"]      # both jobs still ran
        assert all(len(robot.texts) == 1 for robot in robots.values())
        check = cli_process(root, "check")
        assert check.code == 1 and "news.0" not in check.err and "news.1" in check.err


def test_one_groups_unset_variable_leaves_out_only_that_group(root, monkeypatch):
    monkeypatch.delenv("G2_WEBHOOK", raising=False)
    with PlatformSimulator() as sim:
        robots = _groups(root, sim, n=3, broken_env="G2_WEBHOOK")
        listed = cli(root, "groups", "list", "--json")
        assert listed.code == 0
        assert [g["id"] for g in listed.json()] == ["g0", "g1"]
        assert "warning:" in listed.err and "G2_WEBHOOK is not set" in listed.err
        assert "group g2 left out" in listed.err
        ann = cli(root, "announce", "今晚停电", "--to", "all", "--json")
        assert ann.code == 0 and ann.json()["targets"] == 2 and "g2" in ann.err
        # an announcement queued to g2 while it was valid waits for the fix
        queued = cli_process(root, "announce", "早先的通知", "--to", "all", "--json",
                             env={"G2_WEBHOOK": robots["g2"].config()["url"]})
        assert queued.code == 0 and queued.json()["targets"] == 3
        r = cli_process(root, "run-once", "--json")
        assert r.code == 1 and r.err.count("G2_WEBHOOK is not set") == 1   # named once
        assert r.json()["sent"] == 4 and r.json()["pending"] == 1
        assert [len(robots[g].texts) for g in ("g0", "g1", "g2")] == [2, 2, 0]
        shown = cli(root, "queue", "show", queued.json()["id"], "--json").json()
        [waiting] = [d for d in shown["deliveries"] if d["group"] == "g2"]
        assert waiting["status"] == "pending" and "G2_WEBHOOK" in waiting["last_error"]
        status = cli_process(root, "status", "--json").json()
        assert any("G2_WEBHOOK" in p for p in status["problems"])
        check = cli_process(root, "check")
        assert check.code == 1 and "G2_WEBHOOK is not set" in check.err
        with time_machine.travel(datetime.now(UTC) + timedelta(minutes=2), tick=True):
            fixed = cli(root, "run-once", "--json",      # fixed: looked at again within a minute
                        env={"G2_WEBHOOK": robots["g2"].config()["url"]})
        assert fixed.code == 0, fixed.err
        assert robots["g2"].texts == ["早先的通知"]


def _job_with_a_problem(root) -> str:
    """A news job whose one feed is not a feed: the job runs, with that problem."""
    page = root / "feeds" / "page.html"
    page.write_text("<html><body>\x00 not a feed</body></html>", encoding="utf-8")
    (root / "feeds" / "news.yaml").write_text(yaml.safe_dump({"news": [
        {"id": "district", "title": "区新闻", "url": page.as_uri(), "to": ["all"]}]},
        allow_unicode=True), encoding="utf-8")
    _jobs(root, "news.yaml", [{"id": "news", "cron": "* * * * *", "content": "news",
                               "to": ["all"]}])
    return "news feed district: malformed feed"


def test_a_jobs_problem_is_said_once_by_jobs_run_and_run_once(root):
    with PlatformSimulator() as sim:
        _groups(root, sim, n=2)
        problem = _job_with_a_problem(root)
        ran = cli_process(root, "jobs", "run", "news")
        assert ran.code == 0 and ran.err.count(problem) == 1, ran.err
        assert f"warning: {problem}" in ran.err
        r = cli_process(root, "run-once")
        assert r.code == 1 and r.err.count(problem) == 1, r.err
        assert "error: job news" in r.err
