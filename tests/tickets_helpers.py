"""Shared by the work-order tests: a root with groups, staff and tickets.yaml; messages."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

TICKETS_YAML = """\
categories:
  - id: sanitation
    name: 卫生
    keywords: [卫生, 垃圾, 脏乱]
    deadline: 2 workdays
    urgent: {keywords: [污水外溢], deadline: 8h}
  - id: repair
    name: 设施报修
    keywords: [路灯, 电梯, 报修]
    deadline: 3 workdays
    urgent: {keywords: [困人], deadline: 2h}
  - id: safety
    name: 安全隐患
    keywords: [消防通道]
    deadline: 1 workdays
    urgent: {keywords: [燃气, 着火], deadline: 4h}
"""


def write_tickets_root(root: Path, *, group_channels: dict[str, dict] | None = None,
                       staff_channels: dict[str, dict] | None = None, fallback: bool = True,
                       tickets_yaml: str = TICKETS_YAML, quiet: str | None = None) -> None:
    """Three groups (two communities and an uncovered one), three staff, tickets.yaml.

    Channels default to the file channel (``out/`` for groups, ``staff/`` for staff).
    """
    gc = group_channels or {}
    sc = staff_channels or {}
    file_group = {"type": "file", "path": "out"}
    file_staff = {"type": "file", "path": "staff"}
    groups = [
        {"id": "hlz-g01", "name": "汇林绿洲第1网格群", "channel": gc.get("hlz-g01", file_group),
         "tags": ["district:gulou", "community:huilinlvzhou", "kind:grid"]},
        {"id": "huju-g01", "name": "虎踞第1网格群", "channel": gc.get("huju-g01", file_group),
         "tags": ["district:gulou", "community:huju", "kind:grid"]},
        {"id": "volunteers", "name": "志愿者群", "channel": gc.get("volunteers", file_group),
         "tags": ["district:qinhuai", "kind:function"]},
    ]
    staff = [
        {"id": "wang-li", "name": "王丽", "covers": ["community:huilinlvzhou"],
         "channel": sc.get("wang-li", file_staff), "supervisor": "zhang-hua"},
        {"id": "li-qiang", "name": "李强", "covers": ["community:huju"],
         "channel": sc.get("li-qiang", file_staff), "supervisor": "zhang-hua"},
        {"id": "zhang-hua", "name": "张华", "covers": [],
         "channel": sc.get("zhang-hua", file_staff)},
    ]
    defaults: dict[str, Any] = {"timezone": "Asia/Shanghai", "quiet_hours": quiet}
    if fallback:
        defaults["tickets"] = {"fallback": "zhang-hua", "digest_at": "08:30"}
    doc = {"defaults": defaults, "groups": groups, "staff": staff}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
    (root / "tickets.yaml").write_text(textwrap.dedent(tickets_yaml), encoding="utf-8")


@dataclass
class Msg:
    """A resident message with InboundMessage's attributes."""

    text: str
    group_id: str = "hlz-g01"
    message_id: str = "m1"
    sender_id: str = "u-zhao"
    sender_name: str = "赵大爷"
    platform: str = "generic"
    chat: str = "hlz-g01"
    addressed: bool = False
    is_bot: bool = False
    received_at: datetime | None = None
    reply_route: dict | None = field(default=None)
