"""Channel adapters: one module per platform, each the whole channel, registering itself.

A channel module declares everything about its platform (see ``base``): its
``Config`` with secret fields marked, size limit, rate limits, the Markdown
dialect it writes, a placeholder robot for previews, and ``build_part``/``send``.
It registers its class with ``@register("type")``. The modules of this package
are found by listing it, so adding a platform is one file here plus its tests; a
channel defined elsewhere is found once its module is imported. They are
imported on first use, so a pass that sends nothing loads none, and one that
sends to WeCom alone loads WeCom's.
"""

from __future__ import annotations

import importlib
import pkgutil

from broadcaster.channels.base import Channel

_REGISTRY: dict[str, type[Channel]] = {}
_loaded = False


def register(type_name: str):
    """Class decorator: make ``cls`` the adapter for ``type_name``."""

    def deco(cls: type[Channel]) -> type[Channel]:
        _REGISTRY[type_name] = cls
        return cls

    return deco


def unregister(type_name: str) -> None:
    """Forget the adapter for ``type_name``."""
    _REGISTRY.pop(type_name, None)


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")


def channel_types() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get(type_name: str) -> type[Channel]:
    """The adapter class for ``type_name``; KeyError if there is none.

    The module named like the type is tried first (a pass to WeCom groups
    imports the WeCom adapter alone); every module is imported otherwise.
    """
    if (type_name not in _REGISTRY and isinstance(type_name, str) and type_name.isidentifier()
            and not type_name.startswith("_")):
        try:
            importlib.import_module(f"{__name__}.{type_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{type_name}":
                raise
    if type_name not in _REGISTRY:
        _load()
    return _REGISTRY[type_name]
