"""The platforms' side of inbound callbacks: signed (and encrypted) events sent to a server.

``PlatformSimulator`` (tests/simulator.py) plays the platforms' send APIs and
reply paths; ``InboundClient`` plays their callbacks, each signed and
encrypted the way its platform does it, written independently of
broadcaster's own verification::

    client = InboundClient("http://127.0.0.1:8080")
    client.dingtalk(app_secret, "cid1", "居住证怎么办", session_webhook=robot.url)
    client.feishu(token, encrypt_key, "oc_1", "巨住证", message_id="om_1")
    client.wecom(token, aes_key, "wrk1", "垃圾分类", response_url=...)
    client.telegram(secret, -1001, "/faq 医保"); client.slack(secret, "C1", "<@U0> 停电了")
    client.generic(secret, "hlz-g01", "老年卡怎么办", mentioned=True)

Every method returns the ``requests.Response``; keyword arguments let a test
break one thing (a wrong secret, an old timestamp, a repeated id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
import time
from typing import Any

import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def _aes_cbc(key: bytes, iv: bytes, plain: bytes, block: int) -> bytes:
    pad = block - len(plain) % block
    data = plain + bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def feishu_encrypt(encrypt_key: str, plain: str) -> str:
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(data) + enc.finalize()).decode()


def wecom_encrypt(aes_key: str, plain: str, receive_id: str = "") -> str:
    key = base64.b64decode(aes_key + "=")
    msg = plain.encode()
    body = os.urandom(16) + struct.pack(">I", len(msg)) + msg + receive_id.encode()
    return base64.b64encode(_aes_cbc(key, key[:16], body, 32)).decode()


def wecom_sign(token: str, ts: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, ts, nonce, encrypted])).encode()).hexdigest()  # noqa: S324


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


class InboundClient:
    def __init__(self, base_url: str, session: requests.Session | None = None, timeout: float = 10):
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.timeout = timeout

    def _post(self, platform: str, body: bytes, headers: dict[str, str],
              params: dict | None = None) -> requests.Response:
        return self.http.post(f"{self.base}/inbound/{platform}", data=body, params=params,
                              headers={"Content-Type": "application/json", **headers},
                              timeout=self.timeout)

    # -- DingTalk ------------------------------------------------------------------
    def dingtalk(self, app_secret: str, conversation: str, text: str, *, msg_id: str | None = None,
                 session_webhook: str | None = None, at_bot: bool = True, ts_ms: int | None = None,
                 sign: str | None = None, sender: str = "staff001", nick: str = "张阿姨",
                 expires_ms: int | None = None) -> requests.Response:
        ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
        mac = hmac.new(app_secret.encode(), f"{ts}\n{app_secret}".encode(), hashlib.sha256)
        body = {
            "msgtype": "text", "text": {"content": f" {text}"}, "msgId": msg_id or secrets.token_hex(8),
            "createAt": int(ts), "conversationType": "2", "conversationId": conversation,
            "conversationTitle": "网格群", "senderId": f"$:LWCP_v1:${sender}", "senderNick": nick,
            "senderStaffId": sender, "isInAtList": at_bot, "chatbotUserId": "$:bot",
            "sessionWebhook": session_webhook or "",
            "sessionWebhookExpiredTime": expires_ms or int(time.time() * 1000) + 90 * 60_000,
        }
        return self._post("dingtalk", _dumps(body), {
            "timestamp": ts, "sign": sign if sign is not None else base64.b64encode(mac.digest()).decode()})

    # -- Feishu --------------------------------------------------------------------
    def feishu_event(self, token: str, encrypt_key: str | None, event: dict, *,
                     signature: str | None = None, ts: str | None = None) -> requests.Response:
        plain = json.dumps(event, ensure_ascii=False)
        if not encrypt_key:
            return self._post("feishu", plain.encode(), {})
        body = _dumps({"encrypt": feishu_encrypt(encrypt_key, plain)})
        ts = ts or str(int(time.time()))
        nonce = secrets.token_hex(6)
        sig = hashlib.sha256((ts + nonce + encrypt_key).encode() + body).hexdigest()
        return self._post("feishu", body, {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce,
                                           "X-Lark-Signature": signature or sig})

    def feishu(self, token: str, encrypt_key: str | None, chat_id: str, text: str, *,
               message_id: str | None = None, mention: bool = True, sender_type: str = "user",
               **kwargs: Any) -> requests.Response:
        content = f"@_user_1 {text}" if mention else text
        event = {
            "schema": "2.0",
            "header": {"event_id": secrets.token_hex(8), "event_type": "im.message.receive_v1",
                       "create_time": str(int(time.time() * 1000)), "token": token,
                       "app_id": "cli_demo", "tenant_key": "t1"},
            "event": {"sender": {"sender_id": {"open_id": "ou_resident1"}, "sender_type": sender_type},
                      "message": {"message_id": message_id or f"om_{secrets.token_hex(8)}",
                                  "chat_id": chat_id, "chat_type": "group", "message_type": "text",
                                  "content": json.dumps({"text": content}, ensure_ascii=False),
                                  "mentions": [{"key": "@_user_1", "name": "小助手",
                                                "id": {"open_id": "ou_bot"}}] if mention else []}},
        }
        return self.feishu_event(token, encrypt_key, event, **kwargs)

    def feishu_join(self, token: str, encrypt_key: str | None, chat_id: str,
                    names: list[str]) -> requests.Response:
        event = {"schema": "2.0",
                 "header": {"event_id": secrets.token_hex(8),
                            "event_type": "im.chat.member.user.added_v1", "token": token},
                 "event": {"chat_id": chat_id, "users": [{"name": n, "user_id": {"open_id": f"ou_{i}"}}
                                                         for i, n in enumerate(names)]}}
        return self.feishu_event(token, encrypt_key, event)

    def feishu_challenge(self, token: str, encrypt_key: str | None, challenge: str) -> requests.Response:
        event = {"type": "url_verification", "challenge": challenge, "token": token}
        if not encrypt_key:
            return self._post("feishu", _dumps(event), {})
        return self._post("feishu", _dumps({"encrypt": feishu_encrypt(encrypt_key, json.dumps(event))}), {})

    # -- WeCom ---------------------------------------------------------------------
    def wecom_verify(self, token: str, aes_key: str, plain: str, *, receive_id: str = "",
                     signature: str | None = None) -> requests.Response:
        ts, nonce = str(int(time.time())), secrets.token_hex(4)
        echostr = wecom_encrypt(aes_key, plain, receive_id)
        params = {"msg_signature": signature or wecom_sign(token, ts, nonce, echostr),
                  "timestamp": ts, "nonce": nonce, "echostr": echostr}
        return self.http.get(f"{self.base}/inbound/wecom", params=params, timeout=self.timeout)

    def wecom(self, token: str, aes_key: str, chat_id: str, text: str, *, msgid: str | None = None,
              response_url: str | None = None, signature: str | None = None,
              receive_id: str = "") -> requests.Response:
        message = {"msgid": msgid or secrets.token_hex(8), "aibotid": "aib1", "chatid": chat_id,
                   "chattype": "group", "from": {"userid": "zhangsan"}, "msgtype": "text",
                   "text": {"content": f"@小助手 {text}"}, "response_url": response_url or ""}
        encrypted = wecom_encrypt(aes_key, json.dumps(message, ensure_ascii=False), receive_id)
        ts, nonce = str(int(time.time())), secrets.token_hex(4)
        params = {"msg_signature": signature or wecom_sign(token, ts, nonce, encrypted),
                  "timestamp": ts, "nonce": nonce}
        return self._post("wecom", _dumps({"encrypt": encrypted}), {}, params)

    # -- Telegram ------------------------------------------------------------------
    def telegram(self, secret_token: str, chat_id: int, text: str, *, message_id: int | None = None,
                 update_id: int | None = None, is_bot: bool = False,
                 secret: str | None = None) -> requests.Response:
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] \
            if text.startswith("/") else []
        update = {"update_id": update_id or secrets.randbelow(10**9),
                  "message": {"message_id": message_id or secrets.randbelow(10**6),
                              "date": int(time.time()), "chat": {"id": chat_id, "type": "supergroup"},
                              "from": {"id": 42, "is_bot": is_bot, "first_name": "王", "last_name": "阿姨"},
                              "text": text, "entities": entities}}
        return self._post("telegram", _dumps(update),
                          {"X-Telegram-Bot-Api-Secret-Token": secret or secret_token})

    def telegram_join(self, secret_token: str, chat_id: int, names: list[str]) -> requests.Response:
        update = {"update_id": secrets.randbelow(10**9),
                  "message": {"message_id": secrets.randbelow(10**6), "date": int(time.time()),
                              "chat": {"id": chat_id, "type": "supergroup"},
                              "new_chat_members": [{"id": i + 100, "is_bot": False, "first_name": n}
                                                   for i, n in enumerate(names)]}}
        return self._post("telegram", _dumps(update), {"X-Telegram-Bot-Api-Secret-Token": secret_token})

    # -- Slack ---------------------------------------------------------------------
    def slack_raw(self, signing_secret: str, body: bytes, *, ts: int | None = None,
                  retry_num: int | None = None, signature: str | None = None) -> requests.Response:
        stamp = str(ts if ts is not None else int(time.time()))
        mac = hmac.new(signing_secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        headers = {"X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": signature or "v0=" + mac.hexdigest()}
        if retry_num is not None:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return self._post("slack", body, headers)

    def slack(self, signing_secret: str, channel: str, text: str, *, ts: str | None = None,
              event_id: str | None = None, **kwargs: Any) -> requests.Response:
        event = {"type": "app_mention", "user": "U2CERLKJA", "text": f"<@U0BOT> {text}",
                 "ts": ts or f"{time.time():.6f}", "channel": channel, "event_ts": ts or "1"}
        body = {"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}", "event_time": int(time.time()),
                "event": event}
        return self.slack_raw(signing_secret, _dumps(body), **kwargs)

    # -- generic bridge ----------------------------------------------------------------
    def generic_raw(self, secret: str, body: bytes, *, ts: int | None = None,
                    signature: str | None = None) -> requests.Response:
        stamp = str(ts if ts is not None else int(time.time()))
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return self._post("generic", body, {"X-Broadcaster-Timestamp": stamp,
                                            "X-Broadcaster-Signature": signature or f"sha256={mac}"})

    def generic(self, secret: str, chat: str, text: str, *, message_id: str | None = None,
                mentioned: bool = True, is_bot: bool = False, **kwargs: Any) -> requests.Response:
        body = {"chat": chat, "message_id": message_id or secrets.token_hex(8),
                "sender": {"id": "u1", "name": "张阿姨", "is_bot": is_bot}, "text": text,
                "mentioned": mentioned}
        return self.generic_raw(secret, _dumps(body), **kwargs)

    def generic_join(self, secret: str, chat: str, names: list[str]) -> requests.Response:
        body = {"chat": chat, "event": "join", "members": [{"id": f"u{i}", "name": n}
                                                            for i, n in enumerate(names)]}
        return self.generic_raw(secret, _dumps(body))
