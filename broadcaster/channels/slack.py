"""Slack incoming webhook: ``POST https://hooks.slack.com/services/T…/B…/X…``.

Body ``{"text": mrkdwn}``; the answer is a plain-text body: ``ok``, or an
error word (``invalid_payload``, ``no_text``, ``channel_not_found``,
``no_service``…) which is permanent; 429 carries ``Retry-After``. About one
message per second per channel. ``mention_all`` prefixes ``<!channel>``.
"""

from __future__ import annotations

from typing import Literal

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import HttpChannel, HttpsUrl, body_snippet, http_status_result
from broadcaster.markdown import to_slack
from broadcaster.splitting import render_parts

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

    def robot_key(self) -> str:
        return f"slack:{self.hashed(self.config.url)}"

    def rate_limits(self) -> list[tuple[str, RateLimit]]:
        return [(self.robot_key(), RATE)]

    def render(self, markdown: str, *, title: str, mention_all: bool = False) -> list[Part]:
        return render_parts(markdown, self._part, LIMIT.size, mention_all=mention_all)

    def _part(self, md: str, mention_all: bool) -> Part:
        text = to_slack(md)
        if mention_all:
            text = f"{MENTION} {text}"
        return Part({"text": text}, text, len(text), LIMIT.size)

    def send(self, part: Part) -> SendResult:
        response, latency, error = self.post(self.config.url, part.payload)
        if error:
            return self.clean(error)
        answer = body_snippet(response)
        if response.status_code == 200 and answer == "ok":
            return SendResult("sent", http_status=200, latency_ms=latency)
        reason = answer or f"HTTP {response.status_code}"
        code = answer if answer.isidentifier() else None
        result = http_status_result(response, latency, reason=reason, code=code)
        if result.outcome == "sent":  # 2xx but not "ok": Slack refused it
            result.outcome = "permanent"
        return self.clean(result)
