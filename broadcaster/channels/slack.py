"""Slack incoming webhook: ``POST https://hooks.slack.com/services/T…/B…/X…``.

Body ``{"text": mrkdwn}``; the answer is a plain-text body: ``ok``, or an
error word (``invalid_payload``, ``no_text``, ``channel_not_found``,
``no_service``…) which is permanent; 429 carries ``Retry-After``. About one
message per second per channel. ``mention_all`` prefixes ``<!channel>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import (
    HttpChannel,
    HttpsUrl,
    body_snippet,
    garbled_result,
    http_status_result,
)

if TYPE_CHECKING:
    import requests

type_name = "slack"
LIMIT = Limit(4000, "chars")  # Slack truncates at 40,000 and advises under 4,000
RATE = RateLimit(1, 1.0)
MENTION = "<!channel>"


class Config(ChannelConfig):
    type: Literal["slack"] = "slack"
    url: HttpsUrl

    secret_fields = ("url",)


@register(type_name)
class SlackChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    rate_limit = RATE
    dialect = "slack"
    preview: ClassVar = {"url": "https://hooks.slack.com/services/T0000/B0000/preview"}

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        text = self.in_dialect(md)
        if mention_all:
            text = f"{MENTION} {text}"
        return Part({"text": text}, text, len(text), LIMIT.size)

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        answer = body_snippet(response)
        if response.status_code == 200 and answer == "ok":
            return SendResult("sent", http_status=200, latency_ms=latency_ms)
        status = response.status_code
        reason = answer or f"HTTP {status}"
        code = answer if answer.isidentifier() else None
        if 200 <= status < 300 and (garbled := garbled_result(response, latency_ms)):
            return garbled
        if 200 <= status < 300:  # 2xx but not "ok": Slack refused it, in these words
            return SendResult("permanent", reason=reason, http_status=status, code=code,
                              latency_ms=latency_ms)
        return http_status_result(response, latency_ms, reason=reason, code=code)
