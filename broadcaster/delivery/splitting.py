"""Split one Markdown source into numbered parts that each fit a platform's limit.

The size that matters is the *rendered* part as the platform counts it (UTF-8
bytes of WeCom content, visible characters of a Telegram message, bytes of a
whole DingTalk JSON body...), so the caller passes ``measure``: Markdown in,
size out. Splitting works on the source, which keeps every part well-formed in
every dialect: a cut never falls inside a UTF-8 sequence, an HTML tag or an
entity, because those only appear when a whole part is rendered.

Cuts are tried at paragraph (blank-line) boundaries first, then at line
boundaries, then inside a line at a space or punctuation, and only as a last
resort between two characters (never inside a link or inline code when that
can be avoided, never between a character and its combining mark). Fenced
code blocks stay whole when they fit; when they do not, each piece is fenced
again. A message that fits is returned as is; otherwise every part starts with
its number, ``(1/3)``, and room for that number is reserved while measuring.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

Measure = Callable[[str], int]

_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")
_QUOTE_PREFIX = re.compile(r"^\s{0,3}(?:>\s?)+")
_SPANS = re.compile(r"\[(?:[^\[\]\\]|\\.)*\]\([^\s()]*\)|`[^`]+`|\*\*[^*]+\*\*|<[^<>]*>")
_SOFT_BREAK = set(" \t。，、；：！？）》」』】,.;:!?)")
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


class MessageTooLarge(ValueError):
    """Not even one character fits: the limit is smaller than the fixed overhead."""


def label(index: int, total: int) -> str:
    """The number a part starts with, on its own line."""
    return f"({index}/{total})"


_LABEL = re.compile(r"^\((\d+)/(\d+)\)\n")


def parse_label(part: str) -> tuple[int, int, str]:
    """(index, total, text without its number) of a part from ``split_message``."""
    m = _LABEL.match(part)
    if not m:
        return 1, 1, part
    return int(m.group(1)), int(m.group(2)), part[m.end():]


def numbered_title(title: str, part: str) -> str:
    """``title`` numbered like ``part`` when the message has several parts."""
    index, total, _ = parse_label(part)
    return title if total == 1 else f"{title} {label(index, total)}"


def split_message(source: str, measure: Measure, limit: int) -> list[str]:
    """``source`` as one part if ``measure(source) <= limit``, else numbered parts that fit."""
    if measure(source) <= limit:
        return [source]
    digits = 1
    while True:
        widest = label(int("9" * digits), int("9" * digits)) + "\n"
        chunks = _pack(source, lambda text, w=widest: measure(w + text) <= limit)
        if len(str(len(chunks))) <= digits:
            total = len(chunks)
            return [f"{label(i, total)}\n{chunk}" for i, chunk in enumerate(chunks, 1)]
        digits = len(str(len(chunks)))


class _Sized(Protocol):
    size: int


P = TypeVar("P", bound=_Sized)


def render_parts(
    source: str,
    build: Callable[[str, bool], P],
    limit: int,
    *,
    mention_all: bool = False,
) -> list[P]:
    """Split ``source`` and build one part per piece with ``build(markdown, mention)``.

    ``build`` returns an object with a ``size`` (a channel's ``Part``). Sizes are
    measured as if every part carried the mention; only the first one does. A
    message that fits (the usual case) is built once.
    """
    whole = build(source, mention_all)
    if whole.size <= limit:
        return [whole]
    pieces = split_message(source, lambda md: build(md, mention_all).size, limit)
    return [build(piece, mention_all and i == 0) for i, piece in enumerate(pieces)]


# -- packing -------------------------------------------------------------------


def _pack(source: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy packing of paragraphs, then lines, then characters."""
    return _greedy(_blocks(source), "\n\n", fits, _split_block) or [""]


def _greedy(
    items: Sequence[str],
    sep: str,
    fits: Callable[[str], bool],
    split: Callable[[str, Callable[[str], bool]], list[str]],
) -> list[str]:
    """Join ``items`` with ``sep`` into as few pieces as ``fits``; an item too big
    on its own is cut by ``split(item, fits)``."""
    parts: list[str] = []
    current: str | None = None
    for item in items:
        candidate = item if current is None else f"{current}{sep}{item}"
        if fits(candidate):
            current = candidate
            continue
        if current is not None:
            parts.append(current)
        if fits(item):
            current = item
            continue
        *done, current = split(item, fits)
        parts.extend(done)
    if current is not None:
        parts.append(current)
    return parts


def _blocks(source: str) -> list[str]:
    """Paragraphs separated by blank lines; a fenced code block is never cut here."""
    blocks: list[str] = []
    lines: list[str] = []
    fence = ""
    for line in source.replace("\r\n", "\n").split("\n"):
        m = _FENCE.match(line)
        if fence:
            lines.append(line)
            if m and m.group(1).startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
            continue
        if m:
            fence = m.group(1)
        if not line.strip() and not fence:
            if lines:
                blocks.append("\n".join(lines))
                lines = []
            continue
        lines.append(line)
    if lines:
        blocks.append("\n".join(lines))
    return blocks


def _split_block(block: str, fits: Callable[[str], bool]) -> list[str]:
    lines = block.split("\n")
    m = _FENCE.match(lines[0])
    if m and len(lines) > 1:
        opening = lines[0]
        closing = lines[-1] if _FENCE.match(lines[-1]) else m.group(1)
        inner = lines[1:-1] if _FENCE.match(lines[-1]) else lines[1:]
        return _pack_lines(inner, lambda text: fits(f"{opening}\n{text}\n{closing}"),
                           wrap=lambda text: f"{opening}\n{text}\n{closing}")
    return _pack_lines(lines, fits, wrap=lambda text: text)


def _pack_lines(
    lines: Sequence[str], fits: Callable[[str], bool], wrap: Callable[[str], str]
) -> list[str]:
    return [wrap(p) for p in _greedy(lines, "\n", fits, _split_line)] or [wrap("")]


def _split_line(line: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut one over-long line; quote markers are carried to each continuation."""
    if not line:  # called only for what does not fit: not even an empty line does
        raise MessageTooLarge("the limit leaves no room for any text")
    m = _QUOTE_PREFIX.match(line)
    carry = m.group(0) if m else ""
    pieces: list[str] = []
    prefix, rest = "", line
    while rest:
        if fits(prefix + rest):
            pieces.append(prefix + rest)
            break
        k = _longest_fitting(rest, lambda n, p=prefix, r=rest: fits(p + r[:n]))
        if k == 0:
            raise MessageTooLarge("the limit leaves no room for any text")
        k = _good_cut(rest, k)
        pieces.append(prefix + rest[:k].rstrip())
        rest = rest[k:].lstrip(" \t")
        prefix = carry
    return pieces


def _longest_fitting(text: str, fits_prefix: Callable[[int], bool]) -> int:
    """Largest n with ``fits_prefix(n)`` (binary search; sizes grow with n)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits_prefix(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _good_cut(text: str, k: int) -> int:
    """Move a cut at ``k`` back to a friendlier place in the second half, if there is one."""
    floor = max(1, k // 2)
    # not inside a link, inline code, bold run or tag
    for span in _SPANS.finditer(text):
        if span.start() < k < span.end():
            if span.start() >= floor:
                k = span.start()
            break
    # at a space or after punctuation
    for pos in range(k, floor - 1, -1):
        if pos < len(text) and text[pos - 1] in _SOFT_BREAK:
            k = pos
            break
    # never between a character and what modifies it
    while k > 1 and k < len(text) and (
        unicodedata.combining(text[k]) or text[k] in _JOINERS or text[k - 1] in _JOINERS
        or 0xDC00 <= ord(text[k]) <= 0xDFFF
    ):
        k -= 1
    return k
