"""YAML loading with line numbers and ``${ENV}`` interpolation.

``load_yaml(path)`` returns ``(data, lines)``: the plain Python data and a map
from each value's path (a tuple of keys and list indexes) to its 1-based line.
``line_of(lines, loc)`` finds the best line for a pydantic error location.
Every problem found is collected; ``ConfigError`` is raised once with all of them.

Every YAML file broadcaster reads (groups.yaml, feeds/, schedules/,
tickets.yaml, faq/, preview data) is parsed here, and bounded before it is
built: libyaml's event stream is read first (iteratively, in C), and a file
nested deeper than ``MAX_DEPTH`` levels, or whose aliases would add more than
``MAX_ALIAS_VALUES`` values (a "billion laughs" file), is refused with its
``file:line`` before anything is composed — in milliseconds, and without the
recursion that made 900 levels a RecursionError and 50,000 a crash.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from broadcaster.config.kept import MISS, CheckedCache
from broadcaster.errors import ConfigError, Problem

# PyYAML, imported when a file is parsed (``_yaml()``): the parse cache usually spares it
yaml: Any = None
_LOADER: Any = None     # libyaml's parser when present (tens of times faster on 2,000 groups)
_STR = "tag:yaml.org,2002:str"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")  # ${NAME} or ${NAME:-default}
MAX_DEPTH = 64                 # nested mappings and lists; broadcaster's own files use under 10
MAX_ALIAS_VALUES = 100_000     # values that aliases may add (a 2,000-group file has ~30,000)


def _yaml() -> Any:
    """PyYAML, imported on first use (the functions below that parse call this first)."""
    global yaml, _LOADER
    if yaml is None:
        import yaml as module  # start-up time: loaded when first used

        _LOADER = getattr(module, "CSafeLoader", module.SafeLoader)
        yaml = module
    return yaml


class Lines:
    """Where each value of a file was: ``lines[path] -> line`` (1-based).

    Built while parsing; when the data came from the parse cache it is built
    only if someone asks, which happens only when there is a problem to report.
    """

    def __init__(self, text: str, table: dict[tuple, int] | None = None):
        self._text = text
        self._table = table

    @property
    def table(self) -> dict[tuple, int]:
        if self._table is None:
            self._table = {}
            check_bounds(self._text, "")     # imports PyYAML
            node = yaml.compose(self._text, Loader=_LOADER)
            if node is not None:
                _walk_lines(node, (), self._table, yaml.constructor.SafeConstructor())
        return self._table

    def __contains__(self, path: tuple) -> bool:
        return path in self.table

    def __getitem__(self, path: tuple) -> int:
        return self.table[path]

    def get(self, path: tuple, default: int | None = None) -> int | None:
        return self.table.get(path, default)


def display_path(path: Path) -> str:
    """The path as the user should read it: relative to the cwd when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_yaml(
    path: Path,
    *,
    environ: dict[str, str] | None = None,
    problems: list[Problem] | None = None,
    cache_dir: Path | None = None,
    cacheable: Callable[[Any], bool] | None = None,
) -> tuple[Any, Lines]:
    """Parse ``path``; interpolate ``${NAME}`` from ``environ`` (default: os.environ).

    A missing variable is a problem; given a ``problems`` list, they are added to
    it and loading goes on (so that validation can report the rest at once),
    otherwise ConfigError is raised.

    With ``cache_dir``, the parsed data (before interpolation, so no value from
    the environment) is kept as JSON and reused while the file's text is
    unchanged; ``cacheable(data)`` decides whether this file's data may be kept.
    """
    env = os.environ if environ is None else environ
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(shown, None, None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(shown, None, None, f"cannot read: {exc}")]) from None
    found: list[Problem] = []
    cache = (CheckedCache.beside(cache_dir, path, hashlib.sha256(text.encode()).hexdigest())
             if cache_dir is not None else None)
    data = cache.load() if cache is not None else MISS
    if data is not MISS:
        lines = Lines(text)
    else:
        data, lines = _parse(text, shown, found)
        if cache is not None and not found and (cacheable is None or cacheable(data)):
            cache.store(data)
    data = _interpolate(data, (), lines, found, shown, env)
    if problems is not None:
        problems.extend(found)
    elif found:
        raise ConfigError(found)
    return data, lines


def parse_yaml(text: str, shown: str) -> Any:
    """The plain data of YAML ``text`` (no ``${ENV}`` interpolation), bounded like every
    file here; ``ConfigError`` with ``shown`` and the line when it is refused or invalid."""
    found: list[Problem] = []
    data, _ = _parse(text, shown, found)
    if found:
        raise ConfigError(found)
    return data


def check_bounds(text: str, shown: str) -> None:
    """Refuse ``text`` nested deeper than ``MAX_DEPTH`` or with aliases adding more than
    ``MAX_ALIAS_VALUES`` values, reading only libyaml's event stream (no recursion).

    Each anchor's size is the number of values it stands for, its own aliases
    expanded; each alias adds its anchor's size. Syntax errors are left to
    the parser, which reports them with their line.
    """
    _yaml()
    sizes: dict[str, int] = {}          # anchor -> values it stands for
    open_: list[list] = []              # per open collection: [anchor, values so far]
    added = 0
    try:
        for ev in yaml.parse(text, Loader=_LOADER):
            if isinstance(ev, yaml.CollectionStartEvent):
                if len(open_) >= MAX_DEPTH:
                    _refuse(shown, ev, f"nested more than {MAX_DEPTH} levels deep")
                open_.append([ev.anchor, 1])
            elif isinstance(ev, yaml.CollectionEndEvent):
                anchor, values = open_.pop()
                if anchor is not None:
                    sizes[anchor] = values
                if open_:
                    open_[-1][1] += values
            elif isinstance(ev, yaml.ScalarEvent | yaml.AliasEvent):
                values = 1
                if isinstance(ev, yaml.AliasEvent):
                    values = sizes.get(ev.anchor, 1)
                    added += values
                    if added > MAX_ALIAS_VALUES:
                        _refuse(shown, ev, f"its aliases would add more than {MAX_ALIAS_VALUES:,} "
                                           "values (an alias bomb?)")
                elif ev.anchor is not None:
                    sizes[ev.anchor] = 1
                if open_:
                    open_[-1][1] += values
    except yaml.YAMLError:
        return  # reported, with its line, by the parser


def _refuse(shown: str, event, why: str):
    raise ConfigError([Problem(shown, event.start_mark.line + 1, None,
                               f"refused: {why}")])


def _parse(text: str, shown: str, found: list[Problem]) -> tuple[Any, Lines]:
    check_bounds(text, shown)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(shown, line, None, f"invalid YAML: {reason}")]) from None
    table: dict[tuple, int] = {}
    constructor = yaml.constructor.SafeConstructor()
    data = _build(node, (), table, found, shown, constructor) if node is not None else None
    return data, Lines(text, table)


def _build(node, path, table, problems, shown, constructor):
    table[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _plain(key_node, constructor)
            if key in out:
                problems.append(
                    Problem(shown, key_node.start_mark.line + 1, str(key), "duplicate key")
                )
            out[key] = _build(value_node, (*path, key), table, problems, shown, constructor)
            table[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), table, problems, shown, constructor)
                for i, item in enumerate(node.value)]
    return _plain(node, constructor)


def _walk_lines(node, path, table, constructor) -> None:
    """The line table alone, for data that came from the parse cache."""
    table[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _plain(key_node, constructor)
            _walk_lines(value_node, (*path, key), table, constructor)
            table[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_lines(item, (*path, i), table, constructor)


def _interpolate(value, path, lines: Lines, problems: list[Problem], shown: str, env):
    """Replace ``${NAME}`` in every string, in place; a missing NAME is a problem.

    ``${NAME:-default}`` takes ``default`` when NAME is not set (demo values).
    Only containers and strings holding ``${`` are visited with their path
    (thousands of groups: most values are plain).
    """
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return _substitute(value, path, lines, problems, shown, env)
    for key, item in items:
        if isinstance(item, str):
            if "${" in item:
                value[key] = _substitute(item, (*path, key), lines, problems, shown, env)
        elif isinstance(item, dict | list):
            _interpolate(item, (*path, key), lines, problems, shown, env)
    return value


def _substitute(value, path, lines: Lines, problems: list[Problem], shown: str, env):
    if not (isinstance(value, str) and "${" in value):
        return value

    def sub(match: re.Match) -> str:
        name, default = match.groups()
        found = env.get(name)           # one look-up: os.environ encodes the name each time
        if found is not None:
            return found
        if default is not None:
            return default
        problems.append(Problem(shown, lines.get(path), _dotted(path),
                                f"environment variable {name} is not set"))
        return ""

    return _ENV.sub(sub, value)


def _plain(node, constructor):
    """A node's Python value; plain strings (most of them) skip the constructor."""
    if node.tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    return constructor.construct_object(node, deep=True)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def load_folder(
    folder: Path, problems: list[Problem], *, environ: dict[str, str] | None = None
) -> Iterator[tuple[str, Any, Lines]]:
    """``(shown path, data, lines)`` of every non-empty ``*.yaml`` in ``folder``, sorted.

    A file that cannot be loaded adds its problems and is skipped, so that the
    caller goes on and reports the problems of every file at once.
    """
    if not folder.is_dir():
        return
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in paths:
        try:
            data, lines = load_yaml(path, environ=environ)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if data is not None:
            yield display_path(path), data, lines


def line_of(lines: Lines, loc: tuple) -> int | None:
    """The line of the longest prefix of ``loc`` that was seen in the file."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def pydantic_problems(exc, shown: str, lines: Lines, prefix: tuple = ()) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into located problems."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        full = (*prefix, *loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        problems.append(Problem(shown, line_of(lines, full), _dotted(full) or None, msg))
    return problems
