"""Docs that cannot rot: every command README shows exists and has help with an example."""

from __future__ import annotations

import re

from tests.conftest import REPO, cli

README = (REPO / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted({m.group(1).strip() for m in re.finditer(
    r"^broadcaster ((?:[a-z-]+)(?: [a-z-]+)?)", README, re.M)})


def test_readme_shows_the_two_quick_start_commands():
    assert "make run" in README and "make test" in README


def test_every_readme_command_exists(root):
    assert len(COMMANDS) >= 8
    for command in COMMANDS:
        words = [w for w in command.split() if not w.startswith("-")]
        r = cli(root, *words, "--help")
        if r.code != 0:  # "groups list" vs "groups": fall back to the noun
            r = cli(root, words[0], "--help")
        assert r.code == 0, (command, r.err)
        assert "Usage" in r.out, command


def test_every_command_has_an_example(root):
    for args in (["check"], ["announce"], ["run-once"], ["daemon"], ["log"], ["report"],
                 ["status"], ["queue", "list"], ["queue", "show"], ["queue", "cancel"],
                 ["queue", "retry"], ["groups", "list"], ["jobs", "list"], ["members", "join"],
                 ["templates", "preview"], ["stats"], ["dashboard"]):
        r = cli(root, *args, "--help")
        assert r.code == 0 and "Example" in r.out, args
