"""One Markdown source, rendered into each platform's dialect, outside text kept as data.

Editors and staff write one small Markdown (headings, **bold**, *italic*,
~~strike~~, `code`, [links](https://…), ``>`` quotes, ``-``/``1.`` lists,
fenced code, ``---`` rules, ``<font color>``). It is parsed once with
markdown-it-py (CommonMark; strikethrough on; setext headings, indented code
and HTML blocks off, since chat text is line-oriented) and written back out per
dialect, keeping the source's lines and blank lines:

==========  ==========================================================
``wecom``     WeCom markdown: headings, bold, links, quotes, `code`,
              ``<font color>``; lists and code blocks as plain lines
``dingtalk``  DingTalk markdown: CommonMark subset; line breaks made hard
``lark_md``   Feishu card text: bold/italic/strike/links, no headings
``telegram``  Telegram HTML: escaped text in b/i/s/a/code/pre/blockquote
``slack``     Slack mrkdwn: ``*bold*``, ``_italic_``, ``<url|text>``
``discord``   Discord markdown (``#``–``###`` headings, masked links)
``plain``     plain text (WeCom ``text`` messages, titles, previews)
==========  ==========================================================

Only the source's own markup becomes markup. Every piece of *text* (what the
parser read as characters, escaped Markdown included) is written so that its
platform shows it as those characters and interprets nothing in it: no
mention (``<at id=all>``, ``<@U1>``, ``<!channel>``, ``@all``, ``@everyone``),
no link or image, no tag, no emphasis, no heading or quote at a line start.
WeCom, DingTalk and Feishu have no escape character, so there a look-alike
full-width character stands in (``＜ ＞ ［ ］ ＊ ｀ ～ ＠ ＃``): residents read the
same text and never see a backslash. Telegram gets HTML entities, Slack its
``&lt;`` escapes (plus look-alikes for its emphasis marks), Discord
backslashes (which its clients hide). Links keep only http(s) targets; any
other link, and an image, becomes its text (an image with an http(s) source a
link to it). ``<font>`` tags are kept where the dialect has them.

Rendering never fails and is linear in the source; every HTML the Telegram
writer emits is balanced and escaped, whatever the input, so a split part
never carries broken markup.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broadcaster.cleantext import clean_text

if TYPE_CHECKING:
    from markdown_it.tree import SyntaxTreeNode

MAX_NESTING = 50  # quotes and lists nested deeper than this are not parsed as such

# -- parsing ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt  # start-up time: loaded when first used

    md = MarkdownIt("commonmark", {"html": True, "maxNesting": MAX_NESTING})
    md.enable("strikethrough")
    md.disable(["lheading", "code", "html_block"])
    return md


@functools.lru_cache(maxsize=32)
def parse(source: str) -> SyntaxTreeNode:
    """The syntax tree of ``source`` (cached: one message is written in several dialects)."""
    from markdown_it.tree import SyntaxTreeNode  # start-up time: loaded when first used

    return SyntaxTreeNode(_parser().parse(source))


_WEB_LINK = re.compile(r"^https?://[^\s/?#]", re.IGNORECASE)
_FONT_TAG = re.compile(r"""<font(\s+color\s*=\s*("[\w#-]*"|'[\w#-]*'|[\w#-]+))?\s*>|</font\s*>""",
                       re.IGNORECASE)


def web_link(url: str) -> bool:
    """True for an http(s) URL with a host: the only links any dialect keeps."""
    return bool(_WEB_LINK.match(url))


# -- neutralising text ----------------------------------------------------------

_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "<>[]*`~_@#&|-+=.)"}
_ALWAYS = re.compile(r"[<>\[\]`]")
_DELIMITER = re.compile(r"[*~_]")
_MENTION = re.compile(r"(?<![0-9A-Za-z._%+-])@")           # @all, @所有人; not a@b.org
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")                # &lt; &#60;
_LINE_START = re.compile(r"^(\s*)(#|[-+=](?=[-+=\s]|$)|\d+[.)](?=\s|$))")


def _fullwidth(match: re.Match) -> str:
    return "".join(_FULLWIDTH.get(c, c) for c in match.group(0))


def _line_start_fullwidth(match: re.Match) -> str:
    marker = match.group(2)
    return match.group(1) + marker[:-1] + _FULLWIDTH.get(marker[-1], marker[-1])


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _delimiters(text: str, replace) -> str:
    """``*``, ``~`` and ``_`` that could open or close emphasis, each through ``replace``.

    One with a space on both sides cannot (``6°C ~ 14°C``, ``5 * 3``), nor an
    underscore inside a word (``snake_case``); at either end of the text it may.
    """
    def one(m: re.Match) -> str:
        i, c = m.start(), m.group(0)
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if before.isspace() and after.isspace():
            return c
        if c == "_" and _ascii_alnum(before) and _ascii_alnum(after):
            return c
        return replace(c)

    return _DELIMITER.sub(one, text)


def lookalike_text(text: str) -> str:
    """Text for a dialect without escapes: every mark it could read as markup made full-width."""
    text = _ALWAYS.sub(_fullwidth, text)
    if "*" in text or "~" in text or "_" in text:
        text = _delimiters(text, _FULLWIDTH.__getitem__)
    if "@" in text:
        text = _MENTION.sub("＠", text)
    if "&" in text:
        text = _ENTITY.sub("＆", text)
    return text


def _lookalike_line_start(text: str) -> str:
    return _LINE_START.sub(_line_start_fullwidth, text, count=1)


_DISCORD_SPECIAL = re.compile(r"[\\`|<>\[\]]")
_DISCORD_LINE_START = re.compile(r"^(\s*(?:#|[-+](?=\s)|\d+(?=[.)]\s)))")
_CODE_MARKS = re.compile(r"[<>`]")


def _discord_text(text: str) -> str:
    text = _DISCORD_SPECIAL.sub(r"\\\g<0>", text)
    if "*" in text or "~" in text or "_" in text:
        text = _delimiters(text, lambda c: "\\" + c)
    if "@" in text:
        text = _MENTION.sub(r"\\@", text)
    return text


def _code_lookalike(text: str) -> str:
    """Code span text for a dialect without escapes: only what could end it or mention."""
    text = _CODE_MARKS.sub(_fullwidth, text)
    return _MENTION.sub("＠", text) if "@" in text else text


def _slack_text(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("`", "｀")
    if "*" in text or "~" in text or "_" in text:
        text = _delimiters(text, _FULLWIDTH.__getitem__)
    if "@" in text:
        text = _MENTION.sub("＠", text)
    return text


def _fence_for(lines: list[str]) -> str:
    """A backtick fence longer than any backtick run inside the block."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


# -- writing --------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    quote: int = 0  # blockquote depth
    list: int = 0   # list nesting, for the indentation of nested items


Lines = list[tuple[int, str]]  # (quote depth, text) per output line


class _Writer:
    """Base writer: plain text. Subclasses override the pieces their dialect marks up."""

    bullet = "•"
    rule = "————————"

    # -- text -----------------------------------------------------------------
    def text(self, text: str) -> str:
        """``text`` as this dialect shows it literally."""
        return text

    def line_start(self, text: str) -> str:
        """Text that opens a line, where a marker (``#``, ``-``, ``1.``) would mean something."""
        return text

    # -- inline ---------------------------------------------------------------
    def inline(self, nodes: list[SyntaxTreeNode], line_start: bool = False) -> str:
        out: list[str] = []
        at_start = line_start
        for n in nodes:
            if n.type == "text":
                if not n.content:
                    continue
                piece = self.text(n.content)
                out.append(self.line_start(piece) if at_start else piece)
            elif n.type in ("softbreak", "hardbreak"):
                out.append("\n")
                at_start = True
                continue
            else:
                out.append(self.node(n))
            at_start = False
        return "".join(out)

    def node(self, n: SyntaxTreeNode) -> str:
        kind = n.type
        if kind == "code_inline":
            return self.code(n.content)
        if kind == "html_inline":
            return self.raw(n.content) if _FONT_TAG.fullmatch(n.content) else self.text(n.content)
        if kind in ("link", "image"):
            url = str(n.attrs.get("href") or n.attrs.get("src") or "")
            return self.link(n.children, url) if web_link(url) else self.inline(n.children)
        children = n.children
        if kind == "em" and _only_child(n, "strong"):  # ***x***: bold outside, italic inside
            return self.styled("bold", self.styled("italic", self.inline(_only_child(n).children)))
        if kind in ("strong", "em", "s"):
            return self.styled({"strong": "bold", "em": "italic", "s": "strike"}[kind],
                               self.inline(children))
        return self.inline(children)

    def styled(self, style: str, inner: str) -> str:
        return getattr(self, style)(inner) if inner else ""

    def raw(self, tag: str) -> str:
        return ""  # <font> colours only survive where the dialect has them

    def code(self, text: str) -> str:
        return self.text(text)

    def bold(self, inner: str) -> str:
        return inner

    def italic(self, inner: str) -> str:
        return inner

    def strike(self, inner: str) -> str:
        return inner

    def link(self, children: list[SyntaxTreeNode], url: str) -> str:
        label = self.inline(children)
        return url if to_plain_inline(children) in (url, "") else f"{label} ({url})"

    # -- blocks ---------------------------------------------------------------
    def heading(self, level: int, children: list[SyntaxTreeNode]) -> str:
        return self.inline(children)

    def quote(self, depth: int, text: str) -> str:
        return "> " * depth + text

    def quote_block(self, lines: Lines) -> list[str]:
        return [self.quote(depth, text).rstrip() if not text else self.quote(depth, text)
                for depth, text in lines]

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        return [self.line_start(self.text(line)) for line in lines]

    def write(self, source: str) -> str:
        lines = self.blocks(parse(clean_text(source)).children, _Ctx())
        out: list[str] = []
        i = 0
        while i < len(lines):
            if lines[i][0] == 0:
                out.append(lines[i][1])
                i += 1
                continue
            j = i
            while j < len(lines) and lines[j][0] > 0:
                j += 1
            out.extend(self.quote_block(lines[i:j]))
            i = j
        return self.finish(out)

    def blocks(self, nodes: list[SyntaxTreeNode], ctx: _Ctx) -> Lines:
        """Output lines of sibling blocks; a blank line where the source had one."""
        out: Lines = []
        previous_end: int | None = None
        for n in nodes:
            start = n.map[0] if n.map else None
            if previous_end is not None and start is not None and start > previous_end:
                out.append((ctx.quote, ""))
            out.extend(self.block(n, ctx))
            previous_end = _content_end(n)
        return out

    def block(self, n: SyntaxTreeNode, ctx: _Ctx) -> Lines:
        kind = n.type
        if kind == "paragraph":
            return self._lines(ctx, self.inline(_inline_children(n), line_start=True))
        if kind == "heading":
            return [(ctx.quote, self.heading(int(n.tag[1]), _inline_children(n)))]
        if kind == "hr":
            return [(ctx.quote, self.rule)]
        if kind == "fence":
            body = n.content[:-1] if n.content.endswith("\n") else n.content
            lang = (n.info or "").split()[0] if (n.info or "").strip() else ""
            lang = lang if re.fullmatch(r"[\w+-]{1,32}", lang) else ""
            return [(ctx.quote, line) for line in self.code_block(lang, body.split("\n"))]
        if kind == "blockquote":
            return self.blocks(n.children, _Ctx(ctx.quote + 1, ctx.list))
        if kind in ("bullet_list", "ordered_list"):
            return self.list_block(n, ctx)
        return self.blocks(n.children, ctx)

    def list_block(self, n: SyntaxTreeNode, ctx: _Ctx) -> Lines:
        out: Lines = []
        previous_end: int | None = None
        indent = "  " * ctx.list
        for item in n.children:
            if previous_end is not None and item.map and item.map[0] > previous_end:
                out.append((ctx.quote, ""))
            previous_end = _content_end(item)
            marker = self.bullet if n.type == "bullet_list" else f"{item.info}{item.markup}"
            lines = self.blocks(item.children, _Ctx(ctx.quote, ctx.list + 1))
            if not lines:
                out.append((ctx.quote, indent + marker))
                continue
            depth, first = lines[0]
            out.append((depth, f"{indent}{marker} {first}"))
            out.extend(lines[1:])
        return out

    @staticmethod
    def _lines(ctx: _Ctx, text: str) -> Lines:
        return [(ctx.quote, line) for line in text.split("\n")]

    def finish(self, out: list[str]) -> str:
        return _squeeze_blank_lines("\n".join(out)).strip("\n")


def _inline_children(n: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    return n.children[0].children if n.children else []


def _only_child(n: SyntaxTreeNode, kind: str | None = None):
    kids = [c for c in n.children if not (c.type == "text" and not c.content)]
    if len(kids) == 1 and (kind is None or kids[0].type == kind):
        return kids[0]
    return None


def _content_end(n: SyntaxTreeNode) -> int | None:
    """The line after a block's last non-blank line (a list item's map runs on to the next)."""
    while n.children and n.type in ("list_item", "bullet_list", "ordered_list", "blockquote"):
        n = n.children[-1]
    return n.map[1] if n.map else None


def _squeeze_blank_lines(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text)


def _md_url(url: str) -> str:
    """A link target that cannot end a Markdown link early: brackets and spaces encoded."""
    return (url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
            .replace("<", "%3C").replace(">", "%3E").replace("[", "%5B").replace("]", "%5D"))


class _Markdown(_Writer):
    """The Markdown-flavoured dialects' common ground; subclasses drop what theirs lacks.

    ``**bold**``, ``*italic*``, ``~~strike~~``, `` `code` ``, ``[label](url)``,
    ``#`` headings, one quote level, ``<font>`` tags kept; text in look-alikes.
    """

    def text(self, text: str) -> str:
        return lookalike_text(text)

    def line_start(self, text: str) -> str:
        return _lookalike_line_start(text)

    def raw(self, tag: str) -> str:
        return tag

    def code(self, text: str) -> str:
        return f"`{_code_lookalike(text)}`"

    def bold(self, inner: str) -> str:
        return f"**{inner}**"

    def italic(self, inner: str) -> str:
        return f"*{inner}*"

    def strike(self, inner: str) -> str:
        return f"~~{inner}~~"

    def link(self, children: list[SyntaxTreeNode], url: str) -> str:
        return f"[{self.inline(children) or self.text(url)}]({_md_url(url)})"

    def heading(self, level: int, children: list[SyntaxTreeNode]) -> str:
        return "#" * level + " " + self.inline(children)

    def quote(self, depth: int, text: str) -> str:
        return "> " + text


def _fenced(lang: str, lines: list[str]) -> list[str]:
    fence = _fence_for(lines)
    return [fence + lang, *lines, fence]


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
        in_code = False
        for k, text in enumerate(out):
            nxt = out[k + 1] if k + 1 < len(out) else ""
            if text.startswith("```"):
                in_code = not in_code
            if text == self.rule and not in_code:
                joined.extend(["", text, ""])
                continue
            if not in_code and text.strip() and nxt.strip() and nxt != self.rule \
                    and not text.startswith(("```", "#")) and not nxt.startswith("```"):
                text += "  "
            joined.append(text)
        return super().finish(joined)


class _LarkMd(_Markdown):
    """Feishu ``lark_md``: bold, italic, strike, links, <font>; no headings, quotes or code."""

    def code(self, text: str) -> str:
        return self.text(text)  # inline code is shown as plain text

    def heading(self, level: int, children: list[SyntaxTreeNode]) -> str:
        return f"**{self.text(to_plain_inline(children))}**"

    def quote(self, depth: int, text: str) -> str:
        return "▎" * depth + text


class _Telegram(_Writer):
    """Telegram ``parse_mode=HTML``: every text escaped, every tag closed."""

    rule = "──────────"

    def text(self, text: str) -> str:
        return html.escape(text, quote=False)

    def code(self, text: str) -> str:
        return f"<code>{self.text(text)}</code>"

    def bold(self, inner: str) -> str:
        return f"<b>{inner}</b>"

    def italic(self, inner: str) -> str:
        return f"<i>{inner}</i>"

    def strike(self, inner: str) -> str:
        return f"<s>{inner}</s>"

    def link(self, children: list[SyntaxTreeNode], url: str) -> str:
        label = self.inline(children) or self.text(url)
        return f'<a href="{html.escape(url, quote=True)}">{label}</a>'

    def heading(self, level: int, children: list[SyntaxTreeNode]) -> str:
        return f"<b>{self.text(to_plain_inline(children))}</b>"

    def quote_block(self, lines: Lines) -> list[str]:
        body = "\n".join(text for _, text in lines).strip("\n")
        return [f"<blockquote>{body}</blockquote>"]

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        body = self.text("\n".join(lines))
        if lang:
            return [f'<pre><code class="language-{lang}">{body}</code></pre>']
        return [f"<pre>{body}</pre>"]


class _Slack(_Writer):
    """Slack ``mrkdwn``: ``&``, ``<`` and ``>`` escaped; emphasis marks in look-alikes."""

    def text(self, text: str) -> str:
        return _slack_text(text)

    def code(self, text: str) -> str:
        return "`" + _slack_text(text).replace("`", "｀") + "`"

    def bold(self, inner: str) -> str:
        return f"*{inner}*"

    def italic(self, inner: str) -> str:
        return f"_{inner}_"

    def strike(self, inner: str) -> str:
        return f"~{inner}~"

    def link(self, children: list[SyntaxTreeNode], url: str) -> str:
        label = self.text(to_plain_inline(children)).replace("|", "¦")
        target = url.replace("&", "&amp;").replace("|", "%7C")
        target = target.replace(">", "%3E").replace("<", "%3C")
        return f"<{target}>" if to_plain_inline(children) in ("", url) else f"<{target}|{label}>"

    def heading(self, level: int, children: list[SyntaxTreeNode]) -> str:
        return f"*{self.text(to_plain_inline(children))}*"

    def code_block(self, lang: str, lines: list[str]) -> list[str]:
        return ["```", *(_slack_text(t).replace("```", "｀｀｀") for t in lines), "```"]


class _Discord(_Markdown):
    """Discord markdown: headings up to ###, masked links, quotes, lists, code; no <font>."""

    bullet = "-"
    rule = "———"
    raw = _Writer.raw  # no <font> colours

    def text(self, text: str) -> str:
        return _discord_text(text)

    def line_start(self, text: str) -> str:
        m = _DISCORD_LINE_START.match(text)
        if not m:
            return text
        head = m.group(1)
        cut = len(head) if head[-1:].isdigit() else len(head) - 1  # "1\." but "\#", "\-"
        return text[:cut] + "\\" + text[cut:]

    def code(self, text: str) -> str:
        ticks = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
        pad = " " if text.startswith("`") or text.endswith("`") else ""
        return f"{ticks}{pad}{text}{pad}{ticks}"

    def link(self, children: list[SyntaxTreeNode], url: str) -> str:
        label = self.inline(children)
        target = url.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
        return f"<{target}>" if to_plain_inline(children) in ("", url) else f"[{label}](<{target}>)"

    def heading(self, level: int, children: list[SyntaxTreeNode]) -> str:
        if level > 3:
            return f"**{self.text(to_plain_inline(children))}**"
        return super().heading(level, children)

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


@functools.lru_cache(maxsize=256)
def render(source: str, dialect: str) -> str:
    """``source`` Markdown written in ``dialect`` (one of ``DIALECTS``).

    Cached: a fan-out renders the same message (and the same parts) for every
    group of a channel type.
    """
    try:
        writer = _WRITERS[dialect]
    except KeyError:
        raise ValueError(f"unknown dialect {dialect!r} (known: {', '.join(DIALECTS)})") from None
    return writer.write(source)


def strip_markdown(source: str) -> str:
    """Plain text: markup removed, links as ``text (url)``, lists with bullets."""
    return render(source, "plain")


def to_plain_inline(nodes: list[SyntaxTreeNode]) -> str:
    """The visible text of inline nodes, without any markup."""
    out = []
    for n in nodes:
        if n.type in ("text", "code_inline"):
            out.append(n.content)
        elif n.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif n.type == "html_inline":
            out.append("" if _FONT_TAG.fullmatch(n.content) else n.content)
        else:
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


# -- titles ---------------------------------------------------------------------

_TITLE_PREFIX = re.compile(r"^\s*(#{1,6}\s+|>\s*|[-*+]\s+|\d+\.\s+)")
_TITLE_MARKS = re.compile(r"\\([^\w\s])|[*_`~]|</?[a-zA-Z][^>]*>|\[([^\]]*)\]\([^)]*\)")


def title_of(markdown: str, limit: int = 40) -> str:
    """A short plain title: the first non-empty line without Markdown marks."""
    for line in markdown.splitlines():
        # an escaped mark (\*) is a plain character; other marks go
        text = _TITLE_MARKS.sub(lambda m: m.group(1) or m.group(2) or "",
                                _TITLE_PREFIX.sub("", line)).strip()
        if text:
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return "通知"
