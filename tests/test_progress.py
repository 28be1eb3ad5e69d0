"""Long work shows progress on a terminal (a fan-out, `check` rendering every template for
every group, a news run reading its feeds): a rich bar with counts, rate and failures so far;
nothing extra when piped or under --json."""

from __future__ import annotations

import re

import yaml

from tests.conftest import cli, cli_process
from tests.simulator import PlatformSimulator
from tests.test_cli import _run_in_terminal
from tests.test_jobs_run import demo  # noqa: F401  (the shipped demo, as a fixture)

GROUPS, FAILING = 30, 3


def _fan_out(root, sim) -> None:
    groups = []
    for i in range(GROUPS):
        robot = sim.add_robot("webhook", key=f"k{i}", latency=1.2)
        if i < FAILING:
            robot.answer_next(400, "no such hook")          # a permanent failure, at once
        groups.append({"id": f"g{i:02d}", "name": f"第{i}网格群", "tags": ["kind:grid"],
                       "channel": robot.config()})
    (root / "groups.yaml").write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True),
                                      encoding="utf-8")
    assert cli(root, "announce", "停水通知", "--to", "all").code == 0


def test_run_once_on_a_terminal_shows_counts_rate_and_failures(root):
    with PlatformSimulator() as sim:
        _fan_out(root, sim)
        screen = _run_in_terminal(["--root", str(root), "run-once"], 80)
    assert f"/{GROUPS}" in screen, screen                  # handled of total, while sending
    assert f"{FAILING} failed" in screen, screen            # failures so far
    assert "sending" in screen
    assert f"sent {GROUPS - FAILING}, failed {FAILING}" in screen


def test_run_once_piped_or_json_prints_no_bar(root):
    with PlatformSimulator() as sim:
        _fan_out(root, sim)
        r = cli_process(root, "run-once", "--json")
    assert r.json()["sent"] == GROUPS - FAILING and r.json()["failed"] == FAILING
    assert "sending" not in r.err and "━" not in r.err


def test_check_on_a_terminal_counts_the_renders(demo):  # noqa: F811
    screen = _run_in_terminal(["--root", str(demo), "check"], 80)
    done = re.findall(r"rendering templates .*? (\d+)/(\d+)", screen)
    assert done, screen
    assert done[-1][0] == done[-1][1]                    # every render counted, of the total
    assert "ok: 6 groups" in screen


def test_a_news_run_on_a_terminal_counts_the_feeds_read(demo):  # noqa: F811
    screen = _run_in_terminal(["--root", str(demo), "jobs", "run", "news-digest"], 80)
    assert re.search(r"reading feeds .*? 2/2", screen), screen
    assert "news-digest: queued 0 announcements" in screen


def test_check_and_news_piped_or_json_print_no_bar(demo):  # noqa: F811
    for args in (["check"], ["check", "--json"], ["jobs", "run", "news-digest"],
                 ["jobs", "run", "news-digest", "--json"]):
        r = cli_process(demo, *args)
        assert r.code == 0, r.err
        assert "rendering" not in r.err and "reading" not in r.err and "━" not in r.err
