"""Shared fixtures: a project root in a temp dir, and the CLI run in- or out-of-process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def write_groups(root: Path, body: str) -> None:
    (root / "groups.yaml").write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project root with the shipped templates, empty feeds/ and schedules/."""
    r = tmp_path / "root"
    r.mkdir()
    shutil.copytree(REPO / "templates", r / "templates")
    (r / "feeds").mkdir()
    (r / "schedules").mkdir()
    return r


def cli(root: Path, *args: str, env: dict | None = None, stdin: str | None = None) -> Result:
    """Run the CLI in this process (fast); the env is applied for the call only."""
    from broadcaster.cli import main

    saved = dict(os.environ)
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main(["--root", str(root), *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = old_stdin
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


def queued_files(root: Path) -> list[Path]:
    """The announcement files in the queue (none when there is no queue yet)."""
    active = root / "var" / "active"
    return list(active.glob("*.json")) if active.exists() else []


def clear_of_minute_turn(margin: float = 20) -> None:
    """Wait for the next minute when fewer than ``margin`` seconds are left in this one.

    For tests of real processes with every-minute cron jobs, where a turn of the
    minute between two runs would rightly fire the job again.
    """
    import time

    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.2)


@contextmanager
def dispatch_lock_held(state: Path):
    """Another process holds the dispatch lock of the store in ``state`` meanwhile."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from broadcaster.store import open_store\n"
         f"s = open_store({str(state)!r})\n"
         "with s.dispatch_lock():\n"
         "    print('held', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def cli_process(root: Path, *args: str, env: dict | None = None, timeout: float = 60,
                stdin: str | None = None) -> Result:
    """Run the CLI as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), *args],
                       capture_output=True, text=True, timeout=timeout, env=full_env,
                       input=stdin, check=False)
    return Result(p.returncode, p.stdout, p.stderr)


# -- PostgreSQL: one server per test process, a fresh database per test -----------------

PG_TEMPLATE = "broadcaster_template"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL (see tests/pgserver.py) with a template database at the latest schema.

    Where no server can start, the tests that need one are skipped with the reason,
    except under CI (``CI`` set), where that is a failure.
    """
    from broadcaster.store.pgstore import PgStore
    from tests.pgserver import NoServer, start_server

    try:
        server = start_server()
    except NoServer as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL cannot start here: {exc}")
        pytest.skip(f"PostgreSQL cannot start here: {exc}")
    try:
        store = PgStore(server.create_db(PG_TEMPLATE), tmp_path_factory.mktemp("pg-template"))
        store.upgrade()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(pg_server):
    """The URL of a fresh database at the latest schema (copied from the template)."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"')
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["files", "postgres"])
def any_store(request, tmp_path):
    """The store contract's subject: the embedded store, then the PostgreSQL one."""
    from broadcaster.store import open_store

    if request.param == "files":
        yield open_store(tmp_path / "var", url="")
        return
    store = open_store(tmp_path / "var", url=request.getfixturevalue("pg_url"))
    yield store
    store.close()
