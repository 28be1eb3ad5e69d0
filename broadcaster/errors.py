"""Errors that reach the user.

Library code raises these; only the CLI turns them into messages and exit codes
(see ``broadcaster.output``). Every config problem carries where it was found, so
that the user reads ``file:line: field: message`` and can go straight there.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one place in one file."""

    file: str
    line: int | None
    field: str | None
    message: str

    def as_json(self) -> dict:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return {"file": self.file, "line": self.line, "message": text}

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def did_you_mean(word: str, choices, otherwise: str = "", cutoff: float = 0.6) -> str:
    """``"; did you mean a, b?"`` for the close matches of ``word`` (never ``word`` itself:
    ``all`` with every group left out matches nothing, and is no suggestion), else ``otherwise``."""
    import difflib  # start-up time: errors is imported by every command, suggestions are rare

    close = difflib.get_close_matches(word, [c for c in choices if c != word], n=3, cutoff=cutoff)
    return f"; did you mean {', '.join(close)}?" if close else otherwise


class BroadcasterError(Exception):
    """An error the user can fix: invalid input or config. Exit code 1."""

    exit_code = EXIT_INVALID


class ConfigError(BroadcasterError):
    """One or more problems in the user's files, all reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, str(p)))
        super().__init__("\n".join(str(p) for p in self.problems))


class InputError(BroadcasterError):
    """A bad command-line value (``--at``, a selector, an id...)."""


class UsageError(BroadcasterError):
    """The command was called wrongly (conflicting or missing arguments). Exit code 2."""

    exit_code = EXIT_USAGE


class LockHeld(BroadcasterError):
    """Another process holds the dispatch lock."""

    exit_code = EXIT_LOCKED
