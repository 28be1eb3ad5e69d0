"""Long sends show progress on a terminal: a rich bar with counts, rate and failures so far;
nothing extra when piped or under --json."""

from __future__ import annotations

import yaml

from tests.conftest import cli, cli_process
from tests.simulator import PlatformSimulator
from tests.test_cli import _run_in_terminal

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
