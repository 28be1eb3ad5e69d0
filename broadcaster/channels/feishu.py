"""Feishu (飞书) / Lark custom bot: ``POST …/open-apis/bot/v2/hook/TOKEN``.

Markdown goes in an interactive card (a header with the title, one ``lark_md``
div). Signing differs from DingTalk: seconds, the combined string is the HMAC
*key* over an empty message, and ``timestamp``/``sign`` travel in the JSON
body; both are made at send time. The whole body is at most 20 KB; the answer
is always read from ``code`` (the HTTP status is not reliable).
Registered as ``feishu`` and ``lark`` (same API, different host).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import HttpChannel, HttpsUrl, encode_json, json_code_result
from broadcaster.delivery.splitting import numbered_title, parse_label

if TYPE_CHECKING:
    import requests

type_name = "feishu"
LIMIT = Limit(20_000, "body_bytes")  # "20 KB"; 20,000 is safe under either reading
RATES = (RateLimit(5, 1.0), RateLimit(100, 60.0))
TRANSIENT = {11232: 1.0}  # frequency limited
SIGNING_RESERVE = {"timestamp": "1700000000", "sign": "x" * 44}  # measured, not sent
MENTION = "<at id=all></at>"


class Config(ChannelConfig):
    type: Literal["feishu", "lark"] = "feishu"
    url: HttpsUrl
    secret: str | None = None  # 签名校验 secret; signs every request when set

    secret_fields = ("url", "secret")


def sign(secret: str, timestamp_s: int) -> str:
    """The body's ``sign`` for ``timestamp_s``: HMAC keyed by ``"{ts}\\n{secret}"`` over b''."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


_HEADING = re.compile(r"#{1,6}\s+(.*)")
_MARKS = re.compile(r"[*_`~]")


def without_title_heading(md: str, title: str) -> str:
    """``md`` without its opening heading when that heading is the card's title.

    A card shows its title in the header; repeating it as the body's first line reads
    twice. Only the first part of a message carries the heading; its ``(i/n)`` label stays.
    """
    _, _, body = parse_label(md)
    label = md[: len(md) - len(body)]
    stripped = body.lstrip("\n")
    first, _, rest = stripped.partition("\n")
    m = _HEADING.fullmatch(first.strip())
    if not m or not title.rstrip("…") or not _MARKS.sub("", m.group(1)).strip().startswith(title.rstrip("…")):
        return md
    return label + rest.lstrip("\n")


@register("feishu")
class FeishuChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    dialect = "lark_md"
    preview: ClassVar = {"url": "https://open.feishu.cn/open-apis/bot/v2/hook/preview"}

    def rate_limits(self) -> list[tuple[str, RateLimit]]:
        key = self.robot_key()
        return [(key, RATES[0]), (f"{key}/min", RATES[1])]

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        text = self.in_dialect(without_title_heading(md, title) if title else md)
        if mention_all:
            text = f"{MENTION} {text}"
        card: dict = {
            "config": {"wide_screen_mode": True},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}],
        }
        if title:
            card["header"] = {"title": {"tag": "plain_text", "content": numbered_title(title, md)}}
        payload = {"msg_type": "interactive", "card": card}
        size = len(encode_json({**SIGNING_RESERVE, **payload}))
        return Part(payload, text, size, LIMIT.size)

    def request(self, part: Part) -> tuple[str, Any, None]:
        body = part.payload
        if self.config.secret:
            ts = int(time.time())
            body = {"timestamp": str(ts), "sign": sign(self.config.secret, ts), **body}
        return self.config.url, body, None

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        return json_code_result(response, latency_ms, code_keys=("code", "StatusCode"),
                                message_keys=("msg", "StatusMessage"), transient=TRANSIENT)


@register("lark")
class LarkChannel(FeishuChannel):
    type_name = "lark"
    preview: ClassVar = {"url": "https://open.larksuite.com/open-apis/bot/v2/hook/preview"}
