"""File channel: append each message to ``<path>/<group-id>.md`` (offline demo, archives).

Each part becomes one entry: a separator line, an HTML comment with the time
(ISO 8601 with offset), the title and whether everyone was mentioned, then the
Markdown itself. The directory is created if needed, mode 0700 (an existing
one open to others is tightened, a shared one refused); files are created mode
0600 and written with one ``write`` on an ``O_APPEND`` descriptor, so
concurrent writers never interleave within an entry.
"""

from __future__ import annotations

import errno
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import ValidationInfo, field_validator

from broadcaster.channels import register
from broadcaster.channels.base import Channel, ChannelConfig, Limit, Part, SendResult
from broadcaster.delivery.markdown import utf8_len
from broadcaster.store.base import StoreError
from broadcaster.store.durable import make_dirs

type_name = "file"
LIMIT = Limit(1_000_000, "bytes")
SEPARATOR = "---"
TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EAGAIN, errno.EINTR, errno.EIO, errno.EDQUOT}


class Config(ChannelConfig):
    type: Literal["file"] = "file"
    path: str  # a directory; relative to the root given as validation context ``root``

    @field_validator("path")
    @classmethod
    def _path(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("path must name a directory")
        root = (info.context or {}).get("root")
        return str(Path(root) / value) if root is not None else value


@register(type_name)
class FileChannel(Channel):
    type_name = type_name
    Config = Config
    limit = LIMIT
    dialect = None  # the Markdown source, as editors wrote it
    preview: ClassVar = {"path": "var/preview"}

    def __init__(self, config: Config, group_id: str, session=None, tz=None, **_ignored):
        super().__init__(config, group_id, session, tz)
        if Path(group_id).name != group_id or group_id.startswith("."):
            raise ValueError("a group id cannot be used as a file name")

    def target(self) -> Path:
        return Path(self.config.path) / f"{self.group_id}.md"

    def robot_key(self) -> str:
        return f"file:{self.target()}"

    def build_part(self, md: str, title: str, mention_all: bool) -> Part:
        payload = {"markdown": md, "title": title, "mention_all": mention_all}
        return Part(payload, md, utf8_len(md), LIMIT.size)

    def send(self, part: Part) -> SendResult:
        start = time.monotonic()
        stamp = datetime.now(self.tz).astimezone(self.tz).isoformat(timespec="seconds")
        meta = json.dumps({"title": part.payload.get("title", ""),
                           "mention_all": part.payload.get("mention_all", False)},
                          ensure_ascii=False)
        entry = f"{SEPARATOR}\n<!-- {stamp} {meta} -->\n{part.text.rstrip()}\n\n"
        try:
            target = self.target()
            make_dirs(target.parent)   # 0700, like the files in it (a 0777 one is tightened)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, entry.encode("utf-8"))
            finally:
                os.close(fd)
        except StoreError as exc:   # a directory shared with others: refused
            return SendResult("permanent", reason=str(exc), latency_ms=(time.monotonic() - start) * 1000)
        except OSError as exc:
            outcome = "transient" if exc.errno in TRANSIENT_ERRNOS else "permanent"
            return SendResult(outcome, reason=f"cannot write {self.target()}: {exc.strerror}",
                              code=errno.errorcode.get(exc.errno or 0),
                              latency_ms=(time.monotonic() - start) * 1000)
        return SendResult("sent", latency_ms=(time.monotonic() - start) * 1000)
