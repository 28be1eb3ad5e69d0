"""WeCom intelligent robot (智能机器人) callback: ``GET,POST /inbound/wecom``.

GET ``?msg_signature&timestamp&nonce&echostr`` verifies the URL: the decrypted
``echostr`` is the bare answer. POST ``{"encrypt": …}``: ``msg_signature`` =
hex SHA-1 over sorted token, timestamp, nonce and ``encrypt``; AES-256-CBC with
key = base64(EncodingAESKey + "="), IV = key[:16], padded to 32 bytes. The
robot receives only messages that @-mention it; the answer is POSTed once to
``response_url`` within an hour.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from broadcaster.inbound import crypto
from broadcaster.inbound.message import InboundMessage, Parsed, ReplyRoute
from broadcaster.inbound.platforms import RawRequest, text_of

name = "wecom"
methods = ("GET", "POST")
RESPONSE_VALID = timedelta(hours=1)
_LEADING_AT = re.compile(r"^\s*@\S+\s*")


def parse(req: RawRequest, cfg, now: datetime) -> Parsed:
    q = req.query
    if req.method == "GET":
        echostr = q.get("echostr", "")
        crypto.check_wecom(cfg.token, q.get("timestamp", ""), q.get("nonce", ""), echostr,
                           q.get("msg_signature", ""))
        plain = crypto.wecom_decrypt(cfg.encoding_aes_key, echostr, cfg.receive_id)
        return Parsed(answer=plain, content_type="text/plain")
    body = req.json()
    encrypted = body.get("encrypt") if isinstance(body, dict) else None
    if not isinstance(encrypted, str):
        raise crypto.Refused("expected {\"encrypt\": …}", 400)
    crypto.check_wecom(cfg.token, q.get("timestamp", ""), q.get("nonce", ""), encrypted,
                       q.get("msg_signature", ""))
    plain = crypto.wecom_decrypt(cfg.encoding_aes_key, encrypted, cfg.receive_id)
    try:
        data = json.loads(plain)
    except ValueError:
        return Parsed()  # a self-built app's XML: not a robot message
    if not isinstance(data, dict) or data.get("msgtype") != "text" or not data.get("msgid"):
        return Parsed()
    chat = data.get("chatid")
    if not chat:
        return Parsed()  # a one-to-one chat is not a group
    text = _LEADING_AT.sub("", text_of((data.get("text") or {}).get("content"))).strip()
    route = None
    if isinstance(data.get("response_url"), str) and data["response_url"]:
        route = ReplyRoute("wecom_response", url=data["response_url"],
                           expires_at=now + RESPONSE_VALID)
    sender = data.get("from") or {}
    return Parsed([InboundMessage(
        platform=name, chat=f"{name}:{chat}", group_id=None, message_id=str(data["msgid"]),
        sender_id=str(sender.get("userid") or ""), sender_name=text_of(sender.get("name"), 64),
        text=text, addressed=True, is_bot=False, received_at=now, reply_route=route,
    )])
