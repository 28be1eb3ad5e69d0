"""DingTalk app robot (HTTP mode): ``POST /inbound/dingtalk``.

Headers ``timestamp`` (ms) and ``sign`` = base64 HMAC-SHA256(app_secret,
timestamp + "\\n" + app_secret); more than an hour of skew is refused. In a
group the robot receives only messages that @-mention it. The answer goes to
``sessionWebhook`` while it is valid (about 90 minutes).

Join events do not come through this callback (DingTalk sends them to its
separate event subscription), so DingTalk joins are not read here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from broadcaster.inbound import crypto
from broadcaster.inbound.message import InboundMessage, Parsed, ReplyRoute
from broadcaster.inbound.platforms import RawRequest, is_command, text_of

name = "dingtalk"
methods = ("POST",)


def parse(req: RawRequest, cfg, now: datetime) -> Parsed:
    crypto.check_dingtalk(cfg.app_secret, req.header("timestamp"), req.header("sign"),
                          now.timestamp())
    data = req.json()
    if not isinstance(data, dict):
        raise crypto.Refused("expected a JSON object", 400)
    if data.get("msgtype") != "text" or not data.get("conversationId") or not data.get("msgId"):
        return Parsed()  # pictures, files, cards: nothing to read
    text = text_of((data.get("text") or {}).get("content")).strip()
    route = None
    session = data.get("sessionWebhook")
    if isinstance(session, str) and session:
        expires_ms = data.get("sessionWebhookExpiredTime")
        expires = (datetime.fromtimestamp(int(expires_ms) / 1000, now.tzinfo)
                   if str(expires_ms or "").isdigit() else now + timedelta(minutes=90))
        route = ReplyRoute("dingtalk_session", url=session, expires_at=expires)
    single = str(data.get("conversationType")) == "1"
    msg = InboundMessage(
        platform=name, chat=f"{name}:{data['conversationId']}", group_id=None,
        message_id=str(data["msgId"]), sender_id=str(data.get("senderStaffId") or data.get("senderId") or ""),
        sender_name=text_of(data.get("senderNick"), 64), text=text,
        addressed=bool(data.get("isInAtList")) or single or is_command(text),
        is_bot=False, received_at=now, reply_route=route,
    )
    return Parsed([msg])
