"""News: RSS 0.9x/1.0/2.0 and Atom feeds, read with feedparser.

Declares:
- content ``news`` (``News`` below): options ``max_items``, ``feeds``; renders ``news``;
- config: ``feeds/*.yaml`` ``news:`` entries (``NewsFeed``: ``id``, ``url`` — http(s),
  ``file:`` or a path under the root —, ``to`` selectors, optional ``title``);
- state: ``news-<feed id>`` — the conditional-GET validators (ETag / Last-Modified),
  the newest items last read (so a 304 still lets a second job see them) and, per
  job, the keys of the items that job has already seen;
- limits: ``MAX_BYTES`` per response (streamed and cut), ``TIMEOUT`` connect/read,
  ``CACHE_ITEMS`` items remembered per feed, seen keys kept ``SEEN_DAYS`` days.

An item is identified by its guid, then its link, then a hash of its content,
and it is new only if *none* of those was seen before — so a feed that changes
every guid does not repost its items. A feed that is not well-formed (cut off,
stray markup) is read as far as feedparser can, with a warning; one with no items
to read is an error. The first time a job reads a feed, the
feed's back catalogue is marked seen and nothing is posted. Titles and summaries
become inert Markdown (see ``broadcaster.sources.safe_text``).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from broadcaster.config.fields import Selectors, Slug, SourceUrl
from broadcaster.sources import Source, SourceError, content_hash, safe_text, safe_url
from broadcaster.sources.kinds import ContentKind, RunContext, Section, TemplateKind, register, sample_at

log = logging.getLogger(__name__)

CACHE_ITEMS = 100        # newest items kept per feed
SEEN_DAYS = 400          # a seen key no longer in the feed is forgotten after this
SEEN_MAX = 5000          # and at most this many keys per job and feed
TITLE_LIMIT = 120
SUMMARY_LIMIT = 200
WORKERS = 8
DEFAULT_MAX_ITEMS = 5


class NewsFeed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    url: SourceUrl                   # http(s) URL, file: URL, or a path relative to the root
    to: Selectors                    # which groups this feed is for
    title: str | None = None         # shown instead of the feed's own title


def state_name(feed_id: str) -> str:
    return f"news-{feed_id}"


@dataclass
class FeedResult:
    feed: NewsFeed
    status: int = 0              # 200, 304, or 0 when it failed
    error: str | None = None


def parse(body: bytes, feed: NewsFeed) -> tuple[str, list[dict]]:
    """The feed's title and its items as inert, JSON-ready dicts (newest first as given)."""
    import feedparser  # start-up: a schedules check declares this kind without parsing feeds

    parsed = feedparser.parse(body, sanitize_html=True, resolve_relative_uris=False)
    reason = getattr(parsed, "bozo_exception", None) or "not a feed"
    if parsed.bozo and not parsed.entries:
        raise SourceError(f"malformed feed: {reason}")
    if not parsed.entries and not parsed.feed:
        raise SourceError("not an RSS or Atom feed")
    if parsed.bozo and not isinstance(reason, feedparser.ThingsNobodyCaresAboutButMe):
        log.warning("news feed %s: not well-formed (%s); using the %d item(s) that could be read",
                    feed.id, reason, len(parsed.entries))
    title = feed.title or safe_text(parsed.feed.get("title"), limit=60) or feed.id
    items = []
    for entry in parsed.entries[:CACHE_ITEMS]:
        raw_title = entry.get("title") or ""
        raw_summary = entry.get("summary") or ""
        link = safe_url(entry.get("link"))
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        published = (
            datetime.fromtimestamp(calendar.timegm(when), UTC).isoformat() if when else None
        )
        keys = [f"h:{content_hash(raw_title, raw_summary)}"]
        if link:
            keys.insert(0, f"l:{link}")
        if entry.get("id"):
            keys.insert(0, f"g:{str(entry.get('id'))[:500]}")
        item_title = safe_text(raw_title, limit=TITLE_LIMIT)
        if not item_title:
            continue
        items.append({
            "keys": keys,
            "title": item_title,
            "link": link,
            "summary": safe_text(raw_summary, limit=SUMMARY_LIMIT),
            "published": published,
        })
    return title, items


class NewsSource(Source):
    """Reads feeds (concurrently), keeping each feed's cache and validators in ``cache``."""

    def fetch(self, feed: NewsFeed, cache: dict) -> FeedResult:
        """One (conditional) GET of ``feed``; on 200 the new items replace ``cache['items']``."""
        same_url = cache.get("url") == feed.url
        try:
            got = self.get(
                feed.url,
                etag=cache.get("etag") if same_url else None,
                last_modified=cache.get("last_modified") if same_url else None,
            )
            if got.status == 304:
                return FeedResult(feed, 304)
            title, items = parse(got.body, feed)
        except SourceError as exc:
            return FeedResult(feed, 0, f"news feed {feed.id}: {exc}")
        cache.update(url=feed.url, etag=got.etag, last_modified=got.last_modified,
                     title=title, items=items)
        return FeedResult(feed, 200)

    def fetch_all(self, feeds: list[NewsFeed], caches: dict[str, dict],
                  progress: Callable[[int, int, int], None] | None = None) -> list[FeedResult]:
        """Fetch every feed once, ``WORKERS`` at a time; ``caches[feed.id]`` updated in place;
        ``progress(read, total, failed)`` told as each feed is read."""
        if not feeds:
            return []
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(feeds))) as pool:
            futures = [pool.submit(self.fetch, f, caches.setdefault(f.id, {})) for f in feeds]
            failed = 0
            for done, future in enumerate(as_completed(futures), 1):
                failed += bool(future.result().error)
                if progress is not None:
                    progress(done, len(feeds), failed)
            return [f.result() for f in futures]


# --- what is new, and for whom ---------------------------------------------------------

def unseen(items: list[dict], seen: dict[str, str]) -> list[dict]:
    """Items none of whose keys is in ``seen``, each once."""
    out, keys_now = [], set()
    for item in items:
        keys = item["keys"]
        if any(k in seen or k in keys_now for k in keys):
            continue
        keys_now.update(keys)
        out.append(item)
    return out


def mark_seen(seen: dict[str, str], items: list[dict], current: list[dict], now: datetime) -> None:
    """Record ``items`` as seen, then forget old keys no longer in the feed (``current``)."""
    stamp = now.astimezone(UTC).isoformat(timespec="seconds")
    for item in items:
        for key in item["keys"]:
            seen.setdefault(key, stamp)
    live = {k for item in current for k in item["keys"]}
    cutoff = (now - timedelta(days=SEEN_DAYS)).astimezone(UTC).isoformat(timespec="seconds")
    for key in [k for k, t in seen.items() if t < cutoff and k not in live]:
        del seen[key]
    if len(seen) > SEEN_MAX:
        for key, _ in sorted(seen.items(), key=lambda kv: kv[1])[: len(seen) - SEEN_MAX]:
            if key not in live:
                del seen[key]


def for_template(item: dict, feed: NewsFeed, feed_title: str, tz) -> dict:
    """The ``items`` entry templates receive (see templates/README.md)."""
    published = item["published"] and datetime.fromisoformat(item["published"]).astimezone(tz)
    return {
        "title": item["title"],
        "link": item["link"],
        "summary": item["summary"],
        "published": published or None,
        "feed_id": feed.id,
        "feed_title": feed_title,
    }


def digest(
    new_by_feed: dict[str, list[dict]],
    groups_by_feed: dict[str, list[str]],
    max_items: int,
) -> dict[str, list[dict]]:
    """Per group, the newest ``max_items`` template items of the feeds that target it.

    ``new_by_feed`` holds template items (``for_template``) in feed order;
    items without a date rank after dated ones, in feed order; a link that two
    feeds share is listed once.
    """
    per_group: dict[str, list[tuple[int, dict]]] = {}
    order = 0
    for feed_id, items in new_by_feed.items():
        for item in items:
            order += 1
            for group_id in groups_by_feed.get(feed_id, ()):
                per_group.setdefault(group_id, []).append((order, item))
    out: dict[str, list[dict]] = {}
    for group_id, entries in per_group.items():
        entries.sort(key=lambda e: (
            e[1]["published"] is None,
            -(e[1]["published"].timestamp() if e[1]["published"] else 0),
            e[0],
        ))
        chosen, links = [], set()
        for _, item in entries:
            if item["link"] and item["link"] in links:
                continue
            links.add(item["link"])
            chosen.append(item)
            if len(chosen) == max_items:
                break
        out[group_id] = chosen
    return out


# --- the content kind ------------------------------------------------------------------

def _sample(now: datetime, **_) -> dict:
    feed = {"feed_id": "gulou-gov", "feed_title": "鼓楼区人民政府"}
    return {
        "items": [
            {"title": "鼓楼区新增 3 处社区食堂 老人就餐可享优惠",
             "link": "https://example.gov.cn/gulou/news/1001.html",
             "summary": "宁海路、湖南路、华侨路街道的 3 处社区食堂本周开业，"
                        "60 岁以上老人凭身份证就餐每餐优惠 2 元。",
             "published": sample_at(now, 0, 7, 30), **feed},
            {"title": "冬季供暖设备安全检查开始预约",
             "link": "https://example.gov.cn/gulou/news/1002.html",
             "summary": "即日起可通过社区网格员预约上门检查燃气热水器和取暖设备。",
             "published": sample_at(now, -1, 16, 0), **feed},
            {"title": "鼓楼区图书馆周末开展亲子阅读活动",
             "link": "https://example.gov.cn/gulou/news/1003.html",
             "summary": "",
             "published": None, **feed},
        ]
    }


NEWS = TemplateKind(
    "news", data=("items",), sample=_sample,
    cases={"one": lambda now, **_: {"items": _sample(now)["items"][:1]},
           "no_links": lambda now, **_: {"items": [{**i, "link": None}
                                                   for i in _sample(now)["items"]]}},
    fields=("items", "items[].title", "items[].link", "items[].summary", "items[].published",
            "items[].feed_id", "items[].feed_title"),
)


@register
class News(ContentKind):
    """A digest of the items no job run has posted yet, per group, newest first."""

    name = "news"
    options: ClassVar = {"max_items": int, "feeds": list}
    section = Section("news", NewsFeed, many=True)
    templates = (NEWS,)

    def run(self, ctx: RunContext) -> None:
        wanted = ctx.job.options.get("feeds")
        feeds = [f for f in ctx.section if wanted is None or f.id in wanted]
        groups_by_feed = {f.id: [g.id for g in ctx.groups_for(f.to, f"news feed {f.id}")]
                          for f in feeds}
        feeds = [f for f in feeds if groups_by_feed[f.id]]
        if not feeds:
            ctx.nothing(_no_feed(ctx, wanted))
            return
        store = ctx.app.store
        caches = {f.id: store.read_state(state_name(f.id)) for f in feeds}
        results = NewsSource(ctx.app.root, session=ctx.session).fetch_all(feeds, caches,
                                                                           ctx.progress)
        new_by_feed: dict[str, list[dict]] = {}
        fresh_raw: dict[str, list[dict]] = {}
        first: list[str] = []
        since: list[str] = []
        for res in results:
            if res.error:
                ctx.problem(res.error)
                continue
            fresh, title, last_read = _fresh(ctx, res, caches[res.feed.id])
            if last_read:
                since.append(last_read)
            else:
                first.append(res.feed.id)
            if fresh:
                fresh_raw[res.feed.id] = fresh
                new_by_feed[res.feed.id] = [for_template(i, res.feed, title, ctx.job.tz)
                                            for i in fresh]
        if first:
            ctx.nothing(f"first read of {', '.join(first)} by this job: the items already there "
                        "are old news, marked seen; new ones are posted from the next run")
        if not new_by_feed and since:
            ctx.nothing(f"no new items since {_shown(min(since), ctx)} "
                        f"(in {len(since)} feed{'s' if len(since) > 1 else ''} read)")
        per_group = digest(new_by_feed, groups_by_feed,
                           ctx.job.options.get("max_items", DEFAULT_MAX_ITEMS))
        ctx.send("news", [g for g in ctx.targets if per_group.get(g.id)],
                 lambda g: {"items": per_group[g.id]})
        # only now (queued durably) are these items seen: a crash before this line reposts, never loses
        for feed_id, fresh in fresh_raw.items():
            with store.state(state_name(feed_id)) as st:
                seen = st.setdefault("seen", {}).setdefault(ctx.job.id, {})
                mark_seen(seen, fresh, st.get("items", []), ctx.now)


def _fresh(ctx: RunContext, res: FeedResult, cache: dict) -> tuple[list[dict], str, str | None]:
    """The items of one read feed that this job has not seen, the feed's title, and when
    this job last read it (None: never).

    The first read by a job marks the back catalogue seen: it is old news.
    """
    feed = res.feed
    with ctx.app.store.state(state_name(feed.id)) as st:
        if res.status == 200:
            st.update({k: v for k, v in cache.items() if k not in ("seen", "read")})
        read = st.setdefault("read", {})
        last_read = read.get(ctx.job.id)
        read[ctx.job.id] = ctx.now.astimezone(UTC).isoformat(timespec="seconds")
        items = st.get("items", [])
        seen_all = st.setdefault("seen", {})
        if ctx.job.id not in seen_all:
            seen_all[ctx.job.id] = {}
            mark_seen(seen_all[ctx.job.id], items, items, ctx.now)
            return [], feed.id, None
        return unseen(items, seen_all[ctx.job.id]), st.get("title") or feed.id, last_read or "?"


def _no_feed(ctx: RunContext, wanted: list | None) -> str:
    if not ctx.section:
        return "no news feeds in feeds/ (a news: section)"
    if wanted is not None and not any(f.id in wanted for f in ctx.section):
        return f"none of its feeds ({', '.join(wanted)}) is in feeds/"
    return "no news feed sends to the job's groups (each feed's to:)"


def _shown(stamp: str, ctx: RunContext) -> str:
    """A last-read time as the job's zone shows it: ``08:00`` today, ``11-21 08:00`` before."""
    if stamp == "?":     # read before reads were recorded
        return "the last read"
    at = datetime.fromisoformat(stamp).astimezone(ctx.job.tz)
    local = ctx.local_now
    return at.strftime("%H:%M" if at.date() == local.date() else "%m-%d %H:%M")
