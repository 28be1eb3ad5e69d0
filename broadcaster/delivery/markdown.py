"""One Markdown source, rendered into each platform's dialect.

Editors write one small Markdown (headings, **bold**, *italic*, ~~strike~~,
`code`, [links](https://…), ``>`` quotes, ``-``/``1.`` lists, fenced code,
``---`` rules). Chat platforms each understand a different subset, so the
source is parsed once into lines of inline nodes and written back out per
dialect:

==========  ==========================================================
``wecom``     WeCom markdown: headings, bold, links, quotes, `code`,
              ``<font color>``; lists and code blocks as plain lines
``dingtalk``  DingTalk markdown: CommonMark subset; line breaks made hard
``lark_md``   Feishu card text: bold/italic/strike/links, no headings
``telegram``  Telegram HTML: escaped text in b/i/s/a/code/pre/blockquote
``slack``     Slack mrkdwn: ``*bold*``, ``_italic_``, ``<url|text>``
``discord``   Discord markdown (``#``–``###`` headings, masked links)
``plain``     plain text (WeCom/Feishu ``text`` messages, previews)
==========  ==========================================================

The parser never fails: markup it does not recognise (an unclosed ``**``)
stays literal text, and every HTML the Telegram writer emits is balanced and
escaped, whatever the input, so a split part never carries broken markup.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass, field

# -- inline nodes --------------------------------------------------------------


@dataclass
class Node:
    """An inline element: ``kind`` is text, raw, code, bold, italic, strike or link."""

    kind: str
    text: str = ""                     # text, raw (an HTML tag), code
    children: list[Node] = field(default_factory=list)  # bold, italic, strike, link
    url: str = ""                      # link


_ESCAPABLE = set("\\`*_{}[]()#+-.!>~|<&")
_FONT_TAG = re.compile(r"<font\b[^<>]*>|</font>", re.IGNORECASE)
_LINK = re.compile(r"\[((?:[^\[\]\\]|\\.)*)\]\(\s*<?([^\s()<>]+)>?\s*\)")


def parse_inline(text: str) -> list[Node]:
    """Parse one line of inline Markdown into nodes; unknown markup stays text."""
    nodes: list[Node] = []
    buf: list[str] = []
    i, n = 0, len(text)

    def flush() -> None:
        if buf:
            nodes.append(Node("text", "".join(buf)))
            buf.clear()

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in _ESCAPABLE:
            buf.append(text[i + 1])
            i += 2
            continue
        if c == "`":
            ticks = len(text[i:]) - len(text[i:].lstrip("`"))
            run = text[i : i + ticks]
            end = text.find(run, i + ticks)
            if end > i + ticks:
                flush()
                nodes.append(Node("code", text[i + ticks : end].strip(" ") or " "))
                i = end + ticks
                continue
            buf.append(run)
            i += ticks
            continue
        if c == "<":
            m = _FONT_TAG.match(text, i)
            if m:
                flush()
                nodes.append(Node("raw", m.group(0)))
                i = m.end()
                continue
        if c == "[":
            m = _LINK.match(text, i)
            if m and m.group(1).strip():
                flush()
                nodes.append(Node("link", children=parse_inline(m.group(1)), url=m.group(2)))
                i = m.end()
                continue
        delim = _delimiter_at(text, i)
        if delim:
            end = _closing(text, i, delim)
            if end is not None:
                flush()
                kind = {"**": "bold", "__": "bold", "~~": "strike"}.get(delim, "italic")
                inner = text[i + len(delim) : end]
                nodes.append(Node(kind, children=parse_inline(inner)))
                i = end + len(delim)
                continue
            buf.append(delim)
            i += len(delim)
            continue
        buf.append(c)
        i += 1
    flush()
    return nodes


def _delimiter_at(text: str, i: int) -> str:
    for delim in ("**", "__", "~~", "*", "_"):
        if text.startswith(delim, i):
            return delim
    return ""


def _closing(text: str, start: int, delim: str) -> int | None:
    """Index of the delimiter closing the one at ``start``, or None if it is literal."""
    size = len(delim)
    body = start + size
    if body >= len(text) or text[body].isspace():
        return None
    if delim == "_" and start > 0 and text[start - 1].isalnum():
        return None  # snake_case, not emphasis
    pos = body
    while True:
        end = text.find(delim, pos)
        if end < 0:
            return None
        if end == body:  # empty emphasis ("****") is literal
            return None
        if text[end - 1].isspace() or text[end - 1] == "\\":
            pos = end + 1
            continue
        if size == 1 and text.startswith(delim * 2, end):
            pos = end + 2  # a single delimiter cannot close at a double one
            continue
        after = end + size
        if delim == "_" and after < len(text) and text[after].isalnum():
            pos = after
            continue
        return end


# -- block structure ----------------------------------------------------------


@dataclass
class Line:
    """One source line classified: heading, quote, item, code, rule, text or blank."""

    kind: str
    nodes: list[Node] = field(default_factory=list)
    level: int = 0          # heading level; quote depth
    marker: str = ""        # list marker as written ("-", "3.")
    indent: int = 0         # list nesting (leading spaces // 2)
    raw: str = ""           # code line text, code fence language


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_QUOTE = re.compile(r"^\s{0,3}((?:>\s?)+)(.*)$")
_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)\s*([\w+-]*)")


def parse_lines(source: str) -> list[Line]:
    """Classify every line of ``source``; fenced code is kept verbatim."""
    out: list[Line] = []
    fence = ""
    for text in source.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence:
            if text.strip().startswith(fence) and not text.strip().strip(fence[0]):
                out.append(Line("fence_close"))
                fence = ""
            else:
                out.append(Line("code", raw=text))
            continue
        m = _FENCE.match(text)
        if m:
            fence = m.group(1)
            out.append(Line("fence_open", raw=m.group(2)))
            continue
        if not text.strip():
            out.append(Line("blank"))
        elif m := _HEADING.match(text):
            out.append(Line("heading", parse_inline(m.group(2)), level=len(m.group(1))))
        elif _RULE.match(text):
            out.append(Line("rule"))
        elif m := _QUOTE.match(text):
            depth = m.group(1).count(">")
            out.append(Line("quote", parse_inline(m.group(2).strip()), level=depth))
        elif m := _ITEM.match(text):
            out.append(Line("item", parse_inline(m.group(3).rstrip()), marker=m.group(2),
                            indent=len(m.group(1).expandtabs(4)) // 2))
        else:
            out.append(Line("text", parse_inline(text.strip())))
    if fence:
        out.append(Line("fence_close"))  # an unclosed fence ends with the message
    return out


# -- writers -----------------------------------------------------------------


class _Writer:
    """Base writer: plain text. Subclasses override the pieces their dialect marks up."""

    bullet = "•"
    rule = "————————"

    def escape(self, text: str) -> str:
        return text

    # inline
    def inline(self, nodes: list[Node]) -> str:
        return "".join(self.node(n) for n in nodes)

    def node(self, n: Node) -> str:
        if n.kind == "text":
            return self.escape(n.text)
        if n.kind == "raw":
            return self.raw(n.text)
        if n.kind == "code":
            return self.code(n.text)
        if n.kind == "link":
            return self.link(n.children, n.url)
        inner = self.inline(n.children)
        return getattr(self, n.kind)(inner) if inner else ""

    def raw(self, tag: str) -> str:
        return ""  # <font> colours only survive where the dialect has them

    def code(self, text: str) -> str:
        return self.escape(text)

    def bold(self, inner: str) -> str:
        return inner

    def italic(self, inner: str) -> str:
        return inner

    def strike(self, inner: str) -> str:
        return inner

    def link(self, children: list[Node], url: str) -> str:
        label = self.inline(children)
        plain = to_plain_inline(children)
        return self.escape(url) if plain in (url, "") else f"{label} ({self.escape(url)})"

    # blocks
    def heading(self, level: int, nodes: list[Node]) -> str:
        return self.inline(nodes)

    def quote(self, depth: int, text: str) -> str:
        return "> " * depth + text

    def item(self, line: Line) -> str:
        marker = self.bullet if not line.marker[0].isdigit() else line.marker
        return "  " * line.indent + f"{marker} {self.inline(line.nodes)}"

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        return [self.escape(text) for text in lines]

    def write(self, source: str) -> str:
        lines = parse_lines(source)
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.kind == "fence_open":
                j = i + 1
                while lines[j].kind != "fence_close":
                    j += 1
                out.extend(self.code_block(line.raw, [c.raw for c in lines[i + 1 : j]]))
                i = j + 1
                continue
            if line.kind == "quote":
                j = i
                while j < len(lines) and lines[j].kind == "quote":
                    j += 1
                out.extend(self.quote_block(lines[i:j]))
                i = j
                continue
            out.append(self.line(line))
            i += 1
        return self.finish(out)

    def quote_block(self, lines: list[Line]) -> list[str]:
        return [self.quote(q.level, self.inline(q.nodes)) for q in lines]

    def line(self, line: Line) -> str:
        if line.kind == "blank":
            return ""
        if line.kind == "heading":
            return self.heading(line.level, line.nodes)
        if line.kind == "rule":
            return self.rule
        if line.kind == "item":
            return self.item(line)
        return self.inline(line.nodes)

    def finish(self, out: list[str]) -> str:
        return _squeeze_blank_lines("\n".join(out)).strip("\n")


def _squeeze_blank_lines(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text)


class _Markdown(_Writer):
    """The Markdown-flavoured dialects' common ground; subclasses drop what theirs lacks.

    ``**bold**``, ``*italic*``, ``~~strike~~``, `` `code` ``, ``[label](url)``,
    ``#`` headings, one quote level, ``<font>`` tags kept.
    """

    def raw(self, tag: str) -> str:
        return tag

    def code(self, text: str) -> str:
        return f"`{text}`"

    def bold(self, inner: str) -> str:
        return f"**{inner}**"

    def italic(self, inner: str) -> str:
        return f"*{inner}*"

    def strike(self, inner: str) -> str:
        return f"~~{inner}~~"

    def link(self, children: list[Node], url: str) -> str:
        return f"[{self.inline(children) or url}]({url})"

    def heading(self, level: int, nodes: list[Node]) -> str:
        return "#" * level + " " + self.inline(nodes)

    def quote(self, depth: int, text: str) -> str:
        return "> " + text


def _fenced(lang: str, lines: list[str]) -> list[str]:
    return ["```" + lang, *lines, "```"]


class _WeCom(_Markdown):
    """WeCom (legacy) markdown: no italic, strike, lists or code blocks; one quote level."""

    italic = strike = _Writer.italic  # shown as their plain text


class _DingTalk(_Markdown):
    """DingTalk markdown: a CommonMark subset whose clients ignore soft line breaks."""

    bullet = "-"
    rule = "---"

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        return _fenced(lang, lines)

    def finish(self, out: list[str]) -> str:
        # a line followed by another non-blank line gets a Markdown hard break
        # (a rule gets blank lines around it, or it would turn the line above into a heading)
        joined: list[str] = []
        for k, text in enumerate(out):
            nxt = out[k + 1] if k + 1 < len(out) else ""
            if text == self.rule:
                joined.extend(["", text, ""])
                continue
            if text.strip() and nxt.strip() and nxt != self.rule \
                    and not text.startswith(("```", "#")) and not nxt.startswith("```"):
                text += "  "
            joined.append(text)
        return super().finish(joined)


class _LarkMd(_Markdown):
    """Feishu ``lark_md``: bold, italic, strike, links, <font>; no headings, quotes or code."""

    code = _Writer.code  # inline code is shown as plain text

    def heading(self, level: int, nodes: list[Node]) -> str:
        return f"**{to_plain_inline(nodes)}**"

    def quote(self, depth: int, text: str) -> str:
        return "▎" * depth + text


class _Telegram(_Writer):
    """Telegram ``parse_mode=HTML``: every text escaped, every tag closed."""

    rule = "──────────"

    def escape(self, text: str) -> str:
        return html.escape(text, quote=False)

    def code(self, text: str) -> str:
        return f"<code>{self.escape(text)}</code>"

    def bold(self, inner: str) -> str:
        return f"<b>{inner}</b>"

    def italic(self, inner: str) -> str:
        return f"<i>{inner}</i>"

    def strike(self, inner: str) -> str:
        return f"<s>{inner}</s>"

    def link(self, children: list[Node], url: str) -> str:
        label = self.inline(children) or self.escape(url)
        if not url.lower().startswith(("http://", "https://", "tg://", "mailto:")):
            return label
        return f'<a href="{html.escape(url, quote=True)}">{label}</a>'

    def heading(self, level: int, nodes: list[Node]) -> str:
        return f"<b>{self.escape(to_plain_inline(nodes))}</b>"

    def quote_block(self, lines: list[Line]) -> list[str]:
        body = "\n".join(self.inline(q.nodes) for q in lines)
        return [f"<blockquote>{body}</blockquote>"]

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        body = self.escape("\n".join(lines))
        if lang:
            return [f'<pre><code class="language-{lang}">{body}</code></pre>']
        return [f"<pre>{body}</pre>"]


class _Slack(_Writer):
    """Slack ``mrkdwn``: ``&``, ``<`` and ``>`` are control characters."""

    def escape(self, text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def code(self, text: str) -> str:
        return f"`{self.escape(text)}`"

    def bold(self, inner: str) -> str:
        return f"*{inner}*"

    def italic(self, inner: str) -> str:
        return f"_{inner}_"

    def strike(self, inner: str) -> str:
        return f"~{inner}~"

    def link(self, children: list[Node], url: str) -> str:
        label = self.escape(to_plain_inline(children)).replace("|", "¦")
        target = url.replace("&", "&amp;").replace("|", "%7C")
        target = target.replace(">", "%3E").replace("<", "%3C")
        return f"<{target}>" if label in ("", url) else f"<{target}|{label}>"

    def heading(self, level: int, nodes: list[Node]) -> str:
        return f"*{self.escape(to_plain_inline(nodes))}*"

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        return ["```", *(self.escape(t) for t in lines), "```"]


class _Discord(_Markdown):
    """Discord markdown: headings up to ###, masked links, quotes, lists, code; no <font>."""

    bullet = "-"
    rule = "———"
    raw = _Writer.raw  # no <font> colours

    def link(self, children: list[Node], url: str) -> str:
        label = self.inline(children)
        return f"<{url}>" if to_plain_inline(children) in ("", url) else f"[{label}](<{url}>)"

    def heading(self, level: int, nodes: list[Node]) -> str:
        if level > 3:
            return f"**{to_plain_inline(nodes)}**"
        return super().heading(level, nodes)

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        return _fenced(lang, lines)


_WRITERS: dict[str, _Writer] = {
    "wecom": _WeCom(),
    "dingtalk": _DingTalk(),
    "lark_md": _LarkMd(),
    "telegram": _Telegram(),
    "slack": _Slack(),
    "discord": _Discord(),
    "plain": _Writer(),
}
DIALECTS = tuple(_WRITERS)


@functools.lru_cache(maxsize=64)
def render(source: str, dialect: str) -> str:
    """``source`` Markdown written in ``dialect`` (one of ``DIALECTS``).

    Cached: a fan-out renders the same message for every group of a channel type.
    """
    try:
        writer = _WRITERS[dialect]
    except KeyError:
        raise ValueError(f"unknown dialect {dialect!r} (known: {', '.join(DIALECTS)})") from None
    return writer.write(source)


def to_wecom(source: str) -> str:
    return render(source, "wecom")


def to_dingtalk(source: str) -> str:
    return render(source, "dingtalk")


def to_lark_md(source: str) -> str:
    return render(source, "lark_md")


def to_telegram_html(source: str) -> str:
    return render(source, "telegram")


def to_slack(source: str) -> str:
    return render(source, "slack")


def to_discord(source: str) -> str:
    return render(source, "discord")


def strip_markdown(source: str) -> str:
    """Plain text: markup removed, links as ``text (url)``, lists with bullets."""
    return render(source, "plain")


def to_plain_inline(nodes: list[Node]) -> str:
    """The visible text of inline nodes, without any markup."""
    out = []
    for n in nodes:
        if n.kind in ("text", "code"):
            out.append(n.text)
        elif n.kind != "raw":
            out.append(to_plain_inline(n.children))
    return "".join(out)


# -- measuring ----------------------------------------------------------------

_TAG = re.compile(r"<[^<>]*>")


def telegram_visible_text(html_text: str) -> str:
    """The text Telegram shows for an HTML message: tags removed, entities decoded."""
    return html.unescape(_TAG.sub("", html_text))


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how Telegram and Discord count (safe upper bound)."""
    return len(text.encode("utf-16-le")) // 2


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))
