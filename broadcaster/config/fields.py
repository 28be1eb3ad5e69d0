"""Field types the config files share, each validated with one message wherever it is used."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

SLUG = re.compile(r"^[a-z0-9_-]+$")


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("may hold only lowercase letters, digits, - and _")
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


Slug = Annotated[str, AfterValidator(_slug)]     # an id: lowercase letters, digits, - and _
Name = Annotated[str, AfterValidator(_name)]     # a name people read: not blank, trimmed
