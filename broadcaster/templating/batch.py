"""One template rendered for many groups: each distinct message rendered once.

A fan-out renders the same template for thousands of groups. A template that
never reads ``group`` (nor does any template it includes, imports or extends)
and uses no ``random`` filter gives a message that depends only on the rest of
its context: ``now`` in the group's timezone (``today`` is made from it) and the
kind's data. The context filters read nothing but ``now`` (see
``broadcaster.templating.filters``). So groups alike in those get the message
rendered for the first of them: the same text, character for character, that
rendering it again would give. Anything else is rendered per group: a template
that reads ``group``, one that includes a template chosen at render time, data
holding values other than text, numbers, booleans and ``None``.

The template a group uses (its own override, its channel's variant) is resolved
once per distinct (name, override, channel, festival).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError as JinjaError
from jinja2 import meta, nodes

from broadcaster.templating.context import local_now
from broadcaster.templating.templates import festival_of

if TYPE_CHECKING:
    from broadcaster.config.groups import Group
    from broadcaster.templating.resolve import Resolution, TemplateFile
    from broadcaster.templating.templates import Templates

_SCALARS = (str, int, float, bool, type(None))


def freeze(value: Any) -> Any:
    """A hashable key equal only for values a template prints alike; None when there is none.

    Types are part of the key (``1``, ``1.0`` and ``True`` print differently, and so do a
    list and a tuple), and only these exact types have one (a subclass may print otherwise
    than its equal: an enum's member, a ``defaultdict``); numbers by their ``repr``
    (``-0.0`` is not ``0.0``).
    """
    kind = type(value)
    if kind is str:
        return (str, value)
    if kind in _SCALARS:
        return (kind, repr(value))
    if kind is dict:
        items = []
        for k, v in value.items():
            frozen_k, frozen_v = freeze(k), freeze(v)
            if frozen_k is None or frozen_v is None:
                return None
            items.append((frozen_k, frozen_v))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        frozen = tuple(freeze(v) for v in value)
        return None if any(f is None for f in frozen) else (kind, frozen)
    return None


class RenderBatch:
    """``render`` as ``Templates.render``, for many groups of one fan-out (module docstring).

    Keeps what it rendered: make one per fan-out, so that an edited template is
    read again by the next one.
    """

    def __init__(self, templates: Templates):
        self.templates = templates
        self._resolved: dict[tuple, Resolution] = {}
        self._group_free: dict[str, bool] = {}
        self._texts: dict[tuple, str] = {}

    def render(self, name: str, *, group: Group, data: dict[str, Any], now: datetime,
               festival: str | None = None, channel: str | None = None) -> str:
        t = self.templates
        festival = festival_of(data, festival)
        how = (name, group.templates.get(name), channel or group.channel_type, festival)
        resolution = self._resolved.get(how)
        if resolution is None or resolution.file is None:
            resolution = t.resolve(name, group=group, channel=channel, festival=festival)
            self._resolved[how] = resolution
        tf = resolution.file
        frozen = freeze(data) if tf is not None and self._free(tf) else None
        if frozen is None:
            return t.render_resolved(resolution, group=group, data=data, now=now)
        moment = local_now(group, now)
        key = (tf.filename, resolution.kind, moment.isoformat(), moment.tzinfo, frozen)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = t.render_file(tf, kind=resolution.kind, group=group,
                                                    data=data, now=now)
        return text

    def _free(self, tf: TemplateFile) -> bool:
        """Whether ``tf`` renders alike for every group (module docstring)."""
        free = self._group_free.get(tf.filename)
        if free is None:
            free = self._group_free[tf.filename] = self._reads_no_group(tf.filename, set())
        return free

    def _reads_no_group(self, filename: str, seen: set[str]) -> bool:
        if filename in seen:
            return True
        seen.add(filename)
        env = self.templates.env
        try:
            source, _, _ = env.loader.get_source(env, filename)   # type: ignore[union-attr]
            ast = env.parse(source)
        except (JinjaError, OSError, UnicodeError):    # rendering says what is wrong
            return False
        if "group" in meta.find_undeclared_variables(ast):
            return False
        if any(f.name == "random" for f in ast.find_all(nodes.Filter)):
            return False
        for name in meta.find_referenced_templates(ast):
            if name is None or not self._reads_no_group(name, seen):
                return False
        return True
