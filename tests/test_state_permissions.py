# ruff: noqa: S103 - these tests make the open and shared directories an attacker would
"""The state directory and everything in it are private: directories 0700, files 0600.

A state directory (or ``var/outbox/``) that already exists open to others
(0777, 0755) is tightened to 0700; one shared on purpose (sticky, as /tmp)
or owned by another user is refused with a clear message, nothing written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import cli, write_groups

GROUPS = """
defaults: {timezone: Asia/Shanghai}
groups:
  - id: g1
    name: 第1网格群
    tags: [kind:grid]
    channel: {type: file, path: var/outbox}
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(top: Path) -> None:
    assert mode(top) == 0o700, top
    for p in top.rglob("*"):
        if p.is_dir():
            assert mode(p) == 0o700, p
        else:
            assert mode(p) == 0o600, p


def test_a_state_directory_open_to_everyone_is_tightened(root):
    write_groups(root, GROUPS)
    state = root / "var"
    state.mkdir()
    os.chmod(state, 0o777)
    (state / "outbox").mkdir()
    os.chmod(state / "outbox", 0o755)        # as created by earlier versions
    assert cli(root, "announce", "停水通知", "--to", "all").code == 0
    run = cli(root, "run-once", "--json")
    assert run.code == 0 and run.json()["sent"] == 1, run.err
    assert "停水通知" in (state / "outbox" / "g1.md").read_text(encoding="utf-8")
    assert_private(state)


def test_a_state_directory_from_the_environment_is_tightened_too(root, tmp_path):
    write_groups(root, GROUPS.replace("var/outbox", "out"))
    state = tmp_path / "elsewhere"
    state.mkdir(mode=0o777)
    os.chmod(state, 0o777)
    env = {"BROADCASTER_STATE_DIR": str(state)}
    assert cli(root, "announce", "停水通知", "--to", "all", env=env).code == 0
    assert cli(root, "run-once", env=env).code == 0
    assert_private(state)
    assert_private(root / "out")


def test_a_shared_sticky_directory_is_refused_with_a_clear_message(root, tmp_path):
    write_groups(root, GROUPS)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)                 # like /tmp
    result = cli(root, "announce", "停水通知", "--to", "all",
                 env={"BROADCASTER_STATE_DIR": str(shared)})
    assert result.code == 1
    assert f"{shared} is shared (mode 1777" in result.err
    assert "BROADCASTER_STATE_DIR" in result.err
    assert list(shared.iterdir()) == [] and mode(shared) == 0o1777   # nothing written, not changed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the directory to another user")
def test_a_state_directory_owned_by_someone_else_is_refused(root, tmp_path):
    write_groups(root, GROUPS)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chmod(theirs, 0o777)
    os.chown(theirs, 65534, 65534)
    os.chmod(tmp_path, 0o755)
    result = cli(root, "announce", "停水通知", "--to", "all",
                 env={"BROADCASTER_STATE_DIR": str(theirs)})
    assert result.code == 1
    assert "owner uid 65534" in result.err


def test_a_file_channel_pointing_at_a_shared_directory_fails_that_delivery_only(root, tmp_path):
    shared = tmp_path / "drop"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    write_groups(root, GROUPS + f"""
  - id: g2
    name: 第2网格群
    tags: [kind:grid]
    channel: {{type: file, path: {shared}}}
""")
    assert cli(root, "announce", "停水通知", "--to", "all").code == 0
    run = cli(root, "run-once", "--json")
    assert run.json()["sent"] == 1 and run.json()["failed"] == 1
    log = cli(root, "log", "--status", "failed", "--json").json()
    assert [row["group"] for row in log] == ["g2"]
    assert "is shared (mode 1777" in str(log[0]), log[0]
    assert list(shared.iterdir()) == []
