"""The validated groups of ``groups.yaml``, kept between processes, never a secret in them.

Validating a group costs more than reading it: its channel's module is
imported, its robot URL parsed and checked as the HTTP client will send it.
With 2,000 groups that was most of ``announce``'s and ``run-once``'s own time,
paid again by every process. ``GroupCache`` keeps, per group, what validation
made of it, and serves it to the next process whose entry is the same.

- An entry is found by a keyed digest (BLAKE2b, a MAC) of the group's entry as interpolated (its
  ``${VAR}`` values from the environment included) and the root (a ``file``
  channel's directory is relative to it), so a changed variable, a changed
  line or another root is a miss: that group alone is validated again.
- The key of that digest is random, made with the cache; the whole file is
  checked (``kept.CheckedCache``: a digest of this code, of the libraries
  that validate, and of the data), so a file edited by hand, damaged, or left
  by another version is ignored and rewritten.
- What is kept: the group's fields as validated and its channel's fields
  *except* its secret ones (``ChannelConfig.secret_fields``). A secret field
  is kept only as the fact that its validated value is the entry's own value,
  which the next process takes from its own interpolated entry. A channel whose
  validation changed a secret (a URL re-assembled by the parser) is not kept.
- Only valid groups are kept: a group left out (an unset variable, a bad
  channel) is validated each time, so its problem is reported as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from broadcaster.config.kept import CheckedCache

if TYPE_CHECKING:
    from broadcaster.channels.base import ChannelConfig
    from broadcaster.config.groups import GroupSpec

_TEXT = json.JSONEncoder(ensure_ascii=False)    # made once: thousands of entries to digest
KIND = "valid"
KEY_BYTES = 32
_SOURCES = ("config", "channels", "net")   # the code a group's validation runs


@functools.cache
def code_version() -> str:
    """A digest of the code that validates a group and of pydantic's version."""
    import pydantic  # start-up time: loaded when first used (already by the models)

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(pydantic.VERSION.encode())
    for folder in _SOURCES:
        for source in sorted((package / folder).glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


class GroupCache:
    """``get(entry)`` the validated (spec, channel) of an interpolated group entry, or None;
    ``keep(entry, spec, channel)`` after validating one; ``save()`` when all are seen."""

    def __init__(self, cache_dir: Path, path: Path, root: Path):
        self._file = CheckedCache.beside(cache_dir, path, code_version(), KIND)
        self._root = str(root)
        doc = self._file.load()
        try:
            self._key = bytes.fromhex(doc["key"])
            self._old: dict[str, Any] = doc["groups"]
            if len(self._key) != KEY_BYTES or not isinstance(self._old, dict):
                raise ValueError("not a cache of this shape")
        except (TypeError, KeyError, ValueError):
            self._key, self._old = secrets.token_bytes(KEY_BYTES), {}    # a new cache
        self._new: dict[str, Any] = {}
        self._changed = False
        self._locations: dict[tuple, Any] = {}    # alike locations: one (frozen) object

    def _digest(self, entry: dict) -> str | None:
        try:
            text = _TEXT.encode([self._root, entry])
        except (TypeError, ValueError):
            return None     # a date or other non-JSON value: validated every time
        return hashlib.blake2b(text.encode("utf-8"), key=self._key, digest_size=32).hexdigest()

    def get(self, entry: dict) -> tuple[SimpleNamespace, ChannelConfig] | None:
        """The kept group: its spec's fields as validated (a namespace, as cheap to make as
        a tuple: thousands of groups) and its channel config, secrets from ``entry``."""
        digest = self._digest(entry)
        kept = self._old.get(digest) if digest is not None else None
        if kept is None:
            return None
        try:
            made = _rebuild(kept, entry, self._locations)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None     # a shape this code did not write: validated again
        self._new[digest] = kept
        return made

    def keep(self, entry: dict, spec: GroupSpec, channel: ChannelConfig) -> None:
        digest = self._digest(entry)
        kept = _keepable(entry, spec, channel) if digest is not None else None
        if kept is not None:
            self._new[digest] = kept
            self._changed = True

    def save(self) -> None:
        """Write what this load used, when it differs from what was read."""
        if self._changed or self._new.keys() != self._old.keys():
            self._file.store({"key": self._key.hex(), "groups": self._new})


def _keepable(entry: dict, spec: GroupSpec, channel: ChannelConfig) -> dict | None:
    """What to keep of a valid group: everything but its secrets, or None."""
    raw = entry.get("channel")
    fields = channel.model_dump()
    own = []
    for name in type(channel).secret_fields:
        value = fields.pop(name, None)
        if value is None:
            fields[name] = None
        elif isinstance(raw, dict) and raw.get(name) == value:
            own.append(name)
        else:
            return None     # validation changed a secret: it would have to be kept
    location = spec.location
    return {
        "spec": spec.model_dump(exclude={"channel", "location"}),
        "location": None if location is None else [location.model_dump(),
                                                   sorted(location.model_fields_set)],
        "channel": fields, "channel_set": sorted(channel.model_fields_set), "own": own,
    }


@functools.cache
def _field_names(model: type) -> frozenset[str]:
    return frozenset(model.model_fields)


def _rebuild(kept: dict, entry: dict, locations: dict[tuple, Any]
             ) -> tuple[SimpleNamespace, ChannelConfig]:
    """``locations``: the locations made so far, by their values (frozen: groups share them)."""
    from broadcaster import channels  # start-up time: loaded when first used
    from broadcaster.config.groups import GroupSpec, Location

    raw = entry["channel"]
    fields = dict(kept["channel"])
    for name in kept["own"]:
        fields[name] = raw[name]
    config = channels.get(fields["type"]).Config
    if not (fields.keys() <= _field_names(config)
            and kept["spec"].keys() <= _field_names(GroupSpec)):
        raise KeyError("a field this code does not have")
    channel = config.model_construct(_fields_set=set(kept["channel_set"]), **fields)
    location = None
    if kept["location"] is not None:
        values, fields_set = kept["location"]
        key = (*((k, repr(v)) for k, v in values.items()), None, *fields_set)   # -0.0 is not 0.0
        location = locations.get(key)
        if location is None:
            location = locations[key] = Location.model_construct(_fields_set=set(fields_set),
                                                                 **values)
    return SimpleNamespace(**kept["spec"], channel=raw, location=location), channel
