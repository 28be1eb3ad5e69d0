"""Template failures as ``file:line: reason`` problems an editor can act on."""

from __future__ import annotations

import difflib
import re
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path

from jinja2 import TemplateError as JinjaError
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
_NO_FILTER = re.compile(r"No (filter|test) named '([^']+)'")


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


def reason(exc: BaseException, known: Iterable[str] = (), *, filters: Iterable[str] = (),
           line: str = "") -> str:
    """What went wrong, in an editor's words. ``known``: the names the template receives
    (a mapping of them gives suggestions for fields too); ``filters``: the filter names;
    ``line``: the template line it happened on."""
    unknown_filter = _NO_FILTER.search(str(exc)) if isinstance(exc, JinjaError) else None
    if unknown_filter:
        what, name = unknown_filter.groups()
        hint = _suggest(name, filters if what == "filter" else ())
        return f"unknown {what} {name!r}{hint or ' (see the Filters list in templates/README.md)'}"
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
            return _no_field(match.group(1), match.group(2), known, line)
        return f"undefined: {message}"
    if isinstance(exc, TemplateNotFound):
        return f"included template not found: {exc.name}"
    if isinstance(exc, RecursionError):
        return "not allowed: templates nested too deeply (does a macro call itself?)"
    return f"{type(exc).__name__}: {exc}"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _no_field(what: str, name: str, known: Iterable[str], line: str) -> str:
    """``undefined: weather.current has no field 'txt' (did you mean 'text'?)``: the dotted
    path written before ``.name`` on the line, and the fields it has when it can be found."""
    written = re.search(r"([A-Za-z_][\w.]*)\." + re.escape(name) + r"\b", line)
    if not written:
        return f"undefined: {what} has no field {name!r}"
    path = written.group(1)
    value: object = known if isinstance(known, Mapping) else None
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    fields = list(value) if isinstance(value, Mapping) else []
    return f"undefined: {path} has no field {name!r}{_suggest(name, fields)}"


def _line(path: Path, line: int | None) -> str:
    if not line:
        return ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[line - 1] if line <= len(lines) else ""


def problem(exc: BaseException, default: Path, *, known: Iterable[str] = (),
            filters: Iterable[str] = (), context: str = "") -> Problem:
    """One ``Problem`` for an exception raised while compiling or rendering ``default``."""
    path, line = located(exc, default)
    message = reason(exc, known, filters=filters, line=_line(path, line))
    return Problem(display_path(path), line, None, f"{message}{context}")
