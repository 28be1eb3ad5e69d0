"""Slack Events API: ``POST /inbound/slack``.

``X-Slack-Signature`` = ``v0=`` + hex HMAC-SHA256(signing_secret, "v0:" +
timestamp + ":" + raw body); more than 5 minutes of skew is refused.
``url_verification`` echoes its challenge. Slack retries an event it thinks
unanswered (``X-Slack-Retry-Num``): the message key (channel and ``ts``) makes
a retry a duplicate. A message that mentions the bot also arrives as an
``app_mention``; only that one is read. Answers go through the group's channel.
"""

from __future__ import annotations

from datetime import datetime

from broadcaster.inbound import crypto
from broadcaster.inbound.message import InboundMessage, Parsed
from broadcaster.inbound.platforms import RawRequest, is_command, text_of

name = "slack"
methods = ("POST",)


def parse(req: RawRequest, cfg, now: datetime) -> Parsed:
    crypto.check_slack(cfg.signing_secret, req.header("x-slack-request-timestamp"),
                       req.header("x-slack-signature"), req.body, now.timestamp())
    data = req.json()
    if not isinstance(data, dict):
        raise crypto.Refused("expected a JSON object", 400)
    if data.get("type") == "url_verification":
        return Parsed(answer={"challenge": str(data.get("challenge", ""))})
    event = data.get("event") or {}
    kind = event.get("type")
    if kind not in ("message", "app_mention") or event.get("subtype") not in (None, "bot_message"):
        return Parsed()
    text = text_of(event.get("text"))
    if kind == "message" and "<@" in text:
        return Parsed()  # the app_mention event of the same message is the one read
    channel, ts = event.get("channel"), event.get("ts")
    if not channel or not ts:
        return Parsed()
    clean = " ".join(w for w in text.split() if not (w.startswith("<@") and w.endswith(">")))
    return Parsed([InboundMessage(
        platform=name, chat=f"{name}:{channel}", group_id=None, message_id=f"{channel}:{ts}",
        sender_id=str(event.get("user") or event.get("bot_id") or ""), sender_name="",
        text=clean.strip(), addressed=kind == "app_mention" or is_command(clean)
        or event.get("channel_type") == "im",
        is_bot=bool(event.get("bot_id")) or event.get("subtype") == "bot_message", received_at=now,
    )])
