"""Splitting one Markdown source into numbered parts (broadcaster.delivery.splitting)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from broadcaster.delivery import markdown as md
from broadcaster.delivery.splitting import MessageTooLarge, parse_label, render_parts, split_message
from tests.simulator import parse_telegram_html


def utf8(text: str) -> int:
    return len(text.encode())


def test_a_message_that_fits_is_one_unnumbered_part():
    assert split_message("short\n\nmessage", len, 100) == ["short\n\nmessage"]


def test_splits_at_paragraphs_and_numbers_parts():
    source = "\n\n".join(["a" * 40, "b" * 40, "c" * 40])
    parts = split_message(source, len, 100)
    assert parts == [f"(1/2)\n{'a' * 40}\n\n{'b' * 40}", f"(2/2)\n{'c' * 40}"]
    assert all(len(p) <= 100 for p in parts)


def test_splits_long_paragraph_at_lines():
    source = "\n".join(f"line {i:02d} " + "x" * 20 for i in range(10))
    parts = split_message(source, len, 80)
    assert all(len(p) <= 80 for p in parts)
    rebuilt = "\n".join(parse_label(p)[2] for p in parts)
    assert rebuilt == source


def test_splits_a_long_line_at_punctuation_without_breaking_characters():
    sentence = "小区明天上午九点到下午五点停水，请各位居民提前储水。"
    source = sentence * 40
    parts = split_message(source, utf8, 300)
    assert len(parts) > 1
    for part in parts:
        assert utf8(part) <= 300
        part.encode("utf-8").decode("utf-8")  # whole characters only
        assert parse_label(part)[2].endswith(("。", "，")) or part == parts[-1]
    assert "".join(parse_label(p)[2] for p in parts) == source


def test_numbering_reserves_room_for_two_digit_counts():
    source = "\n\n".join("p" * 30 for _ in range(40))
    parts = split_message(source, len, 45)
    assert len(parts) >= 10
    assert parts[0].startswith(f"(1/{len(parts)})\n")
    assert parts[-1].startswith(f"({len(parts)}/{len(parts)})\n")
    assert all(len(p) <= 45 for p in parts)


def test_a_wecom_sized_chinese_message_splits_in_two():
    source = "\n\n".join(["通知内容" * 50] * 10)  # 6,000 bytes
    assert utf8(source) > 4096
    parts = split_message(source, lambda text: utf8(md.render(text, "wecom")), 4096)
    assert [p.split("\n")[0] for p in parts] == ["(1/2)", "(2/2)"]
    assert all(utf8(md.render(p, "wecom")) <= 4096 for p in parts)


def test_links_are_not_cut_when_avoidable():
    link = "[详情链接](https://example.org/very/long/path)"
    source = "一二三四五六七八九十" * 3 + link + "尾" * 30
    parts = split_message(source, len, 60)
    for part in parts:
        text = parse_label(part)[2]
        assert text.count("[") == text.count("](")


def test_code_fences_are_reopened_in_each_piece():
    code = "\n".join(f"print({i})" for i in range(30))
    source = f"```python\n{code}\n```"
    parts = split_message(source, len, 120)
    assert len(parts) > 1
    for part in parts:
        body = parse_label(part)[2]
        assert body.startswith("```python\n") and body.endswith("\n```")


def test_quote_markers_carry_over_a_cut_line():
    source = "> " + "引用内容很长，" * 30
    parts = split_message(source, utf8, 200)
    assert all(parse_label(p)[2].startswith("> ") for p in parts)


def test_limit_too_small_is_an_error():
    with pytest.raises(MessageTooLarge):
        split_message("abcdef", lambda text: len(text) + 100, 105)
    with pytest.raises(MessageTooLarge):  # a blank line inside a fenced block
        split_message("```\na\n\nb\n```", lambda text: len(text) + 100, 105)


@dataclass
class Built:
    markdown: str
    mention: bool

    @property
    def size(self) -> int:
        return len(self.markdown) + (10 if self.mention else 0)


def test_render_parts_builds_a_message_that_fits_once():
    calls = []

    def build(markdown, mention):
        calls.append((markdown, mention))
        return Built(markdown, mention)

    assert render_parts("short", build, 100, mention_all=True) == [Built("short", True)]
    assert calls == [("short", True)]


def test_render_parts_mentions_only_in_the_first_part_but_reserves_room_in_all():
    source = "\n\n".join(["a" * 40, "b" * 40, "c" * 40])
    parts = render_parts(source, Built, 56, mention_all=True)
    assert [p.mention for p in parts] == [True, False, False]
    assert all(len(p.markdown) + 10 <= 56 for p in parts)  # each would fit with the mention


def test_parse_label():
    assert parse_label("(2/3)\nbody") == (2, 3, "body")
    assert parse_label("body") == (1, 1, "body")


@pytest.mark.parametrize("seed", range(60))
def test_telegram_parts_fit_and_stay_well_formed(seed):
    rnd = random.Random(seed)
    atoms = ["**粗体**", "*斜体*", "[链接](https://t.org/?a=1&b=2)", "`a<b`", "<>&", "文字",
             "\n", "\n\n", "> 引用", "- 项目", "```\ncode\n```", "😀", " "]
    source = "".join(rnd.choice(atoms) for _ in range(rnd.randint(50, 400)))

    def measure(text: str) -> int:
        return md.utf16_len(md.telegram_visible_text(md.render(text, "telegram")))

    limit = rnd.choice([60, 200, 500])
    for part in split_message(source, measure, limit):
        html = md.render(part, "telegram")
        assert len(parse_telegram_html(html)) <= limit


# -- hostile input: grapheme clusters, size, fan-out ---------------------------

CLUSTERS = ["🇨🇳", "👨‍👩‍👧‍👦", "🏳️‍🌈", "é", "ệ", "👍🏽", "각", "1️⃣"]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_cut_never_falls_inside_a_grapheme_cluster(cluster):
    """A flag, a ZWJ family, a letter with its combining marks: whole in one part."""
    width = utf8(cluster)
    for limit in [6 + width * m + extra for m in (1, 2, 3) for extra in range(width)]:
        for lead in range(3):  # different alignments of the clusters against the limit
            source = "x" * lead + cluster * 8
            parts = split_message(source, utf8, limit)
            texts = [parse_label(p)[2] for p in parts]
            assert "".join(texts) == source
            for text in texts:
                assert text.replace("x", "").replace(cluster, "") == "", (cluster, limit, texts)
            assert all(utf8(p) <= limit for p in parts)


def test_a_flag_is_not_cut_on_a_real_platform_limit():
    """The reported case: 🇨🇳 cut in half at a WeCom part boundary."""
    source = "通" * 1361 + "x" + "🇨🇳" * 10   # a code-point cut would keep 🇨 and move 🇳 on
    parts = split_message(source, lambda text: utf8(md.render(text, "wecom")), 4096)
    assert len(parts) == 2
    assert "".join(parse_label(p)[2] for p in parts) == source
    assert parse_label(parts[1])[2] == "🇨🇳" * 10
    for part in parts:
        text = parse_label(part)[2]
        assert text.count("\U0001F1E8") == text.count("\U0001F1F3")  # 🇨 and 🇳 stay paired


def test_a_cluster_wider_than_the_limit_is_refused_not_cut():
    with pytest.raises(MessageTooLarge):
        split_message("👨‍👩‍👧‍👦" * 3, utf8, 12)   # one family is 25 bytes


class Counted:
    """A measure that counts how many characters it was asked to measure."""

    def __init__(self, render=lambda text: text):
        self.render = render
        self.calls = 0
        self.chars = 0

    def __call__(self, text: str) -> int:
        self.calls += 1
        self.chars += len(text)
        return utf8(self.render(text))


@pytest.mark.parametrize("shape", ["one line", "short lines", "paragraphs"])
def test_splitting_64_kb_measures_a_bounded_multiple_of_its_length(shape):
    """Linear (times a log): each part costs O(log n) measurements of about its own size.

    Before, a 64 KB line was measured ~490 times for 17 parts, each probe up
    to the whole rest of the line; short lines were re-measured one at a time.
    """
    unit = "明天停水，请提前储水。" if shape != "short lines" else "停水"
    sep = {"one line": "", "short lines": "\n", "paragraphs": "\n\n"}[shape]
    source = sep.join([unit] * (65_536 // utf8(unit + sep)))
    assert 60_000 < utf8(source) <= 65_536
    measure = Counted()
    parts = split_message(source, measure, 4096)
    assert 16 <= len(parts) <= 18
    assert measure.calls <= 40 * len(parts)
    assert measure.chars <= 30 * len(source)   # quadratic was ~500x for the single line


def test_a_message_to_many_groups_is_split_once_per_layout():
    """2,000 groups, one 64 KB message: one split, then each group only builds its parts."""
    from broadcaster.channels.wecom import Config, WeComChannel
    from broadcaster.delivery.splitting import SplitCache

    source = "\n\n".join(["明天9:00-17:00宁海路片区停水，请提前储水。**如有困难请联系网格员**"] * 900)
    assert utf8(source) > 60_000
    cache = SplitCache()
    built = []
    first = None
    for i in range(2000):
        channel = WeComChannel(Config(url=f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k{i}"),
                               f"g{i}")
        original = channel.build_part
        channel.build_part = lambda md, title, mention, b=original: (built.append(md), b(md, title, mention))[1]
        parts = channel.render(source, title="停水通知", splits=cache)
        first = first or [p.payload for p in parts]
        assert [p.payload for p in parts] == first
    n = len(first)
    assert n > 10
    splitting = len(built) - 2000 * n     # builds beyond each group's own parts
    assert splitting < 40 * n              # one split's worth of measuring, not 2,000


def test_layouts_that_differ_are_split_apart():
    """DingTalk's keyword is in every part: groups with different keywords do not share a split."""
    from broadcaster.channels.dingtalk import Config, DingTalkChannel
    from broadcaster.delivery.splitting import SplitCache

    source = "\n\n".join(["通知内容，请查看。"] * 2000)
    cache = SplitCache()
    url = "https://oapi.dingtalk.com/robot/send?access_token=t"
    plain = DingTalkChannel(Config(url=url), "a").render(source, title="t", splits=cache)
    keyed = DingTalkChannel(Config(url=url, keyword="社区通知" * 1000), "b").render(
        source, title="t", splits=cache)
    assert all(p.size <= p.limit for p in plain + keyed)
    assert len(keyed) > len(plain)


def test_an_incomplete_layout_costs_a_second_split_never_an_oversized_part():
    from broadcaster.delivery.splitting import SplitCache

    cache = SplitCache()
    source = "\n\n".join(["a" * 40] * 10)
    small = render_parts(source, Built, 100, cache=cache, layout="same")
    mentioned = render_parts(source, lambda md, _m: Built(md + "x" * 30, False), 100,
                             cache=cache, layout="same")   # the same layout, bigger parts
    assert all(p.size <= 100 for p in small + mentioned)
    assert len(mentioned) > len(small)
