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
