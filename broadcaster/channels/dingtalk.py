"""DingTalk (钉钉) custom robot: ``POST …/robot/send?access_token=TOKEN[&timestamp&sign]``.

A robot may require signing (加签: a fresh millisecond timestamp and an HMAC
in the query string, made at send time) and custom keywords (the message must
contain one: a configured ``keyword`` missing from a part is appended to it).
Markdown needs a ``title`` (shown in the chat list). The whole JSON body is at
most 20,000 bytes. Exceeding 20 messages a minute throttles the robot for ten
minutes, so a rate-limit answer asks to wait that long.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote_plus

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import (
    HttpChannel,
    encode_json,
    json_code_result,
    query_param,
    robot_url,
)
from broadcaster.delivery.markdown import strip_markdown
from broadcaster.delivery.splitting import SplitCache, numbered_title

if TYPE_CHECKING:
    import requests

type_name = "dingtalk"
LIMIT = Limit(20_000, "body_bytes")
RATE = RateLimit(20, 60.0)
THROTTLE_SECONDS = 600.0  # "send too fast" throttles the robot for 10 minutes
TRANSIENT = {130101: THROTTLE_SECONDS, 410100: THROTTLE_SECONDS, -1: None}
TITLE_CHARS = 40


class Config(ChannelConfig):
    type: Literal["dingtalk"] = "dingtalk"
    url: robot_url("access_token")
    secret: str | None = None   # 加签 secret (SEC…); signs every request when set
    keyword: str | None = None  # one of the robot's custom keywords, ensured in every part

    secret_fields = ("url", "secret")


def sign(secret: str, timestamp_ms: int) -> str:
    """The URL-encoded ``sign`` query value for ``timestamp_ms``."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    return f"{url}&timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


def default_title(markdown: str) -> str:
    """A chat-list title from the first non-empty line when none is given."""
    for line in strip_markdown(markdown).splitlines():
        if line.strip():
            return line.strip()[:TITLE_CHARS]
    return "通知"


@register(type_name)
class DingTalkChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    rate_limit = RATE
    dialect = "dingtalk"
    preview: ClassVar = {"url": "https://oapi.dingtalk.com/robot/send?access_token=preview"}

    def credential(self) -> str:
        return query_param(self.config.url, "access_token")

    def render(self, markdown: str, *, title: str, mention_all: bool = False,
               splits: SplitCache | None = None) -> list[Part]:
        return super().render(markdown, title=title or default_title(markdown),
                              mention_all=mention_all, splits=splits)

    def layout(self) -> Hashable:
        return (*super().layout(), self.config.keyword)

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        text = self.in_dialect(md)
        keyword = self.config.keyword
        if keyword and keyword not in text:
            text = f"{text}\n\n{keyword}"
        if mention_all:
            text = f"{text}\n\n@所有人"
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": numbered_title(title, md), "text": text},
            "at": {"isAtAll": mention_all},
        }
        return Part(payload, text, len(encode_json(payload)), LIMIT.size)

    def request(self, part: Part) -> tuple[str, Any, None]:
        url = self.config.url
        if self.config.secret:
            url = signed_url(url, self.config.secret, int(time.time() * 1000))
        return url, part.payload, None

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        return json_code_result(response, latency_ms, transient=TRANSIENT)
