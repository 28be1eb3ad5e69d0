"""What every channel adapter declares and returns.

A channel module opens with its declarations (``type_name``, its pydantic
``Config`` with secret fields marked, its size ``limit`` and its ``rate_limits``,
the Markdown ``dialect`` it writes — one of ``broadcaster.delivery.markdown.DIALECTS``,
or None for the Markdown source as written — and a ``preview`` placeholder robot,
to show the channel where no group uses it), then implements two things:

- ``build_part(markdown, title, mention_all) -> Part``: one piece of the
  Markdown source in this platform's dialect and request shape, measured the
  way the platform counts. The shared ``render(markdown, title=...,
  mention_all=...) -> list[Part]`` splits the source into numbered parts that
  each fit ``limit`` and builds each with it;
- ``send(part) -> SendResult``: one HTTP request (or file append), classified
  (HTTP channels get ``send`` from ``channels.http.HttpChannel``).

Adapters never raise for a platform's answer: a failure belongs to one
delivery, so it comes back as a ``SendResult``. Dispatch decides what to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from broadcaster.delivery.markdown import render as render_dialect
from broadcaster.delivery.splitting import SplitCache, render_parts

Outcome = Literal["sent", "transient", "permanent"]


class ChannelConfig(BaseModel):
    """Base of every channel's config model. Secret fields are listed in ``secret_fields``."""

    # hide_input_in_errors: a validation error must not print a URL holding a key
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: str
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def secrets(self) -> list[str]:
        """Secret strings of this config, to be redacted everywhere (see broadcaster.redact)."""
        out = []
        for name in self.secret_fields:
            value = getattr(self, name, None)
            if value:
                out.append(str(value))
        return out


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` messages per ``per_seconds`` seconds, for one robot key."""

    count: int
    per_seconds: float


@dataclass(frozen=True)
class Limit:
    """A platform's size limit for one message: ``size`` in ``unit``."""

    size: int
    unit: Literal["bytes", "chars", "body_bytes"]


@dataclass
class Part:
    """One message as it will be sent: the request body (or text for ``file``)."""

    payload: Any
    text: str          # the platform-dialect text, for previews
    size: int          # measured the way the platform counts
    limit: int


@dataclass
class SendResult:
    outcome: Outcome
    reason: str = ""                 # the platform's own words when it refused
    http_status: int | None = None
    code: str | None = None          # platform error code (errcode, code, error_code...)
    retry_after: float | None = None  # seconds the platform asked us to wait
    latency_ms: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


class Channel:
    """Base class. Subclasses set the ClassVars and implement render/send."""

    type_name: ClassVar[str]
    Config: ClassVar[type[ChannelConfig]]
    limit: ClassVar[Limit]
    dialect: str | None = None               # the Markdown dialect its text is written in
    preview: ClassVar[dict[str, Any]] = {}   # a placeholder robot's config (without ``type``)

    def __init__(self, config: ChannelConfig, group_id: str, session=None, tz=None):
        self.config = config
        self.group_id = group_id
        self.session = session  # a broadcaster.net HttpClient (pooled per host), or None
        self.tz = tz  # the group's time zone (a ZoneInfo), for times an adapter writes

    # -- declarations -------------------------------------------------------
    def robot_key(self) -> str:
        """A stable, secret-free identity of the robot this group posts through."""
        ident = repr(sorted(self.config.model_dump().items()))
        return f"{self.type_name}:{hashlib.sha256(ident.encode()).hexdigest()[:16]}"

    def rate_limits(self) -> list[tuple[str, RateLimit]]:
        """(key, limit) pairs this send counts against; several robots may share a key."""
        return []

    # -- behaviour ----------------------------------------------------------
    def in_dialect(self, markdown: str) -> str:
        """``markdown`` written in this channel's dialect (unchanged without one)."""
        return markdown if self.dialect is None else render_dialect(markdown, self.dialect)

    def render(self, markdown: str, *, title: str, mention_all: bool = False,
               splits: SplitCache | None = None) -> list[Part]:
        """``markdown`` as the parts to send, each within ``limit``; only the first mentions.

        With ``splits`` (one per dispatch pass), the cut is computed once for
        every group whose channel has the same ``layout()`` and title.
        """
        return render_parts(markdown, lambda md, mention: self.build_part(md, title, mention),
                            self.limit.size, mention_all=mention_all, cache=splits,
                            layout=(self.layout(), title))

    def layout(self) -> Hashable:
        """What besides the Markdown and the title decides how big a part is.

        Groups with equal layouts share one split of a message. The default is
        the adapter, its dialect and its limit; an adapter that adds config or
        group data to every part (a keyword, the group id) adds it here. An
        incomplete layout only costs a second split (parts are checked
        against ``limit``), never an oversized part.
        """
        return (type(self), self.dialect, self.limit.size)

    def build_part(self, markdown: str, title: str, mention_all: bool) -> Part:
        """One part; ``markdown`` starts with its ``(i/n)`` number when there are several."""
        raise NotImplementedError

    def send(self, part: Part) -> SendResult:
        raise NotImplementedError
