"""News: RSS/Atom over a loopback server (ETag/304), hostile feeds, once-only digests."""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from broadcaster.app import App
from broadcaster.queue import outbox
from broadcaster.schedule import scheduler
from broadcaster.sources import SourceError, safe_text, safe_url
from broadcaster.sources.news import NewsFeed, NewsSource, parse
from tests.conftest import write_groups
from tests.faulty_http import LoopbackServer

SH = ZoneInfo("Asia/Shanghai")


class Loopback(LoopbackServer):
    """A tiny HTTP server: ``routes[path] = fn(handler) -> (status, headers, body)``."""

    def __init__(self):
        self.routes: dict[str, Callable] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                outer.hits.append(self.path)
                route = outer.routes.get(path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                status, headers, body = route(self)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if isinstance(body, bytes):
                        self.wfile.write(body)
                    else:                       # an iterator: streamed, no length
                        for chunk in body:
                            self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.serve(Handler)


def rss(items: list[tuple[str, str, str]], title="鼓楼区政务资讯") -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{g}</guid>"
        f"<pubDate>Sun, 22 Nov 2026 0{i}:00:00 +0800</pubDate>"
        f"<description>&lt;p&gt;摘要{i}&lt;/p&gt;</description></item>"
        for i, (g, t, link) in enumerate(items)
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title>{body}</channel></rss>").encode()


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>社区通知</title><id>urn:x</id>
<updated>2026-11-22T09:00:00+08:00</updated>
<entry><title>停水通知</title><id>urn:n1</id><link href="https://hlz.example.org/n1"/>
<updated>2026-11-22T09:00:00+08:00</updated><summary>25日停水</summary></entry>
</feed>""".encode()


def conditional(state: dict):
    """Serve ``state['body']`` with an ETag; answer 304 to a matching If-None-Match."""
    def route(h):
        etag = f'"v{hash(state["body"]) & 0xffff}"'
        if h.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Content-Type": "application/rss+xml"}, state["body"]
    return route


GROUPS = """
groups:
  - {id: hlz1, name: 汇林1, tags: [district:gulou, community:hlz], channel: {type: file, path: o}}
  - {id: hlz2, name: 汇林2, tags: [district:gulou, community:hlz], channel: {type: file, path: o}}
  - {id: hq1, name: 华侨路1, tags: [district:gulou, community:hq], channel: {type: file, path: o}}
"""


@pytest.fixture
def app(root: Path, tmp_path: Path):
    write_groups(root, GROUPS)
    with Loopback() as srv:
        (root / "feeds" / "news.yaml").write_text(textwrap.dedent(f"""
            news:
              - {{id: district, url: "{srv.url}/district.xml", to: [district:gulou]}}
              - {{id: hlz, url: "{srv.url}/hlz.atom", to: [community:hlz]}}
        """), encoding="utf-8")
        (root / "schedules" / "s.yaml").write_text(textwrap.dedent("""
            jobs:
              - {id: news, cron: "0 8 * * *", content: news, to: [all], options: {max_items: 2}}
        """), encoding="utf-8")
        a = App(root, tmp_path / "state")
        a.srv = srv
        yield a


def bodies(app) -> dict[str, str]:
    out = {}
    for ann in outbox.active(app):
        for d in ann.deliveries:
            out[d.group] = out.get(d.group, "") + ann.body(d)
    return out


def test_first_run_is_silent_then_new_items_only_once(app):
    srv = app.srv
    district = {"body": rss([("d1", "旧闻一", "https://gov.example/1")])}
    srv.routes["/district.xml"] = conditional(district)
    srv.routes["/hlz.atom"] = lambda h: (200, {}, ATOM)
    now = datetime(2026, 11, 22, 8, 0, tzinfo=SH)
    assert scheduler.run_job(app, "news", now) == []          # back catalogue: remembered
    district["body"] = rss([("d2", "区里新闻二", "https://gov.example/2"),
                            ("d1", "旧闻一", "https://gov.example/1")])
    assert len(scheduler.run_job(app, "news", now)) == 1
    got = bodies(app)
    assert set(got) == {"hlz1", "hlz2", "hq1"}
    assert "区里新闻二" in got["hq1"] and "旧闻一" not in got["hq1"]
    hits_before = len(srv.hits)
    assert scheduler.run_job(app, "news", now) == []          # 304: nothing new
    assert len(srv.hits) - hits_before == 2                   # one request per feed


def test_304_still_serves_a_second_job_its_new_items(app):
    srv = app.srv
    state = {"body": rss([("a", "一", "https://gov.example/a")])}
    srv.routes["/district.xml"] = conditional(state)
    srv.routes["/hlz.atom"] = lambda h: (200, {}, ATOM)
    (app.root / "schedules" / "s.yaml").write_text(textwrap.dedent("""
        jobs:
          - {id: news, cron: "0 8 * * *", content: news, to: [community:hlz]}
          - {id: news-hq, cron: "0 9 * * *", content: news, to: [community:hq]}
    """), encoding="utf-8")
    now = datetime(2026, 11, 22, 8, 0, tzinfo=SH)
    scheduler.run_job(app, "news", now)
    scheduler.run_job(app, "news-hq", now)
    state["body"] = rss([("b", "二", "https://gov.example/b"), ("a", "一", "https://gov.example/a")])
    assert len(scheduler.run_job(app, "news", now)) == 1
    assert len(scheduler.run_job(app, "news-hq", now)) == 1   # served from cache after a 304
    assert set(bodies(app)) == {"hlz1", "hlz2", "hq1"}


def test_hostile_feed_is_inert(app):
    srv = app.srv
    evil = [("e1", "&lt;script&gt;alert(1)&lt;/script&gt;@all 紧急通知 &lt;@U123&gt; "
                   "&lt;at user_id=\"all\"&gt;所有人&lt;/at&gt; [点我](javascript:alert(1))",
             "javascript:alert(1)")]
    state = {"body": rss([("x", "旧", "https://gov.example/x")])}
    srv.routes["/district.xml"] = conditional(state)
    srv.routes["/hlz.atom"] = lambda h: (200, {}, ATOM)
    now = datetime(2026, 11, 22, 8, 0, tzinfo=SH)
    scheduler.run_job(app, "news", now)
    state["body"] = rss(evil)
    scheduler.run_job(app, "news", now)
    text = bodies(app)["hq1"]
    assert "<script" not in text and "alert(1)</" not in text
    assert "@all" not in text and "<@U123>" not in text and "<at " not in text
    assert r"\[点我\](javascript" in text                       # the injected link is inert text
    targets = re.findall(r"(?<!\\)\]\(([^)]*)\)", text)        # real Markdown link targets
    assert targets == []  # the javascript: link was dropped; the title stands as bold text
    assert "紧急通知" in text


def test_feed_changing_every_guid_is_not_reposted(app):
    srv = app.srv
    n = {"i": 0}

    def shifting(h):
        n["i"] += 1
        return 200, {}, rss([(f"g{n['i']}-1", "同一条新闻", "https://gov.example/same")])

    srv.routes["/district.xml"] = shifting
    srv.routes["/hlz.atom"] = lambda h: (200, {}, ATOM)
    now = datetime(2026, 11, 22, 8, 0, tzinfo=SH)
    for _ in range(3):
        assert scheduler.run_job(app, "news", now) == []
    assert n["i"] == 3                                        # read every time, not failing
    # a really new item (new guid, link and text) still gets through
    srv.routes["/district.xml"] = lambda h: (200, {}, rss([("n", "真的新闻", "https://gov.example/new")]))
    assert len(scheduler.run_job(app, "news", now)) == 1
    assert "真的新闻" in bodies(app)["hq1"]


def test_malformed_and_huge_feeds_fail_cleanly(app, caplog):
    srv = app.srv
    srv.routes["/district.xml"] = lambda h: (200, {}, b"<rss><channel><item><title>x")
    srv.routes["/hlz.atom"] = lambda h: (200, {}, (b"x" * 1024 * 1024 for _ in range(50)))
    now = datetime(2026, 11, 22, 8, 0, tzinfo=SH)
    run = scheduler.try_job(app, "news", now)
    assert run.announcements == []
    # a cut-off feed is read leniently, and said so; a non-feed is refused
    assert "news feed district: not well-formed" in caplog.text
    assert any(p.startswith("news feed hlz: http://127.0.0.1/hlz.atom: response exceeds")
               for p in run.problems), run.problems
    srv.routes["/district.xml"] = lambda h: (200, {}, b"<html><body>\x00 not a feed")
    run = scheduler.try_job(app, "news", now)
    assert run.announcements == []
    assert any(p.startswith("news feed district: malformed feed") for p in run.problems)
    source = NewsSource(app.root, max_bytes=1024)
    res = source.fetch(NewsFeed(id="big", url=f"{srv.url}/hlz.atom", to=["all"]), {})
    assert res.status == 0 and "exceeds 1024 bytes" in res.error


def test_parse_rss_atom_and_garbage():
    feed = NewsFeed(id="f", url="x", to=["all"])
    title, items = parse(rss([("g", "标题 *粗* _斜_", "https://a.example/1?x=(1)")]), feed)
    assert title == "鼓楼区政务资讯"
    assert items[0]["title"] == r"标题 \*粗\* \_斜\_"
    assert items[0]["link"] == "https://a.example/1?x=%281%29"
    assert items[0]["keys"][0] == "g:g" and items[0]["published"].startswith("2026-11-21T16")
    assert parse(ATOM, feed)[1][0]["summary"] == "25日停水"
    with pytest.raises(SourceError, match="malformed"):
        parse(b"<html><body>not a feed", feed)


def test_file_feeds_and_safe_helpers(tmp_path):
    (tmp_path / "a.xml").write_bytes(ATOM)
    source = NewsSource(tmp_path)
    cache: dict = {}
    assert source.fetch(NewsFeed(id="f", url="a.xml", to=["all"]), cache).status == 200
    assert cache["items"][0]["title"] == "停水通知"
    assert safe_text("<b>hi</b> @所有人 | # x") == r"hi ＠所有人 \| \# x"
    assert safe_text("- list") == r"\- list"
    assert safe_url("data:text/html,x") is None
    assert safe_url("https://ok.example/a b") == "https://ok.example/a%20b"


def test_last_modified_conditional_get_and_timeout():
    seen: list[str | None] = []

    def dated(h):
        seen.append(h.headers.get("If-Modified-Since"))
        stamp = "Sun, 22 Nov 2026 00:00:00 GMT"
        if h.headers.get("If-Modified-Since") == stamp:
            return 304, {}, b""
        return 200, {"Last-Modified": stamp}, ATOM

    def slow(h):
        time.sleep(1.0)
        return 200, {}, ATOM

    with Loopback() as srv:
        srv.routes["/dated.atom"] = dated
        srv.routes["/slow.atom"] = slow
        source = NewsSource(Path("."), timeout=(1.0, 0.2))
        feed = NewsFeed(id="d", url=f"{srv.url}/dated.atom", to=["all"])
        cache: dict = {}
        assert source.fetch(feed, cache).status == 200
        assert source.fetch(feed, cache).status == 304
        assert seen == [None, "Sun, 22 Nov 2026 00:00:00 GMT"]
        assert cache["items"][0]["title"] == "停水通知"           # a 304 keeps what was read
        res = source.fetch(NewsFeed(id="s", url=f"{srv.url}/slow.atom", to=["all"]), {})
        assert res.status == 0 and res.error.endswith("timed out")
