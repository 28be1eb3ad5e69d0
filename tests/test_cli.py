"""The command line as staff meet it: exit codes, JSON on success and failure, tables, help."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, cli, cli_process, queued_files, write_groups

GROUPS = """
defaults: {timezone: Asia/Shanghai}
groups:
  - id: gulou-hlz-g01
    name: 汇林绿洲社区第1网格群
    tags: [street:ninghai-road, kind:grid]
    channel: {type: file, path: out}
  - id: gulou-hlz-g02
    name: 汇林绿洲社区第2网格群
    tags: [street:ninghai-road, kind:grid]
    channel: {type: file, path: out}
"""


@pytest.fixture
def proj(root):
    write_groups(root, GROUPS)
    return root


# -- exit codes ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["announce", "x"], 2, "--to"),                                          # missing option
        (["announce", "x", "--file", "n.md", "--to", "all"], 2, "not both"),      # conflicting inputs
        (["announce", "--to", "all"], 2, "nothing to announce"),
        (["announce", "x", "--to", "all", "--nope"], 2, "--nope"),
        (["announce", "--file", "missing.md", "--to", "all"], 1, "missing.md"),  # a missing file is input
        (["templates", "preview", "announcement", "--data", "missing.yaml"], 1, "missing.yaml"),
        (["announce", "x", "--to", "all", "--at", "2020-01-01 09:00"], 1, "in the past"),
        (["announce", "x", "--to", "all", "--at", "2026-13-40 10:00"], 1, "not a real date"),
        (["announce", "x", "--to", "street:nowhere"], 1, "matches no group"),
        (["announce", "x", "--to", "all", "--exclude", "all"], 1, "leaves no group"),
        (["announce", "x", "--to", "all", "--exclude", "all", "--dry-run"], 1, "leaves no group"),
        (["queue", "show", "nope"], 1, "no announcement"),
        (["report", "nope"], 1, "no announcement"),
    ],
)
def test_exit_codes_and_one_error_prefix(proj, args, code, needle):
    r = cli(proj, *args)
    assert r.code == code, (r.out, r.err)
    assert needle in r.err and "Traceback" not in r.err
    if code == 1:
        assert r.err.startswith("error: ")
    assert queued_files(proj) == []


def test_past_at_is_refused_but_the_future_isqueued_files(proj):
    assert cli(proj, "announce", "x", "--to", "all", "--at", "2020-01-01 09:00").code == 1
    r = cli(proj, "announce", "x", "--to", "all", "--at", "+2h", "--json")
    assert r.code == 0 and r.json()["status"] == "queued"


@pytest.mark.parametrize("args", [["status"], ["check"], ["queue", "list"], ["groups", "list"]])
def test_a_root_without_groups_yaml_is_refused_and_nothing_is_created(tmp_path, args):
    nowhere = tmp_path / "nonexistent"
    r = cli(nowhere, *args)
    assert r.code == 1
    assert str(nowhere) in r.err and "--root" in r.err and "BROADCASTER_ROOT" in r.err
    assert not nowhere.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(empty, *args).code == 1
    assert list(empty.iterdir()) == []


# -- --json on every command, failures included ------------------------------

JSON_COMMANDS = [
    ["check"], ["groups", "list"], ["queue", "list", "--all"], ["log"], ["status"],
    ["jobs", "list"], ["templates", "list"], ["templates", "preview", "welcome"],
    ["run-once"], ["announce", "x", "--to", "all", "--dry-run"], ["stats"],
]


@pytest.mark.parametrize("args", JSON_COMMANDS)
def test_every_command_prints_one_json_document(proj, args):
    r = cli(proj, *args, "--json")
    assert r.code == 0, r.err
    json.loads(r.out)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["queue", "show", "nope"], 1), (["queue", "cancel", "nope"], 1), (["queue", "retry", "nope"], 1),
        (["report", "nope"], 1), (["announce", "x", "--to", "street:nowhere"], 1),
        (["announce", "x"], 2), (["log", "--status", "weird"], 1),
        (["templates", "preview", "nope"], 1),
    ],
)
def test_a_failure_under_json_is_one_error_document(proj, args, code):
    r = cli(proj, *args, "--json")
    assert r.code == code
    doc = json.loads(r.out)
    assert set(doc) == {"error"} and doc["error"]["message"]
    assert isinstance(doc["error"]["problems"], list)


def test_config_problems_under_json_carry_file_and_line(proj):
    broken = GROUPS.replace("channel: {type: file, path: out}", "channel: {type: nope}", 1)
    (proj / "groups.yaml").write_text(textwrap.dedent(broken).lstrip(), encoding="utf-8")
    r = cli(proj, "check", "--json")
    assert r.code == 1
    lines = (proj / "groups.yaml").read_text(encoding="utf-8").splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if "type: nope" in line)
    [problem, *_] = r.json()["error"]["problems"]
    assert problem["file"].endswith("groups.yaml") and problem["line"] == expected


def test_cancel_and_retry_speak_json(proj):
    ann = cli(proj, "announce", "x", "--to", "all", "--at", "+1h", "--json").json()
    assert cli(proj, "queue", "retry", ann["id"], "--json").json() == {"id": ann["id"], "pending": 0}
    assert cli(proj, "queue", "cancel", ann["id"], "--json").json() == {"id": ann["id"], "cancelled": 2}


# -- words --------------------------------------------------------------------

def test_counts_are_written_in_good_english(proj):
    cli(proj, "announce", "x", "--to", "id:gulou-hlz-g01")
    out = cli(proj, "queue", "list").out
    assert out.startswith("1 announcement\n")
    cancel = cli(proj, "queue", "cancel", json.loads(cli(proj, "queue", "list", "--json").out)[0]["id"])
    assert "1 delivery will not be sent" in cancel.out


def test_report_on_a_cancelled_announcement_says_cancelled(proj):
    ann = cli(proj, "announce", "x", "--to", "all", "--at", "+1h", "--json").json()
    cli(proj, "queue", "cancel", ann["id"])
    rows = cli(proj, "report", ann["id"], "--json").json()["not_delivered"]
    assert {r["reason"] for r in rows} == {"announcement cancelled"}


def test_an_announcement_that_expired_unsent_reads_expired(proj, tmp_path):
    out = proj / "out"
    out.mkdir()
    out.chmod(0o500)  # the file channel cannot write: transient, retried until expiry
    try:
        ann = cli(proj, "announce", "x", "--to", "id:gulou-hlz-g01", "--expires", "1s", "--json").json()
        import time

        time.sleep(1.2)
        cli(proj, "run-once")
    finally:
        out.chmod(0o700)
    listing = cli(proj, "queue", "list", "--all").out
    assert re.search(rf"{ann['id']}\s.*expired", listing)
    assert "expired" in cli(proj, "report", ann["id"]).out.splitlines()[0]
    status = cli(proj, "status", "--json").json()
    assert [e["announcement"] for e in status["recent_expired"]] == [ann["id"]]


# -- tables -------------------------------------------------------------------

def _ids(proj, n=3) -> list[str]:
    return [cli(proj, "announce", f"通知{i}", "--to", "all", "--json").json()["id"] for i in range(n)]


def test_piped_tables_are_plain_and_ids_whole(proj):
    ids = _ids(proj)
    r = cli_process(proj, "queue", "list", env={"COLUMNS": "60"})
    assert r.code == 0
    assert not set("│─┃━┏┓┗┛╭╮╰╯┌┐└┘") & set(r.out)
    lines = r.out.splitlines()
    for ann_id in ids:
        assert any(line.startswith(ann_id + " ") for line in lines)


def _run_in_terminal(args: list[str], columns: int) -> str:
    """Run the CLI on a pseudo-terminal of ``columns`` columns and return what it drew."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"}
    p = subprocess.Popen([sys.executable, str(REPO / "main.py"), *args], stdin=child, stdout=child,
                         stderr=child, env=env, close_fds=True)
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=30)
    os.close(main)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))


@pytest.mark.parametrize("columns", [80, 120])
def test_terminal_tables_never_wrap_ids(proj, columns):
    ids = _ids(proj)
    screen = _run_in_terminal(["--root", str(proj), "queue", "list"], columns)
    for ann_id in ids:
        assert ann_id in screen, screen
    log = _run_in_terminal(["--root", str(proj), "log"], columns)
    assert "gulou-hlz-g01" in log and "gulou-hlz-g02" in log


# -- help ---------------------------------------------------------------------

def _all_commands() -> list[list[str]]:
    from typer.main import get_command

    from broadcaster.cli import _mount, app

    _mount()
    top = get_command(app)
    out = [[]]
    for name, cmd in top.commands.items():
        out.append([name])
        out.extend([name, sub] for sub in getattr(cmd, "commands", {}))
    return out


def test_help_reads_like_a_well_kept_cli():
    for path in _all_commands():
        r = subprocess.run([sys.executable, str(REPO / "main.py"), *path, "--help"],
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, (path, r.stderr)
        text = r.stdout
        assert not re.search(r"<(bool|str|int|list|path|float)[^>]*>", text), (path, text)
        assert "list[" not in text, path
        assert not re.search(r"^  --(json|urgent|dry-run|all|mention-all) [A-Z]", text, re.M), (path, text)
        if len(path) == (2 if path and path[0] in {"queue", "jobs", "templates", "groups", "members"}
                         else 1) and path:
            assert "broadcaster " in text.split("Options:")[0], (path, "no example")


def test_examples_are_written_one_way():
    from typer.main import get_command

    from broadcaster.cli import _mount, app

    _mount()
    docs = []
    for path in _all_commands()[1:]:
        cmd = get_command(app)
        for part in path:
            cmd = cmd.commands[part]
        if cmd.callback is not None:
            docs.append(textwrap.dedent(cmd.callback.__doc__ or ""))
    for doc in docs:
        examples = [line for line in doc.splitlines() if line.strip().startswith("Example")]
        assert all(re.fullmatch(r"Examples?( \([^)]*\))?:", line.strip()) for line in examples), examples


def test_all_matching_no_group_suggests_nothing_in_its_place():
    from broadcaster.errors import did_you_mean

    assert did_you_mean("all", ["all", "district:gulou"]) == ""
    assert did_you_mean("al", ["all", "district:gulou"]) == "; did you mean all?"
