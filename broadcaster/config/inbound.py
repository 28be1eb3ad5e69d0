"""``inbound:`` in groups.yaml: the credentials residents' messages are verified with.

Each platform's section is optional; a platform without one has no endpoint
(its requests get 404). Every credential is a secret: it is redacted wherever
the config is printed, and a file holding one inline is never cached.

``chats:`` ids of a group are ``<platform>:<the platform's conversation id>``;
``check_chat`` validates one.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from broadcaster.net.urls import UrlRefused, check_webhook_url

PLATFORMS = ("dingtalk", "feishu", "wecom", "telegram", "slack", "generic")
_CHAT = re.compile(r"^(dingtalk|feishu|wecom|telegram|slack|generic):(\S{1,200})$")
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def check_chat(value: str) -> str:
    """``dingtalk:cid…``, ``feishu:oc_…``, ``wecom:…``, ``telegram:-100…``, ``slack:C…``, ``generic:…``."""
    if not isinstance(value, str) or not _CHAT.match(value):
        raise ValueError(f"chat {value!r} must be <platform>:<id> with platform one of "
                         f"{', '.join(PLATFORMS)}")
    if value.startswith("telegram:") and not re.fullmatch(r"-?\d+", value.split(":", 1)[1]):
        raise ValueError(f"chat {value!r}: a Telegram chat id is a number (negative for groups)")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    secret_fields: ClassVar[tuple[str, ...]] = ()

    def secrets(self) -> list[str]:
        return [str(v) for name in self.secret_fields if (v := getattr(self, name, None))]


class DingTalkInbound(_Section):
    app_secret: str

    secret_fields = ("app_secret",)


class FeishuInbound(_Section):
    verification_token: str
    encrypt_key: str | None = None
    app_id: str | None = None
    app_secret: str | None = None
    api_base: str = "https://open.feishu.cn"   # Lark: https://open.larksuite.com

    secret_fields = ("verification_token", "encrypt_key", "app_secret")

    @field_validator("api_base")
    @classmethod
    def _base(cls, v: str) -> str:
        try:
            check_webhook_url(v)
        except UrlRefused as exc:
            raise ValueError(f"api_base {exc}") from None
        return v.rstrip("/")


class WeComInbound(_Section):
    token: str
    encoding_aes_key: str
    receive_id: str = ""   # empty for the intelligent robot; the corp id for a self-built app

    secret_fields = ("token", "encoding_aes_key")

    @field_validator("encoding_aes_key")
    @classmethod
    def _key(cls, v: str) -> str:
        if len(v) != 43:
            raise ValueError("the EncodingAESKey is 43 characters long")

        try:
            base64.b64decode(v + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the EncodingAESKey must be base64 (A-Z, a-z, 0-9, +, /)") from None
        return v


class TelegramInbound(_Section):
    secret_token: str | None = None
    mode: Literal["webhook", "poll"] | None = None

    secret_fields = ("secret_token",)

    @field_validator("secret_token")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and not _TELEGRAM_SECRET.match(v):
            raise ValueError("a Telegram secret_token is 1-256 of A-Z, a-z, 0-9, _ and -")
        return v

    @property
    def effective_mode(self) -> str:
        return self.mode or ("webhook" if self.secret_token else "poll")


class SlackInbound(_Section):
    signing_secret: str

    secret_fields = ("signing_secret",)


class GenericInbound(_Section):
    secret: str

    secret_fields = ("secret",)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, v: str) -> str:
        if len(v) < 16:
            raise ValueError("the bridge secret must be at least 16 characters")
        return v


class InboundConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    dingtalk: DingTalkInbound | None = None
    feishu: FeishuInbound | None = None
    wecom: WeComInbound | None = None
    telegram: TelegramInbound | None = None
    slack: SlackInbound | None = None
    generic: GenericInbound | None = None

    def secrets(self) -> list[str]:
        out: list[str] = []
        for name in PLATFORMS:
            section = getattr(self, name)
            if section is not None:
                out.extend(section.secrets())
        return out

    def platforms(self) -> list[str]:
        """The platforms that have credentials, i.e. an endpoint."""
        return [name for name in PLATFORMS if getattr(self, name) is not None]


_SECTIONS: dict[str, type[_Section]] = {
    "dingtalk": DingTalkInbound, "feishu": FeishuInbound, "wecom": WeComInbound,
    "telegram": TelegramInbound, "slack": SlackInbound, "generic": GenericInbound,
}


def secret_inbound_fields(raw: Any, env_only: re.Pattern) -> bool:
    """True if every secret of ``inbound:`` as written is a bare ``${NAME}`` (or absent)."""
    if not isinstance(raw, dict):
        return True
    for name, section in raw.items():
        cls = _SECTIONS.get(name)
        if cls is None or not isinstance(section, dict):
            continue
        for fname in cls.secret_fields:
            value = section.get(fname)
            if value is not None and not (isinstance(value, str) and env_only.match(value)):
                return False
    return True
