"""Template failures as ``file:line: reason`` problems an editor can act on."""

from __future__ import annotations

import difflib
import re
import traceback
from collections.abc import Iterable
from pathlib import Path

from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from broadcaster.config.yamlfile import display_path
from broadcaster.errors import ConfigError, Problem


class TemplateError(ConfigError):
    """A template that cannot be rendered: syntax, undefined variable, sandbox, size.

    A ``ConfigError`` (so a ``BroadcasterError``, exit code 1) carrying every
    problem found as ``problems``.
    """


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'(.+)' has no attribute '([^']+)'$")


def located(exc: BaseException, default: Path) -> tuple[Path, int | None]:
    """The template file and line an exception was raised at (innermost template frame)."""
    if isinstance(exc, TemplateSyntaxError):
        path = Path(exc.filename) if exc.filename else default
        return path, exc.lineno
    where: tuple[Path, int | None] = (default, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            where = (Path(frame.filename), frame.lineno)
    return where


def reason(exc: BaseException, known: Iterable[str] = ()) -> str:
    """What went wrong, in an editor's words."""
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"not allowed: {exc}"
    if isinstance(exc, UndefinedError):
        message = str(exc)
        match = _UNDEFINED_NAME.match(message)
        if match:
            name = match.group(1)
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"undefined variable {name!r}{hint}"
        match = _NO_ATTRIBUTE.match(message)
        if match:
            return f"undefined: {match.group(1)} has no field {match.group(2)!r}"
        return f"undefined: {message}"
    if isinstance(exc, TemplateNotFound):
        return f"included template not found: {exc.name}"
    if isinstance(exc, RecursionError):
        return "not allowed: templates nested too deeply (does a macro call itself?)"
    return f"{type(exc).__name__}: {exc}"


def problem(exc: BaseException, default: Path, *, known: Iterable[str] = (),
            context: str = "") -> Problem:
    """One ``Problem`` for an exception raised while compiling or rendering ``default``."""
    path, line = located(exc, default)
    message = reason(exc, known)
    return Problem(display_path(path), line, None, f"{message}{context}")
