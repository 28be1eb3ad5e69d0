"""A project root wired for inbound: one group per platform, robots on the simulator.

``world(root, sim)`` writes groups.yaml (credentials for every platform, the
Feishu API pointed at the simulator), the shipped faq/, and returns the
secrets and robots a test needs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import REPO

SECRETS = {
    "dingtalk": "dt-app-secret-0123456789",
    "feishu_token": "fs-verification-token",
    "feishu_key": "fs-encrypt-key-abc",
    "feishu_app_id": "cli_demo_app",
    "feishu_app_secret": "fs-app-secret-xyz",
    "wecom_token": "QDG6eK",
    "wecom_aes": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "telegram": "tg-secret_token-42",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "generic": "bridge-secret-0123456789abcdef",
}
CHATS = {"dingtalk": "cidDT001", "feishu": "oc_fs001", "wecom": "wrkWC001", "telegram": "-100123",
         "slack": "C0SLACK1", "generic": "bridge-g1"}


@dataclass
class World:
    root: Path
    robots: dict = field(default_factory=dict)     # platform -> the group's own robot
    group_of: dict = field(default_factory=dict)   # platform -> group id


def world(root: Path, sim, *, faq: bool = True, extra_groups: list[dict] | None = None,
          inbound: dict | None = None) -> World:
    w = World(root)
    groups = []
    for platform in ("dingtalk", "feishu", "wecom", "telegram", "slack", "generic"):
        channel_platform = "webhook" if platform == "generic" else platform
        options = {"chats": {CHATS["telegram"]}} if platform == "telegram" else {}
        robot = sim.add_robot(channel_platform, **options)
        w.robots[platform] = robot
        gid = f"g-{platform}"
        w.group_of[platform] = gid
        groups.append({"id": gid, "name": f"{platform}网格群", "tags": [f"platform:{platform}", "kind:grid"],
                       "channel": robot.config(), "chats": [f"{platform}:{CHATS[platform]}"],
                       "quiet_hours": "00:00-23:59"})
    groups.extend(extra_groups or [])
    config = {
        "defaults": {"timezone": "Asia/Shanghai", "faq": {"threshold": 0.45, "cooldown": "10m"}},
        "inbound": inbound or {
            "dingtalk": {"app_secret": SECRETS["dingtalk"]},
            "feishu": {"verification_token": SECRETS["feishu_token"], "encrypt_key": SECRETS["feishu_key"],
                       "app_id": SECRETS["feishu_app_id"], "app_secret": SECRETS["feishu_app_secret"],
                       "api_base": sim.base_url},
            "wecom": {"token": SECRETS["wecom_token"], "encoding_aes_key": SECRETS["wecom_aes"]},
            "telegram": {"secret_token": SECRETS["telegram"]},
            "slack": {"signing_secret": SECRETS["slack"]},
            "generic": {"secret": SECRETS["generic"]},
        },
        "groups": groups,
    }
    (root / "groups.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
    if faq and not (root / "faq").exists():
        shutil.copytree(REPO / "faq", root / "faq")
    return w


@contextmanager
def served_world(root: Path) -> Iterator[tuple]:
    """(simulator, world, InboundClient, App, ServerThread), all running on loopback."""
    from broadcaster.app import App
    from broadcaster.inbound.server import ServerThread
    from tests.simulator import PlatformSimulator
    from tests.simulator_inbound import InboundClient

    with PlatformSimulator() as sim:
        w = world(root, sim)
        app = App(root)
        with ServerThread(app) as server:
            yield sim, w, InboundClient(server.url), app, server
