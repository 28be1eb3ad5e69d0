"""What the server makes of one verified platform request: a message or a join.

``InboundMessage`` is the one shape every later step reads (the knowledge base,
work orders, the resident-message log), whatever platform it came from.
``ReplyRoute`` says how an answer can go back through the platform's own reply
path (DingTalk ``sessionWebhook``, WeCom ``response_url``, the Feishu reply
API); without one an answer goes through the group's own channel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

RouteKind = Literal["dingtalk_session", "wecom_response", "feishu_reply"]


@dataclass(frozen=True)
class ReplyRoute:
    """The platform's reply path for one message."""

    kind: RouteKind
    url: str | None = None              # dingtalk_session, wecom_response
    message_id: str | None = None       # feishu_reply: the message answered
    expires_at: datetime | None = None  # after this the group's own channel is used

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ReplyRoute | None:
        if not data:
            return None
        expires = data.get("expires_at")
        return cls(kind=data["kind"], url=data.get("url"), message_id=data.get("message_id"),
                   expires_at=datetime.fromisoformat(expires) if expires else None)


@dataclass(frozen=True)
class InboundMessage:
    """One resident message, verified, mapped to its group."""

    platform: str
    chat: str                  # "<platform>:<conversation id>", as in groups.yaml ``chats:``
    group_id: str | None       # None when no group claims the chat
    message_id: str            # the platform's id: a retry carries the same one
    sender_id: str
    sender_name: str
    text: str
    addressed: bool            # @-mention of the bot, a reply to it, or a /command
    is_bot: bool
    received_at: datetime
    reply_route: ReplyRoute | None = None

    @property
    def key(self) -> str:
        """Unique per platform message: what de-duplicates platform retries."""
        return f"{self.platform}:{self.message_id}"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "message", "key": self.key, "platform": self.platform, "chat": self.chat,
            "group": self.group_id, "message_id": self.message_id, "sender_id": self.sender_id,
            "sender_name": self.sender_name, "text": self.text, "addressed": self.addressed,
            "is_bot": self.is_bot, "received_at": self.received_at.isoformat(),
            "reply_route": self.reply_route.as_json() if self.reply_route else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InboundMessage:
        return cls(platform=data["platform"], chat=data["chat"], group_id=data.get("group"),
                   message_id=data["message_id"], sender_id=data["sender_id"],
                   sender_name=data["sender_name"], text=data["text"],
                   addressed=bool(data["addressed"]), is_bot=bool(data["is_bot"]),
                   received_at=datetime.fromisoformat(data["received_at"]),
                   reply_route=ReplyRoute.from_json(data.get("reply_route")))


@dataclass(frozen=True)
class InboundJoin:
    """Members who joined a chat (for the welcome batching of ``sources.members``)."""

    platform: str
    chat: str
    event_id: str              # de-duplicates retries, like a message id
    names: tuple[str, ...]
    group_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.platform}:join:{self.event_id}"

    def as_json(self, received_at: datetime) -> dict[str, Any]:
        return {"type": "join", "key": self.key, "platform": self.platform, "chat": self.chat,
                "group": self.group_id, "event_id": self.event_id, "names": list(self.names),
                "received_at": received_at.isoformat()}


@dataclass
class Parsed:
    """What a platform module made of one request.

    ``answer`` is the body to answer with (a challenge, an echostr), else the
    server answers ``{"ok": true}``; ``events`` are the messages and joins in it.
    """

    events: list[InboundMessage | InboundJoin] = field(default_factory=list)
    answer: Any = None            # a dict is sent as JSON, a str as bare text
    content_type: str | None = None
