"""Events: staff-written ``items`` and iCalendar feeds (RRULE and TZID honoured).

Declares:
- content ``events`` (``Events`` below): options ``days_ahead`` (a week ahead by default),
  ``reminder`` (the day before each event, once), ``feeds``; renders ``events``;
- config: ``feeds/*.yaml`` ``events:`` entries (``EventFeed``: ``id``, ``to`` selectors,
  and either ``ics`` — http(s), ``file:`` or a path — or ``items``);
- requests: one GET per calendar per run (timeouts, size cap ``MAX_BYTES``);
- times: ``items`` times are in the default timezone; calendar times keep their
  TZID (floating times are read in the default timezone); recurrences are
  expanded with recurring_ical_events, within bounds (``sources.recurrence``:
  an event repeating by the second or minute, or more than 100 times in the
  window, is skipped with a warning naming it) and at most ``MAX_PER_WINDOW``
  occurrences per calendar;
- state: ``event-reminders`` — which groups were reminded of which occurrence.

``EventsSource.between(feed, start, end)`` returns occurrences overlapping
``[start, end)``: dicts with ``uid``, ``feed_id``, ``title``, ``start``, ``end``,
``place``, ``description`` (inert Markdown) and ``all_day``, sorted by start;
what was skipped is added to ``EventsSource.warnings``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from broadcaster.config.fields import Selectors, Slug, SourceUrl
from broadcaster.sources import Source, SourceError, content_hash, safe_text
from broadcaster.sources.kinds import ContentKind, RunContext, Section, TemplateKind, register, sample_at

TITLE_LIMIT = 100
PLACE_LIMIT = 80
DESCRIPTION_LIMIT = 300
DEFAULT_DAYS_AHEAD = 7
MAX_PER_WINDOW = 1_000          # occurrences of one calendar in the window asked for
REMINDERS = "event-reminders"   # state: which groups were reminded of which occurrence


_WHEN = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_when(value: Any) -> datetime | date:
    """``2026-11-28 09:00`` (local time, no zone) or ``2026-11-28`` (all day)."""
    if isinstance(value, date):          # YAML already read it (a datetime is a date too)
        return value
    text = str(value).strip()
    for fmt in _WHEN:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"invalid time {text!r} (use 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD')")


class EventItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    start: datetime | date           # naive: in the default timezone
    end: datetime | date | None = None
    place: str | None = None
    description: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _when(cls, v):
        return None if v is None else parse_when(v)

    @model_validator(mode="after")
    def _order(self):
        if self.end is not None:
            if isinstance(self.start, datetime) != isinstance(self.end, datetime):
                raise ValueError("start and end must both have a time or both be dates")
            if self.end < self.start:
                raise ValueError("end is before start")
        return self


class EventFeed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    to: Selectors
    ics: SourceUrl | None = None     # iCalendar URL, file: URL or path
    items: list[EventItem] | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.ics is None) == (self.items is None):
            raise ValueError("give either `ics:` (a calendar) or `items:` (events listed here)")
        return self


def _aware(value: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    return datetime.combine(value, time(), tz)


def _event(feed_id: str, uid: str, title: str, start, end, place, description, tz) -> dict:
    all_day = not isinstance(start, datetime)
    begin = _aware(start, tz)
    finish = _aware(end, tz) if end is not None else None
    return {
        "uid": uid,
        "feed_id": feed_id,
        "title": title,
        "start": begin,
        "end": finish,
        "place": place or None,
        "description": description or None,
        "all_day": all_day,
    }


def _overlaps(ev: dict, start: datetime, end: datetime) -> bool:
    last = ev["end"] or (ev["start"] + timedelta(days=1) if ev["all_day"] else ev["start"])
    return ev["start"] < end and (last > start or ev["start"] >= start)


class EventsSource(Source):
    """``items`` and calendars; naive and all-day times are read in ``tz``."""

    def __init__(self, root: Path, tz: ZoneInfo, **kw):
        super().__init__(root, **kw)
        self.tz = tz
        self.warnings: list[str] = []   # events skipped, by name, for the job's problems

    def between(self, feed: EventFeed, start: datetime, end: datetime) -> list[dict]:
        """Occurrences of ``feed``'s events overlapping ``[start, end)``, by start time."""
        if feed.items is not None:
            found = [self._item(feed, item) for item in feed.items]
        else:
            found = self._calendar(feed, start, end)
        found = [ev for ev in found if _overlaps(ev, start, end)]
        return sorted(found, key=lambda ev: (ev["start"], ev["title"]))

    def _item(self, feed: EventFeed, item: EventItem) -> dict:
        uid = content_hash(feed.id, item.title, str(item.start))
        return _event(
            feed.id, uid,
            safe_text(item.title, limit=TITLE_LIMIT, html_input=False),
            item.start, item.end,
            safe_text(item.place, limit=PLACE_LIMIT, html_input=False),
            safe_text(item.description, limit=DESCRIPTION_LIMIT, html_input=False),
            self.tz,
        )

    def _calendar(self, feed: EventFeed, start: datetime, end: datetime) -> list[dict]:
        # start-up: a schedules check declares this kind without reading calendars
        import icalendar
        import recurring_ical_events

        from broadcaster.sources.recurrence import bound_recurrences

        got = self.get(feed.ics)
        try:
            calendar = icalendar.Calendar.from_ical(got.body)
            skipped = bound_recurrences(calendar, start, end, self.tz)
            occurrences = recurring_ical_events.of(calendar).between(start, end)
        except Exception as exc:  # icalendar raises ValueError and friends on bad input
            raise SourceError(f"events {feed.id}: not a valid iCalendar file: {exc}") from None
        self.warnings.extend(f"events {feed.id}: {why}" for why in skipped)
        if len(occurrences) > MAX_PER_WINDOW:
            self.warnings.append(f"events {feed.id}: more than {MAX_PER_WINDOW:,} occurrences "
                                 f"between {start:%Y-%m-%d} and {end:%Y-%m-%d}; the first "
                                 f"{MAX_PER_WINDOW:,} are used")
            occurrences = sorted(occurrences, key=lambda c: _starts(c, self.tz))[:MAX_PER_WINDOW]
        out = []
        for comp in occurrences:
            if comp.name != "VEVENT" or str(comp.get("STATUS", "")).upper() == "CANCELLED":
                continue
            dtstart = comp.get("DTSTART")
            if dtstart is None:
                continue
            begin = dtstart.dt
            dtend = comp.get("DTEND")
            finish = dtend.dt if dtend is not None else None
            if finish is None and comp.get("DURATION") is not None:
                finish = begin + comp.get("DURATION").dt
            title = safe_text(str(comp.get("SUMMARY", "")), limit=TITLE_LIMIT)
            if not title:
                continue
            uid = f"{comp.get('UID', '')}@{_aware(begin, self.tz).isoformat()}"
            out.append(_event(
                feed.id, content_hash(feed.id, uid), title, begin, finish,
                safe_text(str(comp.get("LOCATION", "")), limit=PLACE_LIMIT),
                safe_text(str(comp.get("DESCRIPTION", "")), limit=DESCRIPTION_LIMIT),
                self.tz,
            ))
        return out


def _starts(comp, tz: ZoneInfo) -> datetime:
    """An occurrence's start, comparable across all-day, floating and zoned events."""
    dtstart = comp.get("DTSTART")
    return _aware(dtstart.dt, tz) if dtstart is not None else datetime.max.replace(tzinfo=tz)


def for_template(ev: dict) -> dict:
    """The ``events`` entry templates receive (see templates/README.md)."""
    return {k: ev[k] for k in ("title", "start", "end", "place", "description", "all_day")}


# --- the content kind ------------------------------------------------------------------

def _sample(now: datetime, **_) -> dict:
    saturday = (5 - now.weekday()) % 7 or 7
    return {
        "events": [
            {"title": "免费测血压、血糖", "start": sample_at(now, 1, 9), "end": sample_at(now, 1, 11),
             "place": "社区卫生服务站", "description": "请带上医保卡，空腹测血糖更准确。",
             "all_day": False},
            {"title": "垃圾分类宣传活动", "start": sample_at(now, saturday, 9, 30),
             "end": sample_at(now, saturday, 11, 30), "place": "社区广场",
             "description": None, "all_day": False},
            {"title": "旧衣物回收日", "start": sample_at(now, saturday + 1, 0), "end": None,
             "place": None, "description": "干净衣物请打包好放到各单元门口回收箱。",
             "all_day": True},
        ],
        "days_ahead": 7,
        "reminder": False,
    }


EVENTS = TemplateKind(
    "events", data=("events", "days_ahead", "reminder"), sample=_sample,
    fields=("events", "events[].title", "events[].start", "events[].end", "events[].place",
            "events[].description", "events[].all_day", "days_ahead", "reminder"),
    defaults={"days_ahead": DEFAULT_DAYS_AHEAD, "reminder": False},
    cases={"reminder": lambda now, **_: {"events": _sample(now)["events"][:1], "days_ahead": 1,
                                         "reminder": True},
           "all_day": lambda now, **_: {"events": _sample(now)["events"][2:]}},
)


@register
class Events(ContentKind):
    """What is on in the coming days, or (``reminder``) each event once, the day before."""

    name = "events"
    options: ClassVar = {"days_ahead": int, "reminder": bool, "feeds": list}
    section = Section("events", EventFeed, many=True)
    templates = (EVENTS,)

    def run(self, ctx: RunContext) -> None:
        reminder = ctx.job.options.get("reminder", False)
        days = 1 if reminder else ctx.job.options.get("days_ahead", DEFAULT_DAYS_AHEAD)
        midnight = ctx.local_now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = _day_start(midnight, 1) if reminder else midnight
        per_group = _per_group(ctx, start, _day_start(start, days), reminder)
        targets = [g for g in ctx.targets if per_group.get(g.id)]
        if not targets:
            last = _day_start(start, days) - timedelta(days=1)
            window = "tomorrow" if reminder else f"from {start:%m-%d} to {last:%m-%d}"
            ctx.nothing(f"no events {window} for the job's groups")
        if reminder:
            _remind(ctx, targets, per_group)
            return
        ctx.send("events", targets, lambda g: {
            "events": [for_template(ev) for ev in
                       sorted(per_group[g.id], key=lambda ev: (ev["start"], ev["title"]))],
            "days_ahead": days, "reminder": False,
        })


def _per_group(ctx: RunContext, start: datetime, end: datetime, reminder: bool) -> dict[str, list]:
    """Group id -> the occurrences between ``start`` and ``end`` of the feeds that target it."""
    wanted = ctx.job.options.get("feeds")
    source = EventsSource(ctx.app.root, ctx.job.tz, session=ctx.session)
    per_group: dict[str, list[dict]] = {}
    for feed in ctx.section:
        if wanted is not None and feed.id not in wanted:
            continue
        groups = ctx.groups_for(feed.to, f"events {feed.id}")
        if not groups:
            continue
        try:
            found = source.between(feed, start, end)
        except SourceError as exc:
            ctx.problem(str(exc))
            continue
        finally:
            for warning in source.warnings:
                ctx.problem(warning)
            source.warnings.clear()
        if not reminder:   # a preview shows what has not finished yet
            found = [ev for ev in found if ev["all_day"] or (ev["end"] or ev["start"]) >= ctx.now]
        for g in groups:
            per_group.setdefault(g.id, []).extend(found)
    return per_group


def _day_start(midnight: datetime, days: int) -> datetime:
    """Local midnight ``days`` later (wall-clock arithmetic, DST-safe)."""
    naive = midnight.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=midnight.tzinfo)


def _remind(ctx: RunContext, targets: list, per_group: dict[str, list[dict]]) -> None:
    """Each occurrence once per group, the day before it."""
    occurrences: dict[str, tuple[dict, list]] = {}
    for g in targets:
        for ev in per_group[g.id]:
            occurrences.setdefault(ev["uid"], (ev, []))[1].append(g)
    if not occurrences:
        return
    with ctx.once_only(REMINDERS) as once:
        for uid, (ev, members) in sorted(occurrences.items(), key=lambda kv: kv[1][0]["start"]):
            once(uid, members, "events",
                 {"events": [for_template(ev)], "days_ahead": 1, "reminder": True}, at=ev["start"])
