"""``jobs run`` says why it queued nothing: no new items since the last read, no festival
today, already sent once, no group matched, no events; the same reasons under --json,
and a feed that failed as a warning (a problem in JSON)."""

from __future__ import annotations

import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests.conftest import REPO, cli, cli_process

SH = ZoneInfo("Asia/Shanghai")
NEW_ITEM = """    <item>
      <title>鼓楼区新增 3 处社区食堂</title>
      <link>https://www.gulou.gov.cn/demo/news/20261206-shitang.html</link>
      <guid isPermaLink="false">gulou-20261206-009</guid>
      <pubDate>Sun, 06 Dec 2026 09:00:00 +0800</pubDate>
      <description>宁海路、湖南路的社区食堂本周开业。</description>
    </item>
"""
EXTRA = """
jobs:
  - id: excluded
    cron: "0 8 * * *"
    content: template
    template: sorting_reminder
    to: [community:huilinlvzhou]
    exclude: [all]
  - id: broken-news
    cron: "0 8 * * *"
    content: news
    to: [all]
    options: {feeds: [broken]}
"""


@pytest.fixture
def demo(tmp_path):
    """The shipped demo (groups, feeds with their local samples, schedules, templates)."""
    root = tmp_path / "demo"
    root.mkdir()
    for name in ("groups.yaml", "templates", "feeds", "schedules"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "schedules" / "extra.yaml").write_text(EXTRA, encoding="utf-8")
    return root


def at(*args) -> time_machine.travel:
    return time_machine.travel(datetime(*args, tzinfo=SH), tick=False)


def run(root, job: str, *flags: str):
    return cli(root, "jobs", "run", job, *flags)


def test_news_says_first_read_then_no_new_items_since_the_last_read(demo):
    with at(2026, 12, 6, 8, 0):
        first = run(demo, "news-digest")
    assert first.code == 0, first.err
    assert first.out.startswith("news-digest: queued 0 announcements: first read of gulou-gov, "
                                "hlz-notices by this job")
    with at(2026, 12, 6, 18, 0):
        again = run(demo, "news-digest", "--json")
    assert again.code == 0 and again.json() == {
        "job": "news-digest", "announcements": [], "problems": [],
        "reasons": ["no new items since 08:00 (in 2 feeds read)"]}
    rss = demo / "feeds" / "samples" / "gulou-news.rss.xml"
    text = rss.read_text(encoding="utf-8")
    rss.write_text(text.replace("    <item>\n", NEW_ITEM + "    <item>\n", 1), encoding="utf-8")
    with at(2026, 12, 7, 8, 0):
        posted = run(demo, "news-digest")
    assert posted.code == 0 and "queued 1 announcement " in posted.out and ":" not in posted.out.split(
        "announcement ")[1], posted.out
    with at(2026, 12, 7, 18, 0):
        quiet = run(demo, "news-digest")
    assert quiet.out == "news-digest: queued 0 announcements: no new items since 08:00 (in 2 feeds read)\n"


@pytest.mark.parametrize(("when", "job", "reason"), [
    ((2026, 12, 6, 8, 0), "festival-greetings", "no festival today (2026-12-06)"),
    ((2026, 12, 6, 8, 0), "excluded", "no group matched (to: community:huilinlvzhou minus all)"),
    ((2030, 3, 4, 18, 0), "event-reminders", "no events tomorrow for the job's groups"),
])
def test_a_run_that_queues_nothing_says_why(demo, when, job, reason):
    with at(*when):
        human = run(demo, job)
        as_json = run(demo, job, "--json")
    assert human.code == 0, human.err
    assert human.out == f"{job}: queued 0 announcements: {reason}\n"
    assert as_json.code == 0 and as_json.json()["reasons"] == [reason]
    assert as_json.json()["announcements"] == []


def test_a_festival_is_greeted_once_and_then_says_so(demo):
    with at(2026, 1, 1, 8, 0):
        first = run(demo, "festival-greetings", "--json")
        again = run(demo, "festival-greetings")
    assert first.code == 0 and len(first.json()["announcements"]) == 1
    assert first.json()["reasons"] == []
    assert again.out.startswith("festival-greetings: queued 0 announcements: yuandan:2026-01-01: "
                                "already sent to all ")
    assert again.out.rstrip().endswith("groups (once only)")


def test_a_failed_feed_is_a_warning_and_a_json_problem(demo):
    with (demo / "feeds" / "news.yaml").open("a", encoding="utf-8") as fh:
        fh.write("  - id: broken\n    url: feeds/samples/missing.xml\n    to: [all]\n")
    with at(2026, 12, 6, 8, 0):
        human = run(demo, "broken-news")
        as_json = run(demo, "broken-news", "--json")
    assert human.code == 0
    assert human.out == "broken-news: queued 0 announcements: 1 source(s) failed (see the problems)\n"
    assert human.err.startswith("warning: ") and "missing.xml" in human.err
    doc = as_json.json()
    assert len(doc["problems"]) == 1 and "missing.xml" in doc["problems"][0]
    assert as_json.err == "" or as_json.err.startswith("warning: ")


def test_the_reason_is_one_plain_line_when_piped_at_80_columns(demo):
    r = cli_process(demo, "jobs", "run", "festival-greetings", env={"COLUMNS": "80"})
    assert r.code == 0
    [line] = r.out.splitlines()
    assert line.startswith("festival-greetings: queued 0 announcements: no festival today (")
