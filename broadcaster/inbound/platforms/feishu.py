"""Feishu / Lark event subscription v2: ``POST /inbound/feishu``.

With an Encrypt Key the body is ``{"encrypt": …}`` (AES-256-CBC, key =
SHA-256(encrypt_key)) and ``X-Lark-Signature`` = hex SHA-256(timestamp + nonce +
encrypt_key + raw body) is checked; without one nothing is signed and the
body's ``token`` (v2: ``header.token``) must equal the Verification Token.
``url_verification`` is answered with its ``challenge`` after the token check.
Events read: ``im.message.receive_v1`` (messages) and
``im.chat.member.user.added_v1`` (joins). Answers go through the reply API
(``/open-apis/im/v1/messages/{message_id}/reply``) when ``app_id`` and
``app_secret`` are set.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from broadcaster.inbound import crypto
from broadcaster.inbound.message import InboundJoin, InboundMessage, Parsed, ReplyRoute
from broadcaster.inbound.platforms import RawRequest, is_command, text_of

name = "feishu"
methods = ("POST",)
MESSAGE = "im.message.receive_v1"
JOIN = "im.chat.member.user.added_v1"
_AT = re.compile(r"@_user_\d+\s*")
REPLY_VALID = timedelta(days=1)


def parse(req: RawRequest, cfg, now: datetime) -> Parsed:
    data = req.json()
    if not isinstance(data, dict):
        raise crypto.Refused("expected a JSON object", 400)
    if cfg.encrypt_key:
        if not isinstance(data.get("encrypt"), str):
            raise crypto.Refused("expected an encrypted body")
        is_challenge_probe = False
        try:
            crypto.check_feishu(cfg.encrypt_key, req.header("x-lark-request-timestamp"),
                                req.header("x-lark-request-nonce"), req.header("x-lark-signature"),
                                req.body)
        except crypto.Refused:
            is_challenge_probe = True  # the url_verification request is not signed
        data = _decrypted(cfg.encrypt_key, data["encrypt"])
        if is_challenge_probe and data.get("type") != "url_verification":
            raise crypto.Refused("bad X-Lark-Signature")
    token = data.get("token") or (data.get("header") or {}).get("token") or ""
    if not crypto.equal(str(token), cfg.verification_token):
        raise crypto.Refused("bad verification token")
    if data.get("type") == "url_verification":
        return Parsed(answer={"challenge": str(data.get("challenge", ""))})
    header = data.get("header") or {}
    event = data.get("event") or {}
    kind = header.get("event_type")
    if kind == MESSAGE:
        return Parsed(_message(event, cfg, now))
    if kind == JOIN:
        names = tuple(text_of(u.get("name"), 32) or "" for u in event.get("users") or []
                      if isinstance(u, dict))
        chat = event.get("chat_id")
        if chat and names:
            return Parsed([InboundJoin(name, f"{name}:{chat}", str(header.get("event_id") or ""),
                                       tuple(n for n in names if n))])
    return Parsed()


def _decrypted(encrypt_key: str, encrypted: str) -> dict:
    try:
        data = json.loads(crypto.feishu_decrypt(encrypt_key, encrypted))
    except ValueError:
        raise crypto.Refused("the decrypted body is not JSON") from None
    if not isinstance(data, dict):
        raise crypto.Refused("the decrypted body is not a JSON object")
    return data


def _message(event: dict, cfg, now: datetime) -> list[InboundMessage]:
    message = event.get("message") or {}
    sender = event.get("sender") or {}
    if message.get("message_type") != "text" or not message.get("chat_id") \
            or not message.get("message_id"):
        return []
    try:
        content = json.loads(message.get("content") or "{}")
    except ValueError:
        content = {}
    raw = text_of(content.get("text") if isinstance(content, dict) else "")
    text = _AT.sub("", raw).strip()
    mentions = message.get("mentions") or []
    route = None
    if cfg.app_id and cfg.app_secret:
        route = ReplyRoute("feishu_reply", message_id=str(message["message_id"]),
                           expires_at=now + REPLY_VALID)
    ids = sender.get("sender_id") or {}
    return [InboundMessage(
        platform=name, chat=f"{name}:{message['chat_id']}", group_id=None,
        message_id=str(message["message_id"]),
        sender_id=str(ids.get("open_id") or ids.get("user_id") or ""),
        sender_name="", text=text,
        addressed=bool(mentions) or message.get("chat_type") == "p2p" or is_command(text),
        is_bot=sender.get("sender_type") == "app", received_at=now, reply_route=route,
    )]
