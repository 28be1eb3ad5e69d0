"""Generic webhook: ``POST url`` with one JSON document per part.

The body (UTF-8 JSON)::

    {"group": "<group id>", "title": "…", "text": "<Markdown of this part>",
     "part": 1, "parts": 2, "mention_all": false, "sent_at": "<ISO 8601>"}

``text`` is the part's Markdown without its ``(1/2)`` number (``part`` and
``parts`` carry it). With a ``secret``, the header
``X-Broadcaster-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes, keyed by the secret; ``sent_at`` is inside the signed body, so a
receiver can refuse replays. Any 2xx is success; 408, 429 and 5xx are
retried (honouring ``Retry-After``); other statuses are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Hashable
from datetime import datetime
from typing import ClassVar, Literal

from broadcaster.channels import register
from broadcaster.channels.base import ChannelConfig, Limit, Part
from broadcaster.channels.http import HttpChannel, HttpsUrl, encode_json
from broadcaster.delivery.splitting import parse_label

type_name = "webhook"
LIMIT = Limit(65_536, "body_bytes")
SIGNATURE_HEADER = "X-Broadcaster-Signature"


class Config(ChannelConfig):
    type: Literal["webhook"] = "webhook"
    url: HttpsUrl
    secret: str | None = None

    secret_fields = ("url", "secret")


def signature(secret: str, body: bytes) -> str:
    """The ``X-Broadcaster-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register(type_name)
class WebhookChannel(HttpChannel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    dialect = None  # receivers get the Markdown source
    preview: ClassVar = {"url": "https://example.org/broadcaster/preview"}

    def layout(self) -> Hashable:
        return (*super().layout(), len(encode_json(self.group_id)))  # every body names the group

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        index, total, text = parse_label(md)
        payload = {"group": self.group_id, "title": title, "text": text, "part": index,
                   "parts": total, "mention_all": mention_all}
        size = len(encode_json({**payload, "sent_at": "2000-01-01T00:00:00.000000+00:00"}))
        return Part(payload, md, size, LIMIT.size)

    def request(self, part: Part) -> tuple[str, bytes, dict[str, str]]:
        body = encode_json({**part.payload, "sent_at": datetime.now().astimezone().isoformat()})
        headers = {}
        if self.config.secret:
            headers[SIGNATURE_HEADER] = signature(self.config.secret, body)
        return self.config.url, body, headers
