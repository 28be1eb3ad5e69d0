"""Cron's ``run-once`` without typer (broadcaster.entry) prints and exits exactly as the
typer command does: each case runs both ways as real processes and compares the exit
code, stdout and stderr byte for byte; the fast way must not have loaded typer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from broadcaster.entry import cron_run_once
from tests.conftest import REPO, Result, cli, dispatch_lock_held, write_groups
from tests.test_scheduler import GROUPS

# The entry point as the script and main.py run it; it reports whether typer was loaded.
ENTRY = ("import atexit, sys\n"
         "atexit.register(lambda: open(sys.argv[1], 'w').write(str('typer' in sys.modules)))\n"
         "from broadcaster.entry import main\n"
         "main(sys.argv[2:])\n")
# The typer app itself, which runs every command line given to it.
TYPER = "import sys\nfrom broadcaster.cli import main\nmain(sys.argv[1:])\n"

EVERY_MINUTE = """
jobs:
  - id: minutely
    cron: "* * * * *"
    content: template
    template: sorting_reminder
    to: [all]
"""
LATER = EVERY_MINUTE.replace("minutely", "yearly").replace('"* * * * *"', '"0 7 1 1 *"')


def _run(code: str, args: list[str], cwd: Path, env: dict | None) -> Result:
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, cwd=cwd,
                       env={**os.environ, **(env or {})}, timeout=60, check=False)
    return Result(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def both(args: list[str], fast_root: Path, typer_root: Path | None = None, *,
         env: dict | None = None, fast: bool = True) -> Result:
    """Run ``args`` through the entry point and through the typer app (in ``typer_root``'s
    copy of the project when given: for passes that change it); assert the same result
    and whether the entry point did without typer; return it."""
    def with_root(root: Path) -> list[str]:
        return [a.replace(str(fast_root), str(root)) for a in args]

    marker = fast_root.parent / "typer-loaded"
    entry = _run(ENTRY, [str(marker), *args], fast_root.parent, env)
    other = typer_root or fast_root
    env_other = {k: v.replace(str(fast_root), str(other)) for k, v in (env or {}).items()}
    typed = _run(TYPER, with_root(other), other.parent, env_other)
    assert marker.read_text() == str(not fast), "typer loaded" if fast else "typer not loaded"
    assert (entry.code, _untimed(entry.out), _untimed(entry.err)) == (
        typed.code, _untimed(typed.out.replace(str(other), str(fast_root))),
        _untimed(typed.err.replace(str(other), str(fast_root))))
    return entry


# A job fired by the two runs names the minute it fired in, and the runs may fall on
# either side of a minute's end: the comparison leaves the times themselves out.
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[+-]\d\d:?\d\d|Z)?")


def _untimed(text: str) -> str:
    return _TIME.sub("<time>", text)


def _project(root: Path, schedule: str = LATER) -> Path:
    write_groups(root, GROUPS)
    (root / "schedules" / "s.yaml").write_text(schedule, encoding="utf-8")
    return root


def _twin(root: Path) -> Path:
    """A copy of the project, beside it, for the typer run of a pass that changes state."""
    twin = root.parent / "twin" / root.name
    shutil.copytree(root, twin)
    return twin


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_nothing_due_prints_the_same_both_ways(root, json_):
    _project(root)
    assert both(["--root", str(root), "run-once", *json_], root).code == 0   # plans the job
    r = both(["--root", str(root), "run-once", *json_], root)
    assert r.code == 0 and (r.out.startswith("{") if json_ else r.out == "fired nothing; sent 0, failed 0, pending 0\n")


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_a_job_due_fires_and_sends_the_same_both_ways(root, json_):
    _project(root, EVERY_MINUTE)    # a job seen first fires the minute it is in
    r = both(["--root", str(root), "run-once", *json_], root, _twin(root))
    assert r.code == 0 and "minutely" in r.out and ("sent 2" in r.out or '"sent": 2' in r.out)


def test_an_announcement_not_due_yet_is_counted_the_same_both_ways(root):
    _project(root)
    assert cli(root, "announce", "停水通知", "--to", "all", "--at", "+2h").code == 0
    r = both(["--root", str(root), "run-once"], root)
    assert r.code == 0 and r.out == "fired nothing; sent 0, failed 0, pending 2\n"


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_a_broken_schedule_is_named_by_file_and_line_the_same_both_ways(root, json_):
    _project(root)
    (root / "schedules" / "bad.yaml").write_text(
        "jobs:\n  - id: broken\n    cron: '0 7 * * *'\n    content: nope\n    to: [all]\n",
        encoding="utf-8")
    (root / "schedules" / "worse.yaml").write_text("jobs: [\n", encoding="utf-8")
    r = both(["--root", str(root), "run-once", *json_], root)
    assert r.code == 1
    assert "schedules/bad.yaml:4: jobs.0.content: unknown content 'nope'" in r.err
    assert "schedules/worse.yaml:" in r.err


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_a_broken_groups_file_with_a_job_due_fails_the_same_both_ways(root, json_):
    _project(root, EVERY_MINUTE)
    (root / "groups.yaml").write_text("groups:\n  - id: g1\n    channel: {type: nowhere}\n",
                                      encoding="utf-8")
    r = both(["--root", str(root), "run-once", *json_], root, _twin(root))
    assert r.code == 1 and "groups.yaml:" in r.err


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_no_project_here_is_the_same_error_both_ways(tmp_path, json_):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = both(["--root", str(empty), "run-once", *json_], empty)
    assert r.code == 1 and "no groups.yaml in" in r.err


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_a_held_dispatch_lock_exits_75_the_same_both_ways(root, json_):
    _project(root)
    with dispatch_lock_held(root / "var"):
        r = both(["--root", str(root), "run-once", *json_], root)
    assert r.code == 75 and "dispatch lock held" in r.err


def test_the_root_from_the_environment_or_with_an_equals_sign(root):
    _project(root)
    r = both(["run-once"], root, env={"BROADCASTER_ROOT": str(root)})
    assert r.code == 0
    assert both([f"--root={root}", "run-once", "--json"], root).code == 0
    elsewhere = both(["--root", str(root), "run-once"], root, env={"BROADCASTER_ROOT": "/nonexistent"})
    assert elsewhere.code == 0      # --root wins over the environment


@pytest.mark.parametrize("args", [["run-once", "--help"], ["run-once", "--jsn"], ["--json", "run-once"],
                                  ["run-once", "extra"], ["--root"], ["status"]])
def test_other_command_lines_go_to_typer_unchanged(root, args):
    _project(root)
    full = args if args == ["--root"] else ["--root", str(root), *args]
    both(full, root, fast=False)


def test_python_dash_m_runs_the_entry_point(root):
    _project(root)
    p = subprocess.run([sys.executable, "-m", "broadcaster", "--root", str(root), "run-once"],
                       capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert (p.returncode, p.stdout) == (0, "fired nothing; sent 0, failed 0, pending 0\n")


def test_which_command_lines_run_without_typer():
    assert cron_run_once(["run-once"]) == (None, False)
    assert cron_run_once(["run-once", "--json"]) == (None, True)
    assert cron_run_once(["--root", "/srv/b", "run-once"]) == (Path("/srv/b"), False)
    assert cron_run_once(["--root=/srv/b", "run-once", "--json"]) == (Path("/srv/b"), True)
    for args in (["--root", "", "run-once"], ["--root=", "run-once"], ["--root", "--json", "run-once"],
                 ["--root", "a", "--root", "b", "run-once"], ["run-once", "--json", "--json"],
                 ["run-once", "--", "--json"], ["run-once", "-h"], ["run-once\udcff"], [], ["check"]):
        assert cron_run_once(args) is None, args
