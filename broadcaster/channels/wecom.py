"""WeCom (企业微信) group robot: ``POST …/cgi-bin/webhook/send?key=KEY``.

The key in the URL is the only credential. Markdown content is at most 4096
UTF-8 bytes, text content 2048. Markdown cannot mention @all, so a message
that must notify everyone is followed by a short text part that does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import HttpChannel, json_code_result, query_param, robot_url
from broadcaster.delivery.markdown import utf8_len
from broadcaster.delivery.splitting import SplitCache

if TYPE_CHECKING:
    import requests

type_name = "wecom"
MARKDOWN_LIMIT = Limit(4096, "bytes")
TEXT_LIMIT = Limit(2048, "bytes")  # some servers allow 5120; the documented 2048 is safe
RATE = RateLimit(20, 60.0)         # per robot
TRANSIENT = {45009: 60.0, -1: None}  # api freq out of limit; system busy
MENTION_TEXT = "请大家查看上方消息"


class Config(ChannelConfig):
    type: Literal["wecom"] = "wecom"
    url: robot_url("key")
    format: Literal["markdown", "text"] = "markdown"

    secret_fields = ("url",)


@register(type_name)
class WeComChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = MARKDOWN_LIMIT
    rate_limit = RATE
    dialect = "wecom"
    preview: ClassVar = {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=preview"}

    def __init__(self, config: Config, group_id: str, session=None, **kwargs):
        super().__init__(config, group_id, session, **kwargs)
        if config.format == "text":
            self.limit = TEXT_LIMIT
            self.dialect = "plain"

    def credential(self) -> str:
        return query_param(self.config.url, "key")

    def render(self, markdown: str, *, title: str, mention_all: bool = False,
               splits: SplitCache | None = None) -> list[Part]:
        parts = super().render(markdown, title=title, mention_all=mention_all, splits=splits)
        if mention_all and self.config.format == "markdown":
            parts.append(self._text(f"{MENTION_TEXT}：{title}" if title else MENTION_TEXT, True))
        return parts

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        if self.config.format == "text":
            return self._text(self.in_dialect(md), mention_all)
        content = self.in_dialect(md)  # markdown cannot mention: render() adds a text part for that
        payload = {"msgtype": "markdown", "markdown": {"content": content}}
        return Part(payload, content, utf8_len(content), MARKDOWN_LIMIT.size)

    def _text(self, content: str, mention_all: bool) -> Part:
        text: dict = {"content": content}
        if mention_all:
            text["mentioned_list"] = ["@all"]
        return Part({"msgtype": "text", "text": text}, content, utf8_len(content), TEXT_LIMIT.size)

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        return json_code_result(response, latency_ms, transient=TRANSIENT)
