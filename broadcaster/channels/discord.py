"""Discord webhook: ``POST https://discord.com/api/webhooks/{id}/{token}``.

Body ``{"content": markdown}`` (at most 2000 characters) → 204. 429 carries
``retry_after`` (seconds) in JSON and ``Retry-After``; 404 code 10015 means the
webhook was deleted (permanent). Mentions are off unless ``mention_all``, which
prefixes ``@everyone`` and allows exactly that mention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import (
    HttpChannel,
    HttpsUrl,
    garbled_result,
    http_status_result,
    response_json,
)
from broadcaster.delivery.markdown import utf16_len

if TYPE_CHECKING:
    import requests

type_name = "discord"
LIMIT = Limit(2000, "chars")
RATE = RateLimit(5, 2.0)


class Config(ChannelConfig):
    type: Literal["discord"] = "discord"
    url: HttpsUrl

    secret_fields = ("url",)


@register(type_name)
class DiscordChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    rate_limit = RATE
    dialect = "discord"
    preview: ClassVar = {"url": "https://discord.com/api/webhooks/0/preview"}

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        text = self.in_dialect(md)
        if mention_all:
            text = f"@everyone\n{text}"  # own line: a heading must start its line
        payload = {"content": text,
                   "allowed_mentions": {"parse": ["everyone"] if mention_all else []}}
        return Part(payload, text, utf16_len(text), LIMIT.size)

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        data = response_json(response) if response.content else None
        if not isinstance(data, dict):
            return garbled_result(response, latency_ms) or http_status_result(response, latency_ms)
        code = str(data["code"]) if "code" in data else None
        reason = str(data.get("message") or f"HTTP {response.status_code}")
        result = http_status_result(response, latency_ms, reason=reason, code=code)
        if response.status_code == 429 and isinstance(data.get("retry_after"), int | float):
            result.retry_after = float(data["retry_after"])
        return result
