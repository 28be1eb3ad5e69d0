"""Telegram Bot API: ``POST {api_base}/bot<TOKEN>/sendMessage`` with ``parse_mode=HTML``.

Text is at most 4096 characters *after entity parsing* (the visible text,
counted here in UTF-16 units, which is never less). Errors carry the HTTP
status in ``error_code``; 429 says how long to wait in ``parameters.retry_after``.
Telegram has no @all: ``mention_all`` is accepted and does nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import field_validator

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part, RateLimit, SendResult
from broadcaster.channels.http import (
    HttpChannel,
    HttpsUrl,
    garbled_result,
    http_status_result,
    parse_retry_after,
    response_json,
)
from broadcaster.delivery.markdown import telegram_visible_text, utf16_len

if TYPE_CHECKING:
    import requests

type_name = "telegram"
LIMIT = Limit(4096, "chars")
PER_CHAT = RateLimit(20, 60.0)
PER_BOT = RateLimit(30, 1.0)
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class Config(ChannelConfig):
    type: Literal["telegram"] = "telegram"
    token: str
    chat_id: int | str
    api_base: HttpsUrl = "https://api.telegram.org"

    secret_fields = ("token",)

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError("a bot token looks like 123456789:AA…")
        return value


@register(type_name)
class TelegramChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    dialect = "telegram"
    preview: ClassVar = {"token": "123456:preview", "chat_id": "-1000000000000"}

    def credential(self) -> str:
        return self.config.token

    @property
    def chat_id(self) -> str:
        """The chat this group is, as the Bot API writes it in updates."""
        return str(self.config.chat_id)

    def api_url(self, method: str) -> str:
        """The Bot API URL of ``method`` for this group's bot (it holds the token: a secret)."""
        return f"{self.config.api_base.rstrip('/')}/bot{self.config.token}/{method}"

    def robot_key(self) -> str:
        """Per chat: Telegram's ~20 a minute is per group; ``rate_limits`` adds the bot's own."""
        return f"{super().robot_key()}:{self.config.chat_id}"

    def rate_limits(self) -> list[tuple[str, RateLimit]]:
        return [(self.robot_key(), PER_CHAT), (super().robot_key(), PER_BOT)]

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        text = self.in_dialect(md)  # no @all on Telegram: mention_all does nothing
        payload = {
            "chat_id": self.config.chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        return Part(payload, text, utf16_len(telegram_visible_text(text)), LIMIT.size)

    def request(self, part: Part) -> tuple[str, Any, None]:
        return self.api_url("sendMessage"), part.payload, None

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        data = response_json(response)
        if not isinstance(data, dict) or "ok" not in data:
            return garbled_result(response, latency_ms) or http_status_result(response, latency_ms)
        if data["ok"]:
            return SendResult("sent", http_status=response.status_code, latency_ms=latency_ms)
        status = int(data.get("error_code") or response.status_code)
        reason = str(data.get("description") or f"HTTP {status}")
        params = data.get("parameters") or {}
        if "migrate_to_chat_id" in params:
            reason += f" (the group is now chat_id {params['migrate_to_chat_id']})"
        if status == 429 or status >= 500:
            retry = params.get("retry_after")
            if isinstance(retry, int | float):
                retry = float(retry)
            else:
                retry = parse_retry_after(response.headers.get("Retry-After"))
            return SendResult("transient", reason=reason, http_status=status, code=str(status),
                              retry_after=retry, latency_ms=latency_ms)
        return SendResult("permanent", reason=reason, http_status=status, code=str(status),
                          latency_ms=latency_ms)
