"""Ticket numbers residents can read out on the phone: ``GL-1123-0042``.

``<prefix>-<MMDD>-<sequence>``: the prefix is ``tickets.yaml``'s ``prefix``, else
the initials of the group's ``district:`` tag read as pinyin (``district:gulou``
-> ``GL``), else ``T``; MMDD is the day it was opened; the sequence counts the
tickets of that prefix and MMDD and is never reset, so a number stays unique
from one year to the next (the next 23 November continues after 0042).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

TICKET_ID = re.compile(r"^([A-Z][A-Z0-9]{0,5})-(\d{2})(\d{2})-(\d{4,})$")
DEFAULT_PREFIX = "T"
MAX_INITIALS = 4

_INITIAL = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q",
            "x", "r", "z", "c", "s", "y", "w", "")
_FINAL = ("iang", "iong", "uang", "ang", "eng", "ing", "ong", "ian", "iao", "uai", "uan",
          "ai", "ei", "ao", "ou", "an", "en", "er", "ia", "ie", "iu", "in", "ua", "uo", "ui",
          "un", "ue", "ve", "a", "o", "e", "i", "u", "v")
_SYLLABLE = re.compile(f"(?:{'|'.join(i for i in _INITIAL if i)})?(?:{'|'.join(_FINAL)})")


def format_id(prefix: str, day: date, seq: int) -> str:
    return f"{prefix}-{day:%m%d}-{seq:04d}"


def parse_id(text: str) -> tuple[str, int, int] | None:
    """``(prefix, month, day)`` of a ticket number (any letter case), or None."""
    m = TICKET_ID.match(text.strip().upper())
    if not m:
        return None
    month, day = int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return m.group(1), month, day


def normalize_id(text: str) -> str:
    return text.strip().upper()


def prefix_for(tags: tuple[str, ...], configured: str | None) -> str:
    """The prefix for a group with ``tags``."""
    if configured:
        return configured
    for tag in tags:
        if tag.startswith("district:"):
            initials = pinyin_initials(tag.split(":", 1)[1])
            if initials:
                return initials
    return DEFAULT_PREFIX


@lru_cache(maxsize=256)
def pinyin_initials(word: str) -> str:
    """``gulou`` -> ``GL``, ``qinhuai`` -> ``QH``: each syllable's first letter (at most 4).

    A word that is not pinyin gives the first letter of each of its parts.
    """
    parts = [p for p in re.split(r"[^a-z]+", word.lower()) if p]
    letters = ""
    for part in parts:
        syllables = _split(part)
        letters += "".join(s[0] for s in syllables) if syllables else part[0]
    return letters[:MAX_INITIALS].upper()


def _split(word: str) -> list[str] | None:
    """The fewest pinyin syllables that spell ``word`` (None if there are none)."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            if head is not None and _SYLLABLE.fullmatch(word[start:end]):
                candidate = [*head, word[start:end]]
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
    return best[len(word)]
