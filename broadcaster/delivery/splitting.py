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
can be avoided). A cut always falls between two grapheme clusters (Unicode
UAX #29, the ``regex`` module's ``\\X``): a flag such as 🇨🇳, an emoji joined
with ZWJ or a letter with its combining marks is never cut apart. Fenced code
blocks stay whole when they fit; when they do not, each piece is fenced
again. A message that fits is returned as is; otherwise every part starts with
its number, ``(1/3)``, and room for that number is reserved while measuring.

Cost: each part is found by galloping then bisecting over the lines (or the
grapheme clusters) it can take, so a part costs O(log n) measurements of text
no longer than about twice the part: splitting is linear in the source (times
a log), not quadratic. ``SplitCache`` keeps the pieces of each distinct
(layout, source) so that a message to 2,000 groups is split once.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar

Measure = Callable[[str], int]

_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")
_QUOTE_PREFIX = re.compile(r"^\s{0,3}(?:>\s?)+")
_SPANS = re.compile(r"\[(?:[^\[\]\\]|\\.)*\]\([^\s()]*\)|`[^`]+`|\*\*[^*]+\*\*|<[^<>]*>")
_SOFT_BREAK = set(" \t。，、；：！？）》」』】,.;:!?)")


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
    size = measure(source)
    if size <= limit:
        return [source]
    return _numbered(source, measure, limit, size)


def _numbered(source: str, measure: Measure, limit: int, size: int) -> list[str]:
    """Numbered parts; room for the number's digits is guessed from ``size``, the whole's."""
    digits = len(str(-(-size // limit)))
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


class SplitCache:
    """The pieces of each distinct (layout, source), computed once and shared by threads.

    ``pieces(key, compute)`` returns ``compute()``'s list for ``key``; when
    several threads ask for the same key at once, one computes and the others
    wait for its answer. Held for one dispatch pass, so it never outgrows the
    messages of that pass.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[Hashable, list[str]] = {}
        self._busy: dict[Hashable, threading.Lock] = {}

    def pieces(self, key: Hashable, compute: Callable[[], list[str]]) -> list[str]:
        with self._lock:
            if key in self._done:
                return self._done[key]
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:
            with self._lock:
                if key in self._done:
                    return self._done[key]
            found = compute()
            with self._lock:
                self._done[key] = found
                self._busy.pop(key, None)
            return found


def render_parts(
    source: str,
    build: Callable[[str, bool], P],
    limit: int,
    *,
    mention_all: bool = False,
    cache: SplitCache | None = None,
    layout: Hashable = None,
) -> list[P]:
    """Split ``source`` and build one part per piece with ``build(markdown, mention)``.

    ``build`` returns an object with a ``size`` (a channel's ``Part``). Sizes are
    measured as if every part carried the mention; only the first one does. A
    message that fits (the usual case) is built once.

    With ``cache``, the pieces are computed once per (``layout``, source,
    mention): ``layout`` names whatever besides the text decides a part's size
    (dialect, limit, the channel's fixed additions). Parts built from cached
    pieces are checked against ``limit``; if one is over (a layout that left
    something out), the source is split again for this caller alone.
    """
    def split(whole: P) -> list[str]:
        if whole.size <= limit:
            return [source]
        return _numbered(source, lambda md: build(md, mention_all).size, limit, whole.size)

    if cache is None:
        whole = build(source, mention_all)
        if whole.size <= limit:
            return [whole]
        pieces = split(whole)
    else:
        key = (layout, limit, mention_all, source)
        pieces = cache.pieces(key, lambda: split(build(source, mention_all)))
    parts = [build(piece, mention_all and i == 0) for i, piece in enumerate(pieces)]
    if cache is not None and any(p.size > limit for p in parts):
        return render_parts(source, build, limit, mention_all=mention_all)
    return parts


# -- packing -------------------------------------------------------------------


def _pack(source: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy packing of paragraphs, then lines, then grapheme clusters."""
    return _greedy(_blocks(source), "\n\n", fits, _split_block) or [""]


def _longest(total: int, fits: Callable[[int], bool]) -> int:
    """Largest n in 0..total with ``fits(n)`` (true up to some n, false after; n = 0 fits).

    Gallops up (1, 2, 4, ...) until a probe fails, then bisects: O(log n)
    probes, none more than twice the answer (plus one step), so the cost
    follows the size of the part found, not the length of what is left.
    """
    lo, hi = 0, total + 1
    n = min(1, total)
    while n and n < hi:
        if not fits(n):
            hi = n
            break
        lo = n
        if n == total:
            return total
        n = min(2 * n, total)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _greedy(
    items: Sequence[str],
    sep: str,
    fits: Callable[[str], bool],
    split: Callable[[str, Callable[[str], bool]], list[str]],
) -> list[str]:
    """Join ``items`` with ``sep`` into as few pieces as ``fits``; an item too big
    on its own is cut by ``split(item, fits)``, and its last cut piece may take
    the items after it."""
    parts: list[str] = []
    head: list[str] = []     # the piece being filled: [] or [last cut piece of a split item]
    i = 0
    while i < len(items):
        def join(n: int, start: int = i, lead: tuple[str, ...] = tuple(head)) -> str:
            return sep.join([*lead, *items[start:start + n]])

        n = _longest(len(items) - i, lambda n, j=join: fits(j(n)))
        if n:
            piece = join(n)
            i += n
            if i < len(items):
                parts.append(piece)
                head = []
            else:
                head = [piece]
            continue
        if head:
            parts.append(head[0])
            head = []
            continue
        *done, last = split(items[i], fits)
        parts.extend(done)
        head = [last]
        i += 1
    parts.extend(head)
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


def grapheme_starts(text: str) -> list[int]:
    """Offsets where a grapheme cluster of ``text`` starts, then ``len(text)``: the
    only places a cut may fall."""
    return [m.start() for m in _grapheme().finditer(text)] + [len(text)]


@functools.cache
def _grapheme():
    """The ``\\X`` pattern, compiled on first use (start-up time: a pass that splits
    nothing does not load the ``regex`` module)."""
    import regex  # start-up time: only when a message is split

    return regex.compile(r"\X")


def _split_line(line: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut one over-long line between grapheme clusters; quote markers are carried
    to each continuation."""
    if not line:  # called only for what does not fit: not even an empty line does
        raise MessageTooLarge("the limit leaves no room for any text")
    m = _QUOTE_PREFIX.match(line)
    carry = m.group(0) if m else ""
    bounds = grapheme_starts(line)
    pieces: list[str] = []
    prefix, pos = "", 0
    while pos < len(line):
        first = bisect.bisect_left(bounds, pos)  # ``pos`` is always a cluster start
        left = len(bounds) - 1 - first
        n = _longest(left, lambda n, p=prefix, s=pos, f=first: fits(p + line[s:bounds[f + n]]))
        if n == 0:
            raise MessageTooLarge("the limit leaves no room for any text")
        if n == left:
            pieces.append(prefix + line[pos:])
            break
        cut = _good_cut(line, pos, bounds[first + n], bounds)
        pieces.append(prefix + line[pos:cut].rstrip())
        pos = cut
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        prefix = carry
    return pieces


def _good_cut(text: str, start: int, k: int, bounds: list[int]) -> int:
    """Move a cut at ``k`` (a cluster start after ``start``) back to a friendlier
    place in the second half of the piece, if there is one; always a cluster start."""
    floor = start + max(1, (k - start) // 2)
    # not inside a link, inline code, bold run or tag
    for span in _SPANS.finditer(text, start):
        if span.start() >= k:
            break
        if span.end() > k:
            if span.start() >= floor:
                k = _cluster_at_or_before(span.start(), bounds, floor, k)
            break
    # at a space or after punctuation
    for pos in range(k, floor - 1, -1):
        if pos < len(text) and text[pos - 1] in _SOFT_BREAK:
            return _cluster_at_or_before(pos, bounds, floor, k)
    return k


def _cluster_at_or_before(pos: int, bounds: list[int], floor: int, fallback: int) -> int:
    """The last cluster start at or before ``pos``, if not below ``floor``; else ``fallback``."""
    at = bounds[bisect.bisect_right(bounds, pos) - 1]
    return at if at >= floor else fallback
