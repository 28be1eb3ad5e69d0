"""The application context: where the files are, loaded once and on demand.

Commands and the daemon build one ``App`` and hand it to the library. Nothing
here is global; every attribute is loaded lazily so that a pass which needs
little (``run-once`` with nothing due) loads little.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from broadcaster.redact import Redactor
from broadcaster.store import Store, open_store

if TYPE_CHECKING:
    from broadcaster.config.groups import GroupsConfig
    from broadcaster.templating import Templates


_one_shot = False


def one_shot_process() -> None:
    """This process runs one command and exits (the entry point says so for every command
    but ``daemon`` and ``serve``): the config it loads lives as long as the process."""
    global _one_shot
    _one_shot = True


@contextmanager
def _settled() -> Iterator[None]:
    """In a one-shot process, load config that lives as long as the process (thousands of
    groups) without cyclic garbage collections walking it while it grows, then set it
    aside from later ones (``gc.freeze``), so that the collections of a fan-out walk only
    what the fan-out makes. A long-running process (and a test run) keeps the defaults:
    a config reloaded there must stay collectable."""
    if not _one_shot:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class App:
    """One installation: its root, its state store, its config (each loaded when first used)."""

    root: Path
    state_dir: Path
    redactor: Redactor

    def __init__(self, root: Path | str | None = None, state_dir: Path | str | None = None):
        self.root = Path(root or os.environ.get("BROADCASTER_ROOT") or ".").resolve()
        state = state_dir or os.environ.get("BROADCASTER_STATE_DIR") or self.root / "var"
        self.state_dir = Path(state).resolve()
        self.redactor = Redactor()
        #: where warnings go (the CLI prints them on stderr; default: the log)
        self.on_warning: Callable[[str], None] | None = None

    def warn(self, text: str) -> None:
        """Something works but an operator should know (a group left out, state rebuilt)."""
        text = self.redact(text)
        if self.on_warning is not None:
            self.on_warning(text)
        else:
            logging.getLogger("broadcaster").warning("%s", text)

    def require_root(self) -> None:
        """Refuse a directory that is not a project root, before anything is created in it."""
        if not (self.root / "groups.yaml").is_file():
            from broadcaster.errors import InputError  # start-up time: loaded when first used

            raise InputError(f"no groups.yaml in {self.root}: run in the project directory, "
                             "or give --root DIR (or set BROADCASTER_ROOT)")

    @cached_property
    def store(self) -> Store:
        return open_store(self.state_dir)

    @property
    def cache_dir(self) -> Path:
        """Where derived files (the parse cache) live: under the state directory, 0700."""
        return self.state_dir / "cache"

    @cached_property
    def groups(self) -> GroupsConfig:
        from broadcaster.config.groups import load_groups  # start-up time: loaded when first used
        from broadcaster.store.durable import make_dirs  # start-up time: loaded when first used

        make_dirs(self.state_dir, self.cache_dir)  # the parse cache lives in the (0700) state directory
        with _settled():
            config = load_groups(self.root, cache_dir=self.cache_dir, isolate=True)
        self.redactor.add(config.secrets())
        for gid, problems in config.broken.items():
            for problem in problems:
                self.warn(f"{problem} (group {gid} left out until this is fixed)")
        return config

    @cached_property
    def templates(self) -> Templates:
        from broadcaster.templating import Templates  # start-up time: loaded when first used

        return Templates(self.root)

    @cached_property
    def tickets(self):
        """Work orders: categories, staff and the ticket store (see broadcaster.tickets.desk)."""
        from broadcaster.tickets.desk import Desk  # start-up time: loaded when first used

        return Desk(self)

    @cached_property
    def default_timezone(self) -> str:
        """``defaults.timezone``, without loading the groups when they are not loaded yet."""
        if "groups" in self.__dict__:
            return self.groups.defaults.timezone
        from broadcaster.config.timezone import default_timezone  # start-up time: loaded when first used

        return default_timezone(self.root, self.cache_dir)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def redact(self, text: object) -> str:
        return self.redactor(text)
