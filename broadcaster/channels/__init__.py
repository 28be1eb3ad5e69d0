"""Channel adapters: an explicit registry filled by ``@register("name")``.

Adding a channel is one file in this package plus one line in ``BUILTIN``.
Modules are imported on first use, so a pass that sends nothing loads none.
"""

from __future__ import annotations

import importlib

from broadcaster.channels.base import Channel

BUILTIN = {
    "wecom": "broadcaster.channels.wecom",
    "dingtalk": "broadcaster.channels.dingtalk",
    "feishu": "broadcaster.channels.feishu",
    "lark": "broadcaster.channels.feishu",
    "telegram": "broadcaster.channels.telegram",
    "slack": "broadcaster.channels.slack",
    "discord": "broadcaster.channels.discord",
    "webhook": "broadcaster.channels.webhook",
    "file": "broadcaster.channels.file",
}

_REGISTRY: dict[str, type[Channel]] = {}


def register(type_name: str):
    """Class decorator: make ``cls`` the adapter for ``type_name``."""

    def deco(cls: type[Channel]) -> type[Channel]:
        _REGISTRY[type_name] = cls
        return cls

    return deco


def channel_types() -> list[str]:
    return sorted(BUILTIN)


def get(type_name: str) -> type[Channel]:
    """The adapter class for ``type_name``; KeyError if there is none."""
    if type_name not in _REGISTRY:
        module = BUILTIN[type_name]  # KeyError for an unknown type
        importlib.import_module(module)
    return _REGISTRY[type_name]
