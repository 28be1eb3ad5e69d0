"""One Markdown source into every dialect (broadcaster.delivery.markdown)."""

from __future__ import annotations

import random

import pytest

from broadcaster.delivery import markdown as md
from tests.simulator import parse_telegram_html

SOURCE = """# 停水通知

**明天** 9:00–17:00 *汇林绿洲* 停水，详见[公告](https://example.org/a?x=1&y=2)。
> 请提前储水 <注意> & 关好水龙头
- 一号楼
- 二号楼
1. 第一步"""


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("wecom", "# 停水通知\n\n**明天** 9:00–17:00 汇林绿洲 停水，详见"
                  "[公告](https://example.org/a?x=1&y=2)。\n> 请提前储水 ＜注意＞ & 关好水龙头\n"
                  "• 一号楼\n• 二号楼\n1. 第一步"),
        ("dingtalk", "# 停水通知\n\n**明天** 9:00–17:00 *汇林绿洲* 停水，详见"
                     "[公告](https://example.org/a?x=1&y=2)。  \n"
                     "> 请提前储水 ＜注意＞ & 关好水龙头  \n"
                     "- 一号楼  \n- 二号楼  \n1. 第一步"),
        ("lark_md", "**停水通知**\n\n**明天** 9:00–17:00 *汇林绿洲* 停水，详见"
                    "[公告](https://example.org/a?x=1&y=2)。\n▎请提前储水 ＜注意＞ & 关好水龙头\n"
                    "• 一号楼\n• 二号楼\n1. 第一步"),
        ("telegram", "<b>停水通知</b>\n\n<b>明天</b> 9:00–17:00 <i>汇林绿洲</i> 停水，详见"
                     '<a href="https://example.org/a?x=1&amp;y=2">公告</a>。\n'
                     "<blockquote>请提前储水 &lt;注意&gt; &amp; 关好水龙头</blockquote>\n"
                     "• 一号楼\n• 二号楼\n1. 第一步"),
        ("slack", "*停水通知*\n\n*明天* 9:00–17:00 _汇林绿洲_ 停水，详见"
                  "<https://example.org/a?x=1&amp;y=2|公告>。\n"
                  "> 请提前储水 &lt;注意&gt; &amp; 关好水龙头\n"
                  "• 一号楼\n• 二号楼\n1. 第一步"),
        ("discord", "# 停水通知\n\n**明天** 9:00–17:00 *汇林绿洲* 停水，详见"
                    "[公告](<https://example.org/a?x=1&y=2>)。\n> 请提前储水 \\<注意\\> & 关好水龙头\n"
                    "- 一号楼\n- 二号楼\n1. 第一步"),
        ("plain", "停水通知\n\n明天 9:00–17:00 汇林绿洲 停水，详见公告 (https://example.org/a?x=1&y=2)。\n"
                  "> 请提前储水 <注意> & 关好水龙头\n• 一号楼\n• 二号楼\n1. 第一步"),
    ],
)
def test_dialects(dialect, expected):
    assert md.render(SOURCE, dialect) == expected


# less common markup: h4, strike, inline code with < >, <font>, bare and self links,
# a nested quote, a list after it (not nested: CommonMark), a "3)" marker, a fenced block, a rule
SOURCE_2 = """#### 小标题 **粗**

~~作废~~ 用 `code <x>` 与 <font color="info">绿色</font>，见 https://x.org 与 [https://y.org](https://y.org)
>> 二级引用 **重点**
  - 子项 *斜*
3) 第三

```python
a = 1 < 2
```
***"""


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("wecom", '#### 小标题 **粗**\n\n作废 用 `code ＜x＞` 与 <font color="info">绿色</font>，'
                  "见 https://x.org 与 [https://y.org](https://y.org)\n> 二级引用 **重点**\n"
                  "• 子项 斜\n3) 第三\n\na = 1 ＜ 2\n————————"),
        ("dingtalk", '#### 小标题 **粗**\n\n~~作废~~ 用 `code ＜x＞` 与 <font color="info">绿色</font>，'
                     "见 https://x.org 与 [https://y.org](https://y.org)  \n> 二级引用 **重点**  \n"
                     "- 子项 *斜*  \n3) 第三\n\n```python\na = 1 < 2\n```\n\n---"),
        ("lark_md", '**小标题 粗**\n\n~~作废~~ 用 code ＜x＞ 与 <font color="info">绿色</font>，'
                    "见 https://x.org 与 [https://y.org](https://y.org)\n▎▎二级引用 **重点**\n"
                    "• 子项 *斜*\n3) 第三\n\na = 1 ＜ 2\n————————"),
        ("telegram", "<b>小标题 粗</b>\n\n<s>作废</s> 用 <code>code &lt;x&gt;</code> 与 绿色，"
                     '见 https://x.org 与 <a href="https://y.org">https://y.org</a>\n'
                     "<blockquote>二级引用 <b>重点</b></blockquote>\n• 子项 <i>斜</i>\n3) 第三\n\n"
                     '<pre><code class="language-python">a = 1 &lt; 2</code></pre>\n──────────'),
        ("slack", "*小标题 粗*\n\n~作废~ 用 `code &lt;x&gt;` 与 绿色，见 https://x.org 与 "
                  "<https://y.org>\n> > 二级引用 *重点*\n• 子项 _斜_\n3) 第三\n\n"
                  "```\na = 1 &lt; 2\n```\n————————"),
        ("discord", "**小标题 粗**\n\n~~作废~~ 用 `code <x>` 与 绿色，见 https://x.org 与 "
                    "<https://y.org>\n> 二级引用 **重点**\n- 子项 *斜*\n3) 第三\n\n"
                    "```python\na = 1 < 2\n```\n———"),
        ("plain", "小标题 粗\n\n作废 用 code <x> 与 绿色，见 https://x.org 与 https://y.org\n"
                  "> > 二级引用 重点\n• 子项 斜\n3) 第三\n\na = 1 < 2\n————————"),
    ],
)
def test_dialects_less_common_markup(dialect, expected):
    assert md.render(SOURCE_2, dialect) == expected


@pytest.mark.parametrize(
    ("source", "plain"),
    [
        ("snake_case_name stays", "snake_case_name stays"),
        ("5 * 3 = 15", "5 * 3 = 15"),
        ("**unclosed bold", "**unclosed bold"),
        ("\\*not italic\\*", "*not italic*"),
        ("`a**b**c`", "a**b**c"),
        ("[https://x.org](https://x.org)", "https://x.org"),
        ("~~gone~~ here", "gone here"),
        ('<font color="warning">红色</font>预警', "红色预警"),
        ("---", "————————"),
    ],
)
def test_inline_edge_cases(source, plain):
    assert md.strip_markdown(source) == plain


def test_font_colour_kept_where_supported():
    source = '<font color="warning">暴雨预警</font>'
    assert md.render(source, "wecom") == source
    assert md.render(source, "telegram") == "暴雨预警"


def test_code_block_per_dialect():
    source = "```\nif a < b:\n\n    go()\n```"
    assert md.render(source, "telegram") == "<pre>if a &lt; b:\n\n    go()</pre>"
    assert md.render(source, "slack") == "```\nif a &lt; b:\n\n    go()\n```"
    assert md.render(source, "wecom") == "if a ＜ b:\n\n    go()"


def test_unclosed_fence_ends_with_the_message():
    assert md.render("```\ncode <x>", "telegram") == "<pre>code &lt;x&gt;</pre>"


def test_dingtalk_rule_does_not_make_a_heading():
    assert md.render("上文\n---\n下文", "dingtalk") == "上文\n\n---\n\n下文"


def test_telegram_link_without_web_scheme_is_text():
    assert md.render("[点我](ftp://x)", "telegram") == "点我"


def test_visible_length_counts_after_entity_parsing():
    html = md.render("**a < b** & c", "telegram")
    assert html == "<b>a &lt; b</b> &amp; c"
    assert md.telegram_visible_text(html) == "a < b & c"
    assert md.utf16_len("汉字😀") == 4


def test_unknown_dialect():
    with pytest.raises(ValueError, match="unknown dialect"):
        md.render("x", "irc")


_ATOMS = ["**", "*", "_", "__", "~~", "`", "[", "]", "(", ")", "<", ">", "&", "&amp;", "\n",
          "\n\n", "> ", "# ", "- ", "1. ", "```", "https://x.org/?a=1&b=2", "文字", " ", "<b>",
          "</i>", "&lt", "\\", "[t](https://t.org)", "😀"]


@pytest.mark.parametrize("seed", range(300))
def test_telegram_html_is_always_well_formed(seed):
    rnd = random.Random(seed)
    source = "".join(rnd.choice(_ATOMS) for _ in range(rnd.randint(1, 40)))
    html = md.render(source, "telegram")
    # the simulator parses as Telegram does and raises on broken markup
    parse_telegram_html(html)
