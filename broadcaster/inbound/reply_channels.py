"""The channels of the platforms' reply paths, built per reply by ``replies.ReplyRoutes``.

They render like the group robots of the same platform (same dialect, same
limits) and count against a per-group app-robot rate limit; they are never
configured in groups.yaml, so they are not in the channel registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests

from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.dingtalk import DingTalkChannel
from broadcaster.channels.http import HttpChannel, encode_json, json_code_result
from broadcaster.channels.wecom import WeComChannel
from broadcaster.delivery.markdown import strip_markdown
from broadcaster.net.client import HttpFailure
from broadcaster.net.urls import UrlRefused


class RouteConfig(ChannelConfig):
    """A reply URL handed over by a verified platform request (checked by ``reply_url_allowed``)."""

    type: str
    url: str = ""
    secret: str | None = None      # never set: a reply path is not signed
    keyword: str | None = None
    format: str = "markdown"

    secret_fields = ("url",)


class DingTalkSession(DingTalkChannel):
    """DingTalk ``sessionWebhook``: a robot message, no signing, ~90 minutes valid."""

    rate_limit = RateLimit(20, 60.0)

    @classmethod
    def for_route(cls, url: str, group, session) -> DingTalkSession:
        return cls(RouteConfig(type="dingtalk", url=url), group.id, session, group.tz)

    def request(self, part: Part) -> tuple[str, Any, None]:
        return self.config.url, part.payload, None

    def robot_key(self) -> str:
        return f"dingtalk-app:{self.group_id}"


class WeComResponse(WeComChannel):
    """WeCom intelligent robot ``response_url``: a markdown message, once, within an hour."""

    rate_limit = RateLimit(20, 60.0)

    @classmethod
    def for_route(cls, url: str, group, session) -> WeComResponse:
        return cls(RouteConfig(type="wecom", url=url), group.id, session, tz=group.tz)

    def robot_key(self) -> str:
        return f"wecom-aibot:{self.group_id}"


class FeishuReply(HttpChannel):
    """Feishu/Lark ``POST /open-apis/im/v1/messages/{message_id}/reply`` as the app bot."""

    type_name = "feishu"
    limit = Limit(20_000, "body_bytes")
    rate_limit = RateLimit(5, 1.0)       # per group

    def __init__(self, config, group_id: str, session, tz, *, api_base: str, message_id: str,
                 token: Callable[[], str]):
        super().__init__(config, group_id, session, tz)
        self.api_base = api_base
        self.message_id = message_id
        self.token = token

    @classmethod
    def for_route(cls, message_id: str, cfg, group, session, *, token) -> FeishuReply:
        return cls(RouteConfig(type="feishu"), group.id, session, group.tz, api_base=cfg.api_base,
                   message_id=message_id, token=token)

    def robot_key(self) -> str:
        return f"feishu-app:{self.group_id}"

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        text = strip_markdown(md)
        payload = {"msg_type": "text", "content": json.dumps({"text": text}, ensure_ascii=False)}
        return Part(payload, text, len(encode_json(payload)), self.limit.size)

    def send(self, part: Part) -> SendResult:
        from broadcaster.inbound.replies import TokenError  # start-up time: loaded when first used

        try:
            token = self.token()
        except (TokenError, HttpFailure, UrlRefused) as exc:
            reason = str(exc) if isinstance(exc, TokenError) else \
                f"tenant_access_token: no answer ({exc})"
            return SendResult("transient", reason=reason, retry_after=30.0)
        self._bearer = token
        return super().send(part)

    def request(self, part: Part) -> tuple[str, Any, dict[str, str]]:
        url = f"{self.api_base}/open-apis/im/v1/messages/{self.message_id}/reply"
        return url, part.payload, {"Authorization": f"Bearer {self._bearer}"}

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        return json_code_result(response, latency_ms, code_keys=("code",), message_keys=("msg",),
                                transient={99991400: 1.0, 230020: 1.0})
