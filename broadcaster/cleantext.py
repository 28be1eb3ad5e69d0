"""Text from outside, made safe to keep and to show: one function, used wherever text enters.

``clean_text(text)`` removes what no resident message needs and what can
disguise one: C0 and C1 control characters (NUL, BEL, ESC, DEL...) and the
bidirectional embedding, override and isolate characters (U+202A–U+202E,
U+2066–U+2069, "Trojan Source"). Newlines and tabs stay; a carriage return
becomes a newline. Zero-width joiners stay (emoji sequences need them).

It is called on staff text (``announce`` TEXT, ``--file``, ``--var``,
member names), on everything a source reads (feeds, calendars, weather, via
``sources.safe_text``), on every rendered template, and by the Markdown
writers before a message reaches a platform. Resident messages go through it
as they arrive.

``check_utf8(values)`` refuses strings that hold undecodable bytes (Python
keeps non-UTF-8 command-line bytes as lone surrogates): the CLI reports them
as bad input instead of failing later while encoding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# C0 controls except \t (09) and \n (0a); DEL; C1 controls; bidi embeddings,
# overrides (202a-202e) and isolates (2066-2069).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` without control and bidi-override characters; newlines and tabs kept."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub("", text)


def check_utf8(values: Iterable[str]) -> int | None:
    """The index of the first value holding undecodable bytes, or None when all are text."""
    for i, value in enumerate(values):
        if _SURROGATE.search(value):
            return i
    return None
