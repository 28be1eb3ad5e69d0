"""Outside text is data: feeds, calendars and staff text cannot mention everyone, inject
links or markup of any platform, or carry control and bidi-override characters."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from broadcaster.delivery import markdown as md
from broadcaster.sources import safe_text
from broadcaster.sources.events import EventFeed, EventsSource, for_template
from broadcaster.sources.news import NewsFeed, parse
from broadcaster.sources.news import for_template as news_item
from broadcaster.templating import Templates
from broadcaster.templating.preview import channel_parts
from broadcaster.templating.samples import sample_group
from tests.conftest import REPO, cli, write_groups
from tests.simulator import parse_telegram_html

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=SH)
CHANNELS = ("wecom", "dingtalk", "feishu", "telegram", "slack", "discord")

# Titles as a hostile feed serves them (XML-escaped once, or twice for "HTML in a title").
HOSTILE_TITLES = [
    "&amp;lt;at id=all&amp;gt;&amp;lt;/at&amp;gt;领取补贴",
    "&lt;at id=all&gt;&lt;/at&gt;停水",
    "[领奖](javascript:alert(1)) 点击",
    "![x](https://evil.example/track.png) 图片",
    "&lt;@U123&gt; &lt;!channel&gt; &lt;!here&gt; @all @everyone @here",
    '&lt;font color="warning"&gt;假预警&lt;/font&gt; **粗** `码` ~~删~~',
    "# 假标题 &amp;lt;b&amp;gt;",
]


def rss(titles: list[str]) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://gov.example/{i}</link><guid>g{i}</guid>"
        f"<description>{t}</description></item>" for i, t in enumerate(titles))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>资讯</title>{items}</channel></rss>").encode()


def dialect_texts(markdown: str) -> dict[str, str]:
    """What each platform is sent for ``markdown`` (every part's text), by channel type."""
    group = sample_group()
    return {ch: "\n".join(p.text for p in channel_parts(markdown, ch, group)) for ch in CHANNELS}


def assert_inert(channel: str, text: str) -> None:
    """Nothing in ``text`` would be read by ``channel`` as a mention, a link, an image or a tag."""
    markdown_links = re.findall(r"(?<!\\)\]\(<?([^)>]*)", text) if channel not in ("telegram", "slack") else []
    slack_links = re.findall(r"<(https?://[^|>]*)", text) if channel == "slack" else []
    links = markdown_links + slack_links + re.findall(r'href="([^"]*)"', text)
    assert all(u.startswith("https://gov.example/") for u in links), (channel, text)
    assert "javascript:" not in "".join(links)
    if channel in ("wecom", "dingtalk", "feishu"):
        assert not re.search(r"<(?!/?font color=\"warning\">)", text.replace("<font color", "")), text
        assert "<at" not in text and "<@" not in text and "!channel" not in text.replace("＜!", "")
        assert not re.search(r"(?<![\w.])@(all|everyone|here)", text), text
        assert "\\" not in text, "residents of platforms without escapes would see backslashes"
        assert "![" not in text and "<font" not in text
    if channel == "telegram":
        tags = re.findall(r"</?([a-z-]+)", text)
        assert set(tags) <= {"b", "i", "s", "a", "code", "pre", "blockquote"}, text
        parse_telegram_html(text)  # well-formed, as Telegram would parse it
    if channel == "slack":
        assert "<!" not in text and "<@" not in text and "\\" not in text
        assert not re.search(r"(?<![\w.])@(channel|here|everyone)", text)
    if channel == "discord":
        assert not re.search(r"(?<!\\)@(everyone|here)", text)
        assert not re.search(r"(?<!\\)<@", text)


def test_hostile_feed_titles_are_data_in_every_dialect():
    _, items = parse(rss(HOSTILE_TITLES), NewsFeed(id="f", url="x", to=["all"]))
    assert len(items) == len(HOSTILE_TITLES)
    data = {"items": [news_item(i, NewsFeed(id="f", url="x", to=["all"]), "资讯", SH) for i in items]}
    markdown = Templates(REPO).render("news", group=sample_group(), data=data, now=NOW)
    texts = dialect_texts(markdown)
    for channel, text in texts.items():
        assert_inert(channel, text)
    # residents still read the words, in look-alike characters where there are no escapes
    assert "＜at id=all＞＜/at＞领取补贴" in texts["feishu"]
    assert "［领奖］(javascript:alert(1))" in texts["wecom"]
    assert "!［x］(https://evil.example/track.png)" in texts["dingtalk"]
    assert "&lt;at id=all&gt;&lt;/at&gt;领取补贴" in texts["telegram"]
    assert "&lt;!channel&gt;" in texts["slack"]
    assert "＠everyone" in texts["discord"]  # safe_text made it full-width already
    # the template's own markup is kept: each title is a link to the item
    assert texts["feishu"].count("](https://gov.example/") == len(HOSTILE_TITLES)


def test_hostile_calendar_entries_are_data(tmp_path: Path):
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", "BEGIN:VEVENT", "UID:e@x",
        "DTSTART;TZID=Asia/Shanghai:20261123T090000",
        r"SUMMARY:<at id=all></at> [报名](javascript:x) \, @所有人",
        "LOCATION:![p](https://evil.example/p.png) \u202e\u0007",
        "DESCRIPTION:<!channel> <@U1> @everyone", "END:VEVENT", "END:VCALENDAR", ""])
    (tmp_path / "c.ics").write_text(ics, encoding="utf-8")
    feed = EventFeed(id="c", ics="c.ics", to=["all"])
    evs = EventsSource(tmp_path, SH).between(feed, NOW, datetime(2026, 11, 30, tzinfo=SH))
    data = {"events": [for_template(e) for e in evs], "days_ahead": 7, "reminder": False}
    markdown = Templates(REPO).render("events", group=sample_group(), data=data, now=NOW)
    assert "\u202e" not in markdown and "\x07" not in markdown
    for channel, text in dialect_texts(markdown).items():
        assert_inert(channel, text)


@pytest.mark.parametrize(("source", "dialect", "expected"), [
    ("***粗斜***", "telegram", "<b><i>粗斜</i></b>"),
    ("***粗斜***", "slack", "*_粗斜_*"),
    ("[维基](https://en.wikipedia.org/wiki/Foo_(bar))", "telegram",
     '<a href="https://en.wikipedia.org/wiki/Foo_(bar)">维基</a>'),
    ("[维基](https://en.wikipedia.org/wiki/Foo_(bar))", "wecom",
     "[维基](https://en.wikipedia.org/wiki/Foo_%28bar%29)"),
    ("[维基](https://en.wikipedia.org/wiki/Foo_(bar))", "discord",
     "[维基](<https://en.wikipedia.org/wiki/Foo_(bar)>)"),
    # links keep only http(s)
    ("[点我](javascript:alert(1))", "wecom", "［点我］(javascript:alert(1))"),
    ("[邮件](mailto:a@b.org) [文件](ftp://x.org/f)", "telegram", "邮件 文件"),
    ("![图](https://x.org/i.png)", "dingtalk", "[图](https://x.org/i.png)"),
    # staff text is data too: raw platform markup never becomes a mention
    ("<at id=all></at> 注意", "lark_md", "＜at id=all＞＜/at＞ 注意"),
    ("<!channel> <@U1> 注意", "slack", "&lt;!channel&gt; &lt;＠U1&gt; 注意"),
    ("@everyone 注意", "discord", "\\@everyone 注意"),
    ('<font color="warning">预警</font>', "wecom", '<font color="warning">预警</font>'),
    ('<font color="x" onclick="y">预警</font>', "wecom", '＜font color="x" onclick="y"＞预警</font>'),
    # numbers, ranges and snake_case read as written
    ("6°C ~ 14°C，5 * 3，snake_case", "dingtalk", "6°C ~ 14°C，5 * 3，snake_case"),
    ("9:00~17:00 *无* 效", "wecom", "9:00～17:00 无 效"),
])
def test_dialect_writers(source, dialect, expected):
    assert md.render(source, dialect) == expected


def test_control_and_bidi_characters_never_reach_a_platform():
    source = "停水\u202e通知\x1b[31m\x07\x00 第\t二\r\n行\u2066隔离\u2069 \x85 👨\u200d👩\u200d👧"
    for dialect in md.DIALECTS:
        out = md.render(source, dialect)
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out)
        assert "\t" in out and "\u200d" in out                  # tab and emoji joiners stay
    assert safe_text("a\x1b\u202eb") == "ab"


def test_staff_text_is_cleaned_before_it_is_queued(root: Path, tmp_path: Path):
    write_groups(root, """
        groups:
          - {id: g1, name: 一, tags: [t], channel: {type: file, path: out}}
    """)
    env = {"BROADCASTER_STATE_DIR": str(tmp_path / "state")}
    res = cli(root, "announce", "停水\u202e通知\x1b[2J\x07\x00\n\t第二行", "--to", "all", "--json",
              env=env)
    assert res.code == 0, res.err
    res = cli(root, "run-once", env=env)
    assert res.code == 0, res.err
    written = (root / "out" / "g1.md").read_text(encoding="utf-8")
    assert "停水通知[2J\n\t第二行" in written


def test_non_utf8_command_line_is_a_clear_exit_1(root: Path):
    write_groups(root, """
        groups:
          - {id: g1, name: 一, tags: [t], channel: {type: file, path: out}}
    """)
    for extra in ([], [b"--json"]):
        p = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), "announce",
                            b"caf\xe9 \xff", "--to", "all", *extra],
                           capture_output=True, timeout=60, check=False)
        assert p.returncode == 1
        assert b"Traceback" not in p.stderr
        assert b"argument 4 is not valid UTF-8 text: caf\\xe9 \\xff" in p.stderr
    assert b'"error"' in p.stdout
    assert not (root / "var").exists()  # nothing was done
