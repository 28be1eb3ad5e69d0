"""Times and durations as staff type them: ``--at``, ``--expires``, ``--since``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from broadcaster.errors import InputError

_DURATION = re.compile(r"^\+?(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, option: str = "duration") -> timedelta:
    """``30m``, ``2h``, ``1d``, ``+45s``, ``1w``."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise InputError(f"{option}: invalid duration {text!r} (use e.g. 30m, 2h, 1d)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


_AT_FORMS = "use 'YYYY-MM-DD HH:MM', 'HH:MM' or +30m/+2h/+1d"


def parse_at(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """``YYYY-MM-DD HH:MM``, ``HH:MM`` (next occurrence) or ``+30m``/``+2h``/``+1d``.

    A time in the past is an error: an announcement queued for it would only expire.
    """
    raw = text.strip()
    if raw.startswith("+"):
        return now + parse_duration(raw, option="--at")
    local_now = now.astimezone(tz)
    if m := re.fullmatch(r"(\d{1,2}):(\d{2})", raw):
        hh, mm = int(m.group(1)), int(m.group(2))
        if hh > 23 or mm > 59:
            raise InputError(f"--at: {text!r} is not a time of day ({_AT_FORMS})")
        when = local_now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        if when <= local_now:
            when = (local_now + timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
        return when.replace(tzinfo=None).replace(tzinfo=tz)
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})", raw):
        try:
            when = datetime(*(int(x) for x in m.groups()), tzinfo=tz)
        except ValueError:
            raise InputError(f"--at: {text!r} is not a real date and time ({_AT_FORMS})") from None
        if when <= now:
            raise InputError(f"--at: {raw} is in the past (now {iso(local_now)[:16].replace('T', ' ')}); "
                             "leave --at out to send now")
        return when
    raise InputError(f"--at: invalid time {text!r} ({_AT_FORMS})")


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 with offset, seconds precision."""
    return None if dt is None else dt.isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)
