"""``faq/*.yaml``: the knowledge base editors maintain, loaded and validated.

An entry: ``id``, example questions ``ask``, ``keywords`` (a message holding
one is answered), optional ``regex`` patterns (same effect), a Markdown
``answer`` (a sandboxed template, like templates/) or the files
``faq/answers/<id>.md.j2`` and ``faq/answers/<id>.<channel>.md.j2`` (the
channel's own version wins), and an optional scope ``to:`` (selectors, as
``--to``). Every problem is ``file:line: message``; a bad regex is found here,
never at run time.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from broadcaster.config.yamlfile import display_path, line_of, load_folder, pydantic_problems
from broadcaster.errors import ConfigError, Problem

ENTRY_ID = re.compile(r"^[a-z0-9_-]+$")
ANSWER_SUFFIX = ".md.j2"
MAX_REGEX = 200
MAX_TEXT = 200


class EntrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    ask: list[str] = []
    keywords: list[str] = []
    regex: list[str] = []
    answer: str | None = None
    to: list[str] = ["all"]

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ENTRY_ID.match(v):
            raise ValueError("an entry id may hold only lowercase letters, digits, - and _")
        return v

    @field_validator("ask", "keywords")
    @classmethod
    def _texts(cls, v: list[str]) -> list[str]:
        for text in v:
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise ValueError(f"each item must be a non-empty text of at most {MAX_TEXT} characters")
        return [t.strip() for t in v]

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: list[str]) -> list[str]:
        for pattern in v:
            if len(pattern) > MAX_REGEX:
                raise ValueError(f"a regex is at most {MAX_REGEX} characters")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return v

    @field_validator("to")
    @classmethod
    def _to(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("to: needs at least one selector (or leave it out for all groups)")
        return v


@dataclass(frozen=True)
class Entry:
    id: str
    ask: tuple[str, ...]
    keywords: tuple[str, ...]
    regex: tuple[str, ...]
    answer: str | None            # inline template source
    to: tuple[str, ...]
    file: str                     # where it was written, for messages
    line: int | None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class KnowledgeBase:
    directory: Path
    entries: list[Entry]
    answer_files: dict[str, Path]   # "<id>" or "<id>.<channel>" -> file
    digest: str                     # of everything matching depends on

    def answer_file(self, entry_id: str, channel: str | None) -> Path | None:
        if channel and f"{entry_id}.{channel}" in self.answer_files:
            return self.answer_files[f"{entry_id}.{channel}"]
        return self.answer_files.get(entry_id)


def load(root: Path, problems: list[Problem] | None = None, *,
         cache_dir: Path | None = None) -> KnowledgeBase:
    """Every entry of ``<root>/faq``; with ``problems`` collect them, else raise ConfigError.

    With ``cache_dir`` a valid knowledge base is kept there as JSON, keyed by the
    files' bytes, and read back instead of parsing the YAML again (start-up time).
    """
    directory = Path(root) / "faq"
    key = _files_digest(directory) if cache_dir is not None else None
    if key is not None:
        cached = _from_cache(directory, cache_dir / f"faq-entries-{key[:24]}.json")
        if cached is not None:
            return cached
    kb = _load(directory, problems)
    if key is not None and not (problems or []):
        _to_cache(kb, cache_dir / f"faq-entries-{key[:24]}.json")
    return kb


def _files_digest(directory: Path) -> str | None:
    """A digest of every file the knowledge base is read from (None: not cacheable)."""
    if not directory.is_dir():
        return None
    digest = hashlib.sha256(b"faq-entries-1")
    answers = directory / "answers"
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in paths:
        data = path.read_bytes()
        if b"${" in data:
            return None   # depends on the environment
        digest.update(path.name.encode() + b"\0" + data + b"\0")
    if answers.is_dir():
        digest.update("\0".join(sorted(p.name for p in answers.iterdir())).encode())
    return digest.hexdigest()


def _to_cache(kb: KnowledgeBase, path: Path) -> None:
    from broadcaster.faq.text import _write  # start-up time: loaded when first used

    data = {"digest": kb.digest,
            "entries": [[e.id, e.ask, e.keywords, e.regex, e.answer, e.to, e.file, e.line]
                        for e in kb.entries],
            "answer_files": {k: p.name for k, p in kb.answer_files.items()}}
    _write(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _from_cache(directory: Path, path: Path) -> KnowledgeBase | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [Entry(i, tuple(a), tuple(k), tuple(r), ans, tuple(to), f, line)
                   for i, a, k, r, ans, to, f, line in data["entries"]]
        files = {k: directory / "answers" / name for k, name in data["answer_files"].items()}
        return KnowledgeBase(directory, entries, files, data["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load(directory: Path, problems: list[Problem] | None) -> KnowledgeBase:
    found: list[Problem] = []
    entries: list[Entry] = []
    seen: dict[str, Entry] = {}
    digest = hashlib.sha256()
    for shown, data, lines in load_folder(directory, found):
        digest.update(shown.encode() + b"\0" + repr(data).encode())
        if not isinstance(data, list):
            found.append(Problem(shown, 1, None, "expected a list of entries (- id: …)"))
            continue
        for i, raw in enumerate(data):
            try:
                spec = EntrySpec.model_validate(raw)
            except ValidationError as exc:
                found.extend(pydantic_problems(exc, shown, lines, (i,)))
                continue
            line = line_of(lines, (i,))
            entry = Entry(spec.id, tuple(spec.ask), tuple(spec.keywords), tuple(spec.regex),
                          spec.answer, tuple(spec.to), shown, line)
            if spec.id in seen:
                found.append(Problem(shown, line, "id", f"duplicate entry id {spec.id!r} "
                                     f"(first at {seen[spec.id].where})"))
                continue
            if not (spec.ask or spec.keywords or spec.regex):
                found.append(Problem(shown, line, spec.id, "needs ask:, keywords: or regex:"))
                continue
            seen[spec.id] = entry
            entries.append(entry)
    answer_files = _answer_files(directory, found)
    for entry in entries:
        if entry.answer is None and entry.id not in answer_files:
            found.append(Problem(entry.file, entry.line, entry.id,
                                 f"no answer: write answer: or faq/answers/{entry.id}{ANSWER_SUFFIX}"))
    for key, path in answer_files.items():
        if key.split(".", 1)[0] not in seen:
            found.append(Problem(display_path(path), None, None,
                                 f"answer file for unknown entry {key.split('.', 1)[0]!r}"))
    if problems is not None:
        problems.extend(found)
    elif found:
        raise ConfigError(found)
    return KnowledgeBase(directory, entries, answer_files, digest.hexdigest())


def _answer_files(directory: Path, problems: list[Problem]) -> dict[str, Path]:
    from broadcaster import channels  # start-up time: loaded when first used

    folder = directory / "answers"
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(ANSWER_SUFFIX):
            continue
        key = path.name[: -len(ANSWER_SUFFIX)]
        entry_id, _, channel = key.partition(".")
        if not ENTRY_ID.match(entry_id) or (channel and channel not in channels.channel_types()):
            problems.append(Problem(display_path(path), None, None,
                                    "answer files are named <id>.md.j2 or <id>.<channel>.md.j2 "
                                    f"(channels: {', '.join(channels.channel_types())})"))
            continue
        out[key] = path
    return out
