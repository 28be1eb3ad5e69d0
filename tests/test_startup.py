"""Start-up: what a cron minute with nothing due and ``announce --help`` load. The times
are measured by ``benchmarks/bench_startup.py`` (``make bench``); this checks the
modules, which do not depend on the machine's load."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO, cli, write_groups
from tests.test_scheduler import GROUPS

SCHEDULE = """
jobs:
  - id: morning
    cron: "0 7 * * *"
    content: template
    template: sorting_reminder
    to: [all]
"""
# Loaded only by the commands that use them.
NOT_AT_START_UP = ("broadcaster.cli.queue", "broadcaster.cli.stats", "broadcaster.cli.tickets",
                   "broadcaster.cli.faq", "broadcaster.queue.deliverylog", "apscheduler", "regex",
                   "jinja2", "feedparser", "rich.progress",
                   "broadcaster.config.groups")   # groups.yaml: only when there is work
# Cron's run-once runs without the CLI framework (broadcaster.entry); with nothing queued and
# unchanged schedules it takes the kept jobs and time zone: no YAML, no pydantic, no channel.
NOT_IN_RUN_ONCE = (*NOT_AT_START_UP, "typer", "click", "broadcaster.cli", "rich", "pydantic", "yaml",
                   "broadcaster.channels", "broadcaster.delivery.dispatch", "broadcaster.config.schedules",
                   "broadcaster.config.fields", "broadcaster.sources.news")


def _loaded(root, *args: str, env: dict | None = None) -> dict:
    code = textwrap.dedent(f"""
        import json, sys
        from broadcaster.entry import main
        try:
            main(["--root", {str(root)!r}, *{list(args)!r}])
        except SystemExit as exc:
            code = exc.code
        print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}), file=sys.stderr)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       timeout=60, check=False, env={**os.environ, **(env or {})})
    return json.loads(p.stderr.strip().splitlines()[-1])


def _project(root):
    write_groups(root, GROUPS)
    (root / "schedules" / "s.yaml").write_text(SCHEDULE, encoding="utf-8")
    assert cli(root, "run-once").code == 0     # the first pass plans the job's next time
    return root


def test_run_once_with_nothing_due_loads_only_what_it_needs(root):
    assert _loaded(_project(root), "run-once")["code"] == 0    # keeps the jobs and the zone
    seen = _loaded(root, "run-once")
    assert seen["code"] == 0
    loaded = [m for m in NOT_IN_RUN_ONCE if m in seen["modules"]]
    assert loaded == []


def test_run_once_on_postgres_with_nothing_queued_loads_no_dispatcher(root, pg_url):
    """The store answers ``nothing_queued`` with one query: no dispatcher, no channel, no
    groups.yaml; an announcement queued (not due yet) starts the dispatcher again."""
    env = {"BROADCASTER_DATABASE_URL": pg_url}
    _project(root)
    assert cli(root, "run-once", env=env).code == 0
    seen = _loaded(root, "run-once", env=env)
    assert seen["code"] == 0 and "psycopg" in seen["modules"]
    assert [m for m in NOT_IN_RUN_ONCE if m in seen["modules"]] == []
    assert cli(root, "announce", "明天停水", "--to", "all", "--at", "+2h", env=env).code == 0
    assert "broadcaster.delivery.dispatch" in _loaded(root, "run-once", env=env)["modules"]


def test_a_pass_with_work_takes_its_groups_from_the_caches_without_yaml(root):
    """Something to send: the groups come from the parse and validated caches, so the
    pass parses no YAML (PyYAML is not even imported)."""
    _project(root)
    assert cli(root, "announce", "明天停水", "--to", "all").code == 0   # fills the caches
    assert cli(root, "announce", "后天停水", "--to", "all").code == 0
    seen = _loaded(root, "run-once")
    assert seen["code"] == 0
    assert "broadcaster.config.groups" in seen["modules"] and "yaml" not in seen["modules"]


def test_a_one_shot_command_sets_its_groups_aside_from_garbage_collection(root):
    """announce / run-once (one command, then exit) freeze what loading the groups left
    (later collections walk only what the fan-out makes); a process that goes on (a test
    run here, the daemon) does not. No command looks for pydantic plugins."""
    from broadcaster.app import App

    _project(root)
    code = textwrap.dedent(f"""
        import gc, sys
        from broadcaster.entry import main
        try:
            main(["--root", {str(root)!r}, "announce", "明天停水", "--to", "all"])
        except SystemExit:
            from pydantic.plugin import _loader
            print(gc.get_freeze_count(), gc.isenabled(), _loader._plugins, file=sys.stderr)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       timeout=60, check=False)
    frozen, enabled, plugins = p.stderr.split()[-3:]
    assert int(frozen) > 10_000 and enabled == "True"
    assert plugins == "None"    # no package's metadata read for pydantic plugins
    before = gc.get_freeze_count()
    assert App(root).groups.groups and gc.get_freeze_count() == before


def test_daemon_and_serve_keep_their_groups_collectable(root):
    """A process that goes on (and may load its groups again) freezes nothing; any other
    command's process freezes the groups it loads."""
    _project(root)
    code = textwrap.dedent("""
        import gc, sys
        from broadcaster.app import App
        from broadcaster.entry import main
        try:
            main(["--root", sys.argv[1], *sys.argv[2:], "--help"])
        except SystemExit:
            assert App(sys.argv[1]).groups.groups
            print(gc.get_freeze_count(), file=sys.stderr)
    """)
    runs = {command: subprocess.Popen([sys.executable, "-c", code, str(root), command],
                                      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
            for command in ("daemon", "serve", "run-once")}
    frozen = {command: int(p.communicate(timeout=60)[1].split()[-1])
              for command, p in runs.items()}
    assert frozen["daemon"] == frozen["serve"] == 0 and frozen["run-once"] > 10_000


def test_announce_imports_no_content_kind(root):
    """An announcement's template kind is its own: the weather, news, holiday… modules that
    declare the other kinds are not imported."""
    seen = _loaded(_project(root), "announce", "明天停水", "--to", "all")
    assert seen["code"] == 0
    others = [m for m in ("broadcaster.sources.weather", "broadcaster.sources.news",
                          "broadcaster.sources.events", "broadcaster.sources.holidays",
                          "broadcaster.tickets.notices") if m in seen["modules"]]
    assert others == []


def test_announce_help_loads_only_its_command(root):
    seen = _loaded(_project(root), "announce", "--help")
    assert seen["code"] == 0
    assert [m for m in NOT_AT_START_UP if m in seen["modules"]] == []
    assert "broadcaster.cli.run" not in seen["modules"]


def test_top_level_help_and_a_mistyped_command_still_see_every_command(root):
    r = subprocess.run([sys.executable, str(REPO / "main.py"), "--help"], capture_output=True,
                       text=True, timeout=60, check=True)
    for command in ("check", "announce", "run-once", "queue", "templates", "tickets", "faq"):
        assert f"  {command} " in r.stdout, command
    typo = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), "runonce"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert typo.returncode == 2 and "Did you mean 'run-once'" in typo.stderr
