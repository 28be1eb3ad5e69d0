"""Telegram webhook: ``POST /inbound/telegram``, header ``X-Telegram-Bot-Api-Secret-Token``.

Only in webhook mode (a ``secret_token`` is set); otherwise the daemon polls
``getUpdates`` (see ``broadcaster.sources.members``). In privacy mode a bot
sees only commands, replies to it and mentions, all of which count as
addressed. ``new_chat_members`` feeds the welcome batching. Answers go through
the group's own channel (the Bot API).
"""

from __future__ import annotations

from datetime import datetime

from broadcaster.inbound import crypto
from broadcaster.inbound.message import InboundJoin, InboundMessage, Parsed
from broadcaster.inbound.platforms import RawRequest, is_command, text_of

name = "telegram"
methods = ("POST",)


def parse(req: RawRequest, cfg, now: datetime) -> Parsed:
    if not cfg.secret_token or cfg.effective_mode != "webhook":
        raise crypto.Refused("telegram is in poll mode: no webhook", 404)
    crypto.check_telegram(cfg.secret_token, req.header("x-telegram-bot-api-secret-token"))
    update = req.json()
    if not isinstance(update, dict):
        raise crypto.Refused("expected a JSON object", 400)
    from broadcaster.sources.members import joins_in  # start-up time: loaded when first used

    msg = update.get("message") or {}
    chat = (msg.get("chat") or {}).get("id")
    if chat is None:
        return Parsed()
    chat_key = f"{name}:{chat}"
    if msg.get("new_chat_members"):
        _, names = joins_in(update, None)
        return Parsed([InboundJoin(name, chat_key, str(update.get("update_id", "")),
                                   tuple(names))] if names else [])
    text = text_of(msg.get("text")).strip()
    if not text or msg.get("message_id") is None:
        return Parsed()
    sender = msg.get("from") or {}
    kinds = {e.get("type") for e in msg.get("entities") or [] if isinstance(e, dict)}
    replied = ((msg.get("reply_to_message") or {}).get("from") or {}).get("is_bot", False)
    name_ = " ".join(p for p in (sender.get("first_name"), sender.get("last_name")) if p)
    return Parsed([InboundMessage(
        platform=name, chat=chat_key, group_id=None, message_id=f"{chat}:{msg['message_id']}",
        sender_id=str(sender.get("id", "")), sender_name=text_of(name_ or sender.get("username"), 64),
        text=text, addressed=bool(replied) or "mention" in kinds or is_command(text)
        or (msg.get("chat") or {}).get("type") == "private",
        is_bot=bool(sender.get("is_bot")), received_at=now,
    )])
