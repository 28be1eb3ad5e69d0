"""From what staff typed to per-group messages: targeting, rendering, previews.

Declares the ``announcement`` template kind: ``text`` (the staff's Markdown),
``urgent`` and ``sender``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.cleantext import clean_text
from broadcaster.errors import InputError, UsageError
from broadcaster.queue.outbox import Message
from broadcaster.sources.kinds import TemplateKind, register_template
from broadcaster.targeting import select

if TYPE_CHECKING:
    from broadcaster.app import App

MAX_TEXT_BYTES = 64 * 1024  # an announcement is a chat message, not a document


def _sample(now, **_) -> dict:
    return {
        "text": (
            "**停水通知**\n\n"
            "因供水管道维修，明天 9:00—17:00 宁海路 12—36 号停水，请大家提前储水。\n\n"
            "如有困难请联系社区：025-8371 2345"
        ),
        "urgent": False,
        "sender": "汇林绿洲社区居委会",
    }


ANNOUNCEMENT = register_template(TemplateKind(
    "announcement", data=("text", "urgent", "sender"), fields=("text", "urgent", "sender"),
    sample=_sample, defaults={"urgent": False, "sender": None}, used_by="announce",
    cases={"urgent": {"urgent": True}, "unsigned": {"sender": None}},
))


def read_text(text: str | None, file: str | None, stdin) -> str | None:
    """TEXT, ``--file F`` or ``--file -`` (stdin); at most one of them."""
    if text is not None and file is not None:
        raise UsageError("give the text either as TEXT or with --file, not both")
    if file is not None:
        if file == "-":
            raw = stdin.buffer.read(MAX_TEXT_BYTES + 1)
            where = "stdin"
        else:
            path = Path(file)
            try:
                with path.open("rb") as fh:
                    raw = fh.read(MAX_TEXT_BYTES + 1)
            except OSError as exc:
                raise InputError(f"--file {file}: {exc.strerror or exc}") from None
            where = file
        if len(raw) > MAX_TEXT_BYTES:
            raise InputError(f"{where}: larger than {MAX_TEXT_BYTES // 1024} KiB; "
                             "an announcement must fit in a chat")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if text is not None:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise InputError(f"TEXT is larger than {MAX_TEXT_BYTES // 1024} KiB")
        text = clean_text(text).strip()
        if not text:
            raise InputError("the announcement text is empty")
    return text


def parse_vars(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"--var {pair!r}: expected NAME=VALUE")
        out[key.strip()] = clean_text(value)
    return out


@dataclass
class Draft:
    groups: list
    messages: list[Message]


def compose(
    app: App,
    *,
    text: str | None,
    template: str | None,
    variables: dict[str, str],
    to: list[str],
    exclude: list[str],
    urgent: bool,
    sender: str | None = None,
) -> Draft:
    """Target and render: one Markdown message per group, or an error before anything is queued."""
    if text is None and template is None:
        raise UsageError("nothing to announce: give TEXT, --file or --template")
    name = template or "announcement"
    if template is not None:
        _check_announceable(app, template)
    from broadcaster.templating.batch import RenderBatch  # start-up time: loaded when first used

    groups = select(app.groups, to, exclude)
    if not groups:
        raise InputError(f"--exclude {' '.join(exclude)} leaves no group of --to {' '.join(to)} "
                         "to send to")
    now = app.now()
    messages = []
    renderer = RenderBatch(app.templates)     # each distinct message rendered once
    for g in groups:
        data = {"text": text or "", "urgent": urgent, "sender": sender, "vars": variables}
        markdown = renderer.render(name, group=g, data=data, now=now.astimezone(g.tz))
        if not markdown.strip():
            raise InputError(f"template {name!r} renders an empty message for group {g.id}")
        messages.append(Message(g.id, markdown))
    return Draft(groups, messages)


# The template kinds an announcement can render: its own, and named templates (``--var``).
ANNOUNCEABLE = ("announcement", "template")


def _check_announceable(app: App, name: str) -> None:
    """``announce --template weather`` is a mistake to explain, not an undefined variable."""
    kind = app.templates.kind_of(name)
    if kind in ANNOUNCEABLE:
        return
    usable = [n for n in app.templates.names() if app.templates.kind_of(n) in ANNOUNCEABLE]
    raise InputError(
        f"{name} is a content template (kind {kind}: broadcaster fills it with {kind} data); "
        f"announcements use an announcement template or a named template given --var "
        f"values: {', '.join(usable) or 'none in templates/'}")


def previews(app: App, draft: Draft, *, mention_all: bool) -> list[dict]:
    """Per group: the parts exactly as they would be sent, and their sizes against the limit."""
    from broadcaster import channels  # start-up time: loaded when first used
    from broadcaster.templating.preview import channel_parts  # start-up time: loaded when first used

    out = []
    for g, m in zip(draft.groups, draft.messages, strict=True):
        parts = channel_parts(m.markdown, g.channel_type, g, mention_all=mention_all)
        out.append({
            "group": g.id,
            "channel": g.channel_type,
            "parts": [app.redact(p.text) for p in parts],
            "sizes": [p.size for p in parts],
            "limit": parts[0].limit,
            "unit": channels.get(g.channel_type).limit.unit,
        })
    return out
