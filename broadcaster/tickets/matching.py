"""Which category a resident's message is about, and whether it is urgent.

A message matches a category when it contains one of the category's keywords,
or one of its urgent keywords (then the ticket is urgent). Urgent keywords are
looked at first, in every category, so "楼道里有燃气味" is urgent even if
another category's ordinary keyword also appears; otherwise the first category
in file order wins. Text and keywords are compared after NFKC folding and
lower-casing (full-width letters and digits match their ASCII forms).

Plain containment, which Chinese needs no segmentation for: every keyword is a
phrase staff chose, and a phrase inside a message is that phrase.
"""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.config.tickets import Category, TicketsConfig, normalize


@dataclass(frozen=True)
class Match:
    category: Category
    urgent: bool
    keyword: str


def match(config: TicketsConfig, text: str) -> Match | None:
    folded = normalize(text or "")
    if not folded.strip():
        return None
    for category in config.categories:
        for kw in category.urgent_keywords:
            if kw in folded:
                return Match(category, True, kw)
    for category in config.categories:
        for kw in category.keywords:
            if kw in folded:
                return Match(category, False, kw)
    return None


def is_urgent(category: Category, text: str) -> bool:
    folded = normalize(text or "")
    return any(kw in folded for kw in category.urgent_keywords)
