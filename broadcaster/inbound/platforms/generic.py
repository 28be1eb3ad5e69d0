"""Any bridge: ``POST /inbound/generic``, signed JSON.

Headers ``X-Broadcaster-Timestamp`` (unix seconds, 5-minute window) and
``X-Broadcaster-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.
A message is ``{"chat", "message_id", "sender": {"id", "name", "is_bot"},
"text", "mentioned"}``; a join is ``{"chat", "event": "join", "members":
[{"id", "name"}]}``. Answers go through the group's own channel.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from broadcaster.inbound import crypto
from broadcaster.inbound.message import InboundJoin, InboundMessage, Parsed
from broadcaster.inbound.platforms import RawRequest, is_command, text_of

name = "generic"
methods = ("POST",)


def parse(req: RawRequest, cfg, now: datetime) -> Parsed:
    crypto.check_generic(cfg.secret, req.header("x-broadcaster-timestamp"),
                         req.header("x-broadcaster-signature"), req.body, now.timestamp())
    data = req.json()
    if not isinstance(data, dict) or not isinstance(data.get("chat"), str) or not data["chat"]:
        raise crypto.Refused("expected a JSON object with a chat", 400)
    chat = f"{name}:{data['chat']}"
    if data.get("event") == "join":
        members = [m for m in data.get("members") or [] if isinstance(m, dict)]
        names = tuple(n for n in (text_of(m.get("name"), 32) for m in members) if n)
        event_id = hashlib.sha256(req.body).hexdigest()[:24]
        return Parsed([InboundJoin(name, chat, event_id, names)] if names else [])
    sender = data.get("sender") if isinstance(data.get("sender"), dict) else {}
    text = text_of(data.get("text")).strip()
    if data.get("message_id") in (None, "") or not text:
        raise crypto.Refused("a message needs message_id and text", 400)
    return Parsed([InboundMessage(
        platform=name, chat=chat, group_id=None, message_id=str(data["message_id"])[:200],
        sender_id=str(sender.get("id", ""))[:200], sender_name=text_of(sender.get("name"), 64),
        text=text, addressed=bool(data.get("mentioned")) or is_command(text),
        is_bot=bool(sender.get("is_bot")), received_at=now,
    )])
