"""Shared fixtures: a project root in a temp dir, and the CLI run in- or out-of-process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import redirect_stderr, redirect_stdout
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


def cli_process(root: Path, *args: str, env: dict | None = None, timeout: float = 60,
                stdin: str | None = None) -> Result:
    """Run the CLI as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), *args],
                       capture_output=True, text=True, timeout=timeout, env=full_env,
                       input=stdin, check=False)
    return Result(p.returncode, p.stdout, p.stderr)
