"""Templates: the sandbox, the filters, resolution, check, preview, and the editors' README."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from broadcaster import channels
from broadcaster.config.groups import load_groups
from broadcaster.sources.festivals import FESTIVALS
from broadcaster.templating import TemplateError, Templates, kinds
from broadcaster.templating.filters import FILTERS, truncate_bytes
from broadcaster.templating.preview import preview
from broadcaster.templating.samples import sample_group
from tests.conftest import REPO, cli, write_groups

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=TZ)   # a Sunday, 小雪, 十月十四


def put(root: Path, name: str, body: str) -> Path:
    path = root / "templates" / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def render(root: Path, name: str, data: dict | None = None, now: datetime = NOW, **kw) -> str:
    return Templates(root).render(name, group=sample_group(), data=data or {}, now=now, **kw)


def failure(root: Path, name: str, data: dict | None = None) -> str:
    with pytest.raises(TemplateError) as info:
        render(root, name, data)
    assert len(info.value.problems) == 1
    return str(info.value.problems[0])


GROUPS = """
groups:
  - id: g-wecom
    name: 第1网格群
    tags: [kind:grid]
    channel: {type: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"}
    location: {name: 鼓楼区, lat: 32.07, lon: 118.78}
  - id: g-elderly
    name: 银发关爱群
    tags: [kind:elderly]
    channel: {type: telegram, token: "123:abc", chat_id: "-100"}
    templates: {welcome: welcome_elderly}
  - id: g-file
    name: 测试群
    channel: {type: file, path: out}
"""


# -- the sandbox ---------------------------------------------------------------------


@pytest.mark.parametrize("body, reason", [
    ("{{ ''.__class__.__mro__ }}", "not allowed: access to attribute '__class__'"),
    ("{{ cycler.__init__.__globals__ }}", "not allowed: access to attribute '__init__'"),
    ("{{ range(10**9)|list }}", "range() of 1000000000 items is too big"),
    ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
     "does too much work"),
    ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "not allowed"),
    ("{{ 'ab' * 10**8 }}", "repeated text would be too long"),
    ("{{ 'x'|center(10**8) }}", "too big for this filter"),
    ("{{ '%099999999d' % 1 }}", "format width"),
    ("{{ '{:>99999999}'.format(1) }}", "not allowed"),
    ("{{ 'a'|indent('x' * 60000, true) }}{% for i in range(999) %}{{ 'y' * 60000 }}{% endfor %}",
     "not allowed"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s }}", "joined text would be too long"),
    ("{{ 10 ** 100000 }}", "number is too big"),
    ("{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}", "longer than 65536 bytes"),
])
def test_sandbox_refuses_escapes_and_exhaustion(root, body, reason):
    put(root, "evil.md.j2", f"第一行\n{body}\n")
    message = failure(root, "evil")
    assert "templates/evil.md.j2" in message
    assert reason in message


def test_sandbox_cannot_mutate_data_and_prints_none_as_nothing(root):
    put(root, "m.md.j2", "{{ vars.x.append(1) }}")
    assert "not allowed" in failure(root, "m", {"vars": {"x": [1]}})
    put(root, "n.md.j2", "a{{ vars.none }}b")
    assert render(root, "n", {"vars": {"none": None}}) == "ab"


def test_typo_in_a_variable_names_file_line_and_a_suggestion(root):
    put(root, "weather_typo.md.j2", """
        # 天气
        {{ group.name }}
        {{ wether.current.temp }}
    """)
    message = failure(root, "weather_typo", {"weather": {}})
    assert re.search(r"templates/weather_typo\.md\.j2:3: undefined variable 'wether' "
                     r"\(did you mean 'weather'\?\)", message)


def test_missing_field_is_an_error_not_a_blank(root):
    put(root, "weather_field.md.j2", "今天\n\n{{ weather.current.tmp }}\n")
    data = {"weather": {"current": {"temp": 3}}}
    assert re.search(r"weather_field\.md\.j2:3: undefined: .* has no field 'tmp'",
                     failure(root, "weather_field", data))


def test_unclosed_block_is_a_syntax_error_with_its_line(root):
    put(root, "broken.md.j2", "a\n{% if urgent %}\nb\n")
    message = failure(root, "broken")
    assert re.search(r"broken\.md\.j2:3: syntax error: Unexpected end of template.*'endif'",
                     message)


def test_empty_message_is_refused(root):
    put(root, "nothing.md.j2", "{% if false %}x{% endif %}\n")
    assert "the message is empty" in failure(root, "nothing")


# -- filters -----------------------------------------------------------------------------

@pytest.mark.parametrize("today, expected", [
    ("2026-02-17", "2026年2月17日 星期二 正月初一 丙午年 ['春节']"),
    ("2026-09-25", "2026年9月25日 星期五 八月十五 丙午年 ['中秋节']"),
    ("2026-10-18", "2026年10月18日 星期日 九月初九 丙午年 ['重阳节']"),
    ("2026-02-16", "2026年2月16日 星期一 腊月廿九 乙巳年 ['除夕']"),
    ("2026-12-22", "2026年12月22日 星期二 冬月十四 丙午年 ['冬至'] 冬至"),
])
def test_today_and_date_filters_on_real_dates(root, today, expected):
    put(root, "d.md.j2", """
        {{ now|cn_date }} {{ today.weekday }} {{ today.lunar }} {{ today.lunar_year }} \
        {{- " " }}{{ today.festivals }}{% if today.solar_term %} {{ today.solar_term }}{% endif %}
    """)
    with time_machine.travel(datetime.fromisoformat(today + "T08:00+08:00"), tick=False):
        now = datetime.now(TZ)
        assert render(root, "d", now=now) == expected
        assert render(root, "d", now=now.astimezone(ZoneInfo("UTC"))) == expected


def test_lunar_and_weekday_filters(root):
    put(root, "f2.md.j2", "{% set d = vars.d %}{{ d|lunar }} {{ d|lunar(true) }} "
                          "{{ d|weekday('周') }} {{ d|cn_date(false) }} {{ '2026-10-18'|lunar }}")
    out = render(root, "f2", {"vars": {"d": date(2026, 9, 25)}})
    assert out == "八月十五 丙午年八月十五 周五 9月25日 九月初九"


@pytest.mark.parametrize("day, expected", [
    ("2026-11-22", "今天"), ("2026-11-23", "明天"), ("2026-11-24", "后天"),
    ("2026-11-21", "昨天"), ("2026-11-20", "前天"),
    ("2026-11-28", "下周六"), ("2026-11-29", "下周日"), ("2026-11-16", "本周一"),
    ("2026-11-09", "上周一"), ("2026-11-30", "11月30日"), ("2027-01-03", "2027年1月3日"),
])
def test_relative_day_counts_from_now_in_chinese_weeks(root, day, expected):
    # NOW is a Sunday: the week (Monday..Sunday) ends today
    put(root, "r.md.j2", "{{ vars.d|relative_day }}")
    assert render(root, "r", {"vars": {"d": day}}) == expected


def test_relative_day_this_week(root):
    put(root, "r.md.j2", "{{ vars.d|relative_day }} {{ vars.d|days_until }}")
    wednesday = datetime(2026, 11, 18, 9, 0, tzinfo=TZ)
    assert render(root, "r", {"vars": {"d": "2026-11-21"}}, now=wednesday) == "本周六 3"


def test_relative_day_and_hhmm_use_the_group_timezone(root):
    put(root, "t.md.j2", "{{ vars.t|relative_day }} {{ vars.t|hhmm }}")
    utc = datetime(2026, 11, 22, 17, 30, tzinfo=ZoneInfo("UTC"))  # 01:30 on the 23rd in Nanjing
    assert render(root, "t", {"vars": {"t": utc}}) == "明天 01:30"


def test_truncate_bytes_never_cuts_a_character():
    text = "鼓楼区新增社区食堂"  # 9 characters, 27 bytes
    assert truncate_bytes(text, 27) == text
    for n in range(4, 27):
        out = truncate_bytes(text, n)
        assert len(out.encode()) <= n
        assert out.endswith("…") and text.startswith(out[:-1])
    assert truncate_bytes(text, 10) == "鼓楼…"
    assert truncate_bytes(text, 2) == ""
    assert truncate_bytes("abc def", 6, end="...") == "abc..."


def test_number_temperature_and_join_filters(root):
    put(root, "n.md.j2", "{{ 1234567|number }} {{ 1234.56|number(1) }} {{ 12.5|temp }} "
                         "{{ -0.4|temp }} {{ vars.none|temp }} {{ 59.5|percent }} "
                         "{{ vars.names|join_cn }} {{ vars.names|join_cn(last='和') }}")
    out = render(root, "n", {"vars": {"none": None, "names": ["张阿姨", "李师傅", "小王"]}})
    assert out == "1,234,567 1,234.6 13°C 0°C -- 60% 张阿姨、李师傅、小王 张阿姨、李师傅和小王"


# -- kinds and resolution ---------------------------------------------------------------

@pytest.mark.parametrize("name, kind", [
    ("weather", "weather"), ("weather_alert", "weather_alert"), ("weather_short", "weather"),
    ("holiday_chunjie", "holiday"), ("welcome_elderly", "welcome"),
    ("sorting_reminder", "template"), ("weather.telegram", "weather"),
])
def test_kind_by_name(name, kind):
    assert kinds.kind_by_name(name) == kind


def test_declared_kind_wins(root):
    put(root, "greeting.md.j2", "{# kind: welcome #}\n欢迎{{ members|join_cn }}")
    t = Templates(root)
    assert t.kind_of("greeting") == "welcome"
    assert render(root, "greeting", {"members": ["小王"]}) == "欢迎小王"


def test_resolution_order(root):
    write_groups(root, GROUPS)
    groups = load_groups(root).by_id
    t = Templates(root)
    put(root, "holiday_chunjie.wecom.md.j2", "春节（企业微信）")

    res = t.resolve("welcome", group=groups["g-elderly"])
    assert res.file.key == "welcome_elderly"
    assert res.describe() == [
        "group g-elderly: templates.welcome -> welcome_elderly  (group override)",
        "welcome_elderly.telegram.md.j2  (channel: not found)",
        "welcome_elderly.md.j2  (base: used)",
    ]
    assert t.resolve("weather", group=groups["g-elderly"]).file.key == "weather.telegram"
    assert t.resolve("weather", group=groups["g-wecom"]).file.key == "weather"
    assert t.resolve("holiday", group=groups["g-wecom"], festival="chunjie").file.key == \
        "holiday_chunjie.wecom"
    assert t.resolve("holiday", group=groups["g-file"], festival="chunjie").file.key == \
        "holiday_chunjie"
    assert t.resolve("holiday", group=groups["g-file"], festival="laodong").file.key == "holiday"
    assert t.resolve("missing", group=groups["g-file"]).file is None


def test_render_lists_the_folder_and_compiles_once_yet_sees_edits(root, monkeypatch):
    from broadcaster.templating import templates as module

    t = Templates(root)
    scans, compiled = [], []
    real_scan, real_compile = module.scan, t.env.compile
    monkeypatch.setattr(module, "scan", lambda d: scans.append(d) or real_scan(d))
    monkeypatch.setattr(t.env, "compile", lambda *a, **k: compiled.append(a[1]) or
                        real_compile(*a, **k))
    data = {"text": "停水通知", "sender": None}
    for _ in range(50):  # a fan-out renders one template for every group
        assert t.render("announcement", group=sample_group(), data=data, now=NOW) == "停水通知"
    assert len(scans) == 1
    assert compiled == ["announcement.md.j2"]

    path = put(root, "announcement.md.j2", "【新】{{ text }}\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert t.render("announcement", group=sample_group(), data=data, now=NOW) == "【新】停水通知"
    put(root, "notice.md.j2", "通知：{{ vars.x }}\n")  # a new file changes the folder
    assert t.render("notice", group=sample_group(), data={"vars": {"x": 1}}, now=NOW) == "通知：1"
    assert len(scans) == 2


def test_render_picks_festival_from_data(root):
    t = Templates(root)
    fest = {"key": "chongyang", "name": "重阳节", "kind": "traditional",
            "date": date(2026, 10, 18), "lunar": "九月初九", "arrangement": None}
    out = t.render("holiday", group=sample_group(), data={"festival": fest},
                   now=datetime(2026, 10, 18, 8, 0, tzinfo=TZ))
    assert "重阳节" in out and "九月初九" in out


# -- check -----------------------------------------------------------------------------------

def test_check_passes_on_the_shipped_templates(root):
    write_groups(root, GROUPS)
    groups = load_groups(root).groups
    assert Templates(root).check(groups, now=NOW) == []


def test_check_reports_every_broken_template_with_file_and_line(root):
    write_groups(root, GROUPS)
    put(root, "weather.md.j2", "天气\n{{ wether }}\n")
    put(root, "news.md.j2", "{% for i in items %}\n{{ i.title }}\n")
    put(root, "events.md.j2", "活动\n\n{{ ''.__class__.__mro__ }}\n")
    put(root, "holiday_zhongqiu.md.j2", "{% for i in range(999) %}{% for j in range(999) %}"
                                        "{% endfor %}{% endfor %}\n")
    problems = [str(p) for p in Templates(root).check(load_groups(root).groups, now=NOW)]
    joined = "\n".join(problems)
    assert re.search(r"weather\.md\.j2:2: uses 'wether', which weather templates do not "
                     r"receive", joined)
    assert re.search(r"news\.md\.j2:2: syntax error", joined)
    assert re.search(r"events\.md\.j2:3: not allowed: access to attribute '__class__'.*"
                     r"\(with sample data and for group ", joined)
    assert re.search(r"holiday_zhongqiu\.md\.j2:1: not allowed: the template does too much",
                     joined)


def test_check_catches_a_channel_override_left_behind(root):
    write_groups(root, GROUPS)
    put(root, "weather.wecom.md.j2", "{{ forecast.today }}\n")
    problems = [str(p) for p in Templates(root).check(load_groups(root).groups, now=NOW)]
    assert any(re.search(r"weather\.wecom\.md\.j2:1: uses 'forecast', which weather templates "
                         r"do not receive \(its base weather\.md\.j2 receives: .*weather", p)
               for p in problems), problems


def test_check_renders_for_each_group_that_uses_a_template(root):
    write_groups(root, GROUPS)
    put(root, "welcome_elderly.md.j2", "欢迎{{ members|join_cn }}来到{{ group.location.name }}\n")
    problems = [str(p) for p in Templates(root).check(load_groups(root).groups, now=NOW)]
    # the sample group has a location; g-elderly (the only user) has none
    assert len(problems) == 1
    assert re.search(r"welcome_elderly\.md\.j2:1: undefined: .*'name'.* \(for group g-elderly\)$",
                     problems[0]), problems


def test_check_reports_overrides_and_bad_names(root):
    write_groups(root, GROUPS.replace("welcome: welcome_elderly", "welcome: welcome_eldrly"))
    put(root, "weather.wechat.md.j2", "x")
    problems = [str(p) for p in Templates(root).check(load_groups(root).groups, now=NOW)]
    # the line of `templates: {welcome: …}` in groups.yaml
    assert any(re.search(r"groups\.yaml:11: g-elderly\.templates\.welcome: no template "
                         r"'welcome_eldrly'", p) for p in problems), problems
    assert any("weather.wechat.md.j2: 'wechat' is not a channel type" in p for p in problems)


def test_check_reports_a_message_too_long_for_the_channel(root):
    write_groups(root, GROUPS)
    long_text = ("社区通知内容。" * 100 + "\n\n") * 3
    put(root, "welcome.md.j2", "欢迎{{ members|join_cn }}\n\n" + long_text)
    problems = [str(p) for p in Templates(root).check(load_groups(root).groups, now=NOW)]
    assert any(re.search(r"welcome\.md\.j2: with sample data the message does not fit one "
                         r"wecom message \(4096 per message\): group g-wecom would get it in "
                         r"\d parts", p) for p in problems), problems


def test_cli_check_exits_1_and_announce_refuses_a_broken_template(root):
    write_groups(root, GROUPS)
    put(root, "announcement.md.j2", "{% if urgent %}\n{{ text }}\n")
    result = cli(root, "check")
    assert result.code == 1
    assert "announcement.md.j2:2: syntax error" in result.err
    result = cli(root, "announce", "停水通知", "--to", "all")
    assert result.code == 1
    assert "announcement.md.j2:2: syntax error" in result.err
    put(root, "sorting_reminder.md.j2", "### 垃圾分类\n\n{{ vars.plase }}\n")
    result = cli(root, "announce", "--template", "sorting_reminder", "--var", "place=3号楼",
                 "--to", "all")
    assert result.code == 1
    assert "sorting_reminder.md.j2:3: undefined: " in result.err and "'plase'" in result.err
    assert cli(root, "queue", "list", "--all", "--json").json() == []


# -- shipped templates, preview, list -----------------------------------------------------------

SHIPPED = sorted(p.name[: -len(".md.j2")].split(".")[0]
                 for p in (REPO / "templates").glob("*.md.j2") if not p.name.startswith("_"))


@pytest.mark.parametrize("name", sorted(set(SHIPPED)))
def test_every_shipped_template_renders_on_every_channel(root, name):
    result = preview(Templates(root), name, now=NOW)
    assert [c.channel for c in result.channels] == channels.channel_types()
    for cp in result.channels:
        assert cp.markdown.strip()
        assert cp.parts and all(p.size <= p.limit for p in cp.parts)
        assert cp.fits, f"{name} on {cp.channel} needs {len(cp.parts)} parts"


def test_required_festival_templates_are_shipped():
    for key in ("chunjie", "chuxi", "zhongqiu", "chongyang", "dongzhi", "yuandan", "guoqing",
                "duanwu", "yuanxiao"):
        assert (REPO / "templates" / f"holiday_{key}.md.j2").exists()
        assert key in FESTIVALS


def test_preview_shows_a_6000_byte_message_split_for_wecom(root, tmp_path):
    data = tmp_path / "long.yaml"
    paragraphs = [f"第{i}段：因供水管道维修，宁海路沿线将分时段停水，请大家提前储水。"
                  + "详情请咨询社区。" * 5 for i in range(1, 31)]
    text = "\n\n".join(paragraphs)
    assert len(text.encode()) > 6000
    write_groups(root, GROUPS)
    data.write_text("text: |\n" + textwrap.indent(text, "  ") + "\n", encoding="utf-8")
    result = preview(Templates(root), "announcement", channel="wecom", data_file=data, now=NOW)
    cp = result.channels[0]
    assert cp.resolution.file.key == "announcement.wecom"
    assert len(cp.parts) == 2
    assert all(p.size <= 4096 for p in cp.parts)
    out = cli(root, "templates", "preview", "announcement", "--channel", "wecom",
              "--data", str(data))
    assert out.code == 0
    assert "split into 2 messages (limit 4096 bytes per message)" in out.out
    assert "[part 2/2:" in out.out


def test_preview_cli_with_group_shows_override_chain(root):
    write_groups(root, GROUPS)
    out = cli(root, "templates", "preview", "welcome", "--group", "g-elderly")
    assert out.code == 0, out.err
    assert "1. group g-elderly: templates.welcome -> welcome_elderly  (group override)" in out.out
    assert "=== telegram ===" in out.out and "=== wecom ===" not in out.out
    assert '"parse_mode": "HTML"' in out.out or "chat_id" in out.out
    assert "123:abc" not in out.out  # the bot token is a secret


def test_preview_of_a_holiday_shows_the_festival_day(root):
    out = preview(Templates(root), "holiday", festival="chunjie", channel="file", now=NOW)
    assert out.now.date() == date(2027, 2, 6)
    assert out.channels[0].resolution.file.key == "holiday_chunjie"


def test_preview_refuses_an_unknown_festival_and_shows_a_holiday_override(root):
    write_groups(root, GROUPS)
    out = cli(root, "templates", "preview", "holiday", "--festival", "chunjei")
    assert out.code == 1
    assert "unknown festival 'chunjei'" in out.err and "chunjie" in out.err
    # a holiday template a group picks by name (templates: {holiday: holiday_red}) is no
    # festival's: it is shown with the default festival
    put(root, "holiday_red.md.j2", "🏮 {{ festival.name }}快乐\n")
    result = preview(Templates(root), "holiday_red", channel="file", now=NOW)
    assert result.channels[0].markdown == "🏮 中秋节快乐"
    # a festival only the holiday source knows
    put(root, "holiday_laodong.md.j2", "{{ festival.name }}快乐\n")
    result = preview(Templates(root), "holiday", festival="laodong", channel="file", now=NOW)
    assert result.channels[0].markdown == "劳动节快乐"
    assert result.now.date() == date(2027, 5, 1)


def test_templates_list_shows_kind_groups_and_schedules(root):
    write_groups(root, GROUPS)
    (root / "schedules" / "daily.yaml").write_text(textwrap.dedent("""
        jobs:
          - {id: morning-weather, cron: "0 7 * * *", content: weather, to: [all]}
          - {id: sorting, cron: "0 19 * * 5", content: template, template: sorting_reminder,
             to: [all]}
    """), encoding="utf-8")
    put(root, "holiday_laodong.md.j2", "{{ festival.name }}快乐\n")  # a festival feeds/ knows
    from broadcaster.templating.usage import list_templates

    infos = {i.key: i for i in list_templates(Templates(root))[0]}
    assert infos["holiday_laodong"].groups == ["g-wecom", "g-elderly", "g-file"]
    assert infos["weather"].groups == ["g-wecom", "g-file"]
    assert infos["weather.telegram"].groups == ["g-elderly"]
    assert infos["weather"].schedules == ["morning-weather"]
    assert infos["sorting_reminder"].kind == "template"
    assert infos["sorting_reminder"].schedules == ["sorting"]
    assert infos["welcome_elderly"].groups == ["g-elderly"]
    assert "g-elderly" not in infos["welcome"].groups
    assert infos["announcement.wecom"].groups == ["g-wecom"]
    assert infos["holiday_chunjie"].kind == "holiday"
    out = cli(root, "templates", "list")
    assert out.code == 0 and "sorting_reminder" in out.out


# -- the editors' README stays in step with the code --------------------------------------------

def _documented() -> tuple[dict[str, set[str]], set[str]]:
    text = (REPO / "templates" / "README.md").read_text(encoding="utf-8")
    variables = text.split("\n## Variables", 1)[1].split("\n## ", 1)[0]
    by_kind: dict[str, set[str]] = {}
    current = None
    for line in variables.splitlines():
        heading = re.match(r"### (.+)", line)
        if heading:
            current = "common" if heading.group(1) == "Every template" else heading.group(1)
            by_kind[current] = set()
        item = re.match(r"- `([\w.\[\]]+)`", line)
        if item and current:
            by_kind[current].add(item.group(1))
    filters_section = text.split("\n## Filters", 1)[1].split("\n## ", 1)[0]
    filters = set(re.findall(r"^- `(\w+)`", filters_section, re.M))
    return by_kind, filters


def _flatten(value, prefix: str = "") -> set[str]:
    out = {prefix} if prefix else set()
    if prefix in kinds.OPEN_FIELDS:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for item in value:
            out |= _flatten(item, f"{prefix}[]")
        out.discard(f"{prefix}[]")
    return out


def test_every_command_the_readme_shows_editors_works(root, tmp_path):
    text = (REPO / "templates" / "README.md").read_text(encoding="utf-8")
    shutil.copy(REPO / "groups.yaml", root / "groups.yaml")
    water = tmp_path / "water.yaml"   # the README's example data file, as it shows it
    water.write_text(text.split("e.g. `water.yaml`:\n\n```yaml\n", 1)[1].split("```")[0],
                     encoding="utf-8")
    commands = re.findall(r"^python main\.py ([^#\n]+?)\s*(?:#.*)?$", text, re.M)
    assert len(commands) >= 6
    for command in commands:
        args = [str(water) if a == "water.yaml" else a for a in command.split()]
        result = cli(root, *args)
        assert result.code == 0, (command, result.err)
    assert "urgent" in water.read_text(encoding="utf-8")


def test_readme_documents_exactly_the_contract():
    documented, filters = _documented()
    assert documented.pop("common") == set(kinds.COMMON_FIELDS)
    assert documented == {k: set(kinds.get(k).fields) for k in kinds.names()}
    assert filters == set(FILTERS)


@pytest.mark.parametrize("kind", sorted(kinds.names()))
def test_everything_passed_to_templates_is_documented(root, kind):
    documented, _ = _documented()
    t = Templates(root)
    festival = {"festival": "guoqing"} if kind == "holiday" else {}
    data = t.sample_data(kind, NOW, **festival)
    from broadcaster.templating.context import build_context

    context = build_context(kind, sample_group(), NOW, data)
    passed = _flatten(context)
    assert passed <= documented["common"] | documented[kind]
    assert passed == set(kinds.fields(kind))


def test_news_item_without_a_link_is_bold_text_not_an_empty_link(root):
    items = [{"title": "社区通知", "link": None, "summary": "", "published": None,
              "feed_id": "f", "feed_title": "区政府"},
             {"title": "街道新闻", "link": "https://example.gov.cn/a", "summary": "摘要",
              "published": None, "feed_id": "f", "feed_title": "区政府"}]
    shutil.copy(REPO / "templates" / "news.md.j2", root / "templates" / "news.md.j2")
    out = render(root, "news", {"items": items})
    assert "1. **社区通知**" in out and "]()" not in out
    assert "2. **[街道新闻](https://example.gov.cn/a)**" in out


# -- one template for many groups ---------------------------------------------------------------

MANY = "groups:\n" + "".join(
    f"  - id: g{i}\n    name: 第{i}网格群\n    channel: {{type: file, path: out}}\n"
    + ("    timezone: Europe/London\n" if i % 3 == 0 else "")
    for i in range(12))


def _counting(t: Templates, monkeypatch) -> list[str]:
    rendered: list[str] = []
    real = t.env.render
    monkeypatch.setattr(t.env, "render", lambda tpl, ctx: rendered.append(tpl.name) or
                        real(tpl, ctx))
    return rendered


@pytest.mark.parametrize("name", sorted(set(SHIPPED)))
def test_a_batch_renders_what_each_group_gets_alone(root, name):
    from broadcaster.templating.batch import RenderBatch

    write_groups(root, GROUPS + MANY.removeprefix("groups:\n"))
    groups = load_groups(root).groups
    t = Templates(root)
    batch = RenderBatch(t)
    data = t.sample_data(t.kind_of(name), NOW)
    for g in groups:
        assert batch.render(name, group=g, data=data, now=NOW) == \
            t.render(name, group=g, data=data, now=NOW), g.id


def test_a_batch_renders_each_distinct_message_once(root, monkeypatch):
    from broadcaster.templating.batch import RenderBatch

    write_groups(root, MANY)
    groups = load_groups(root).groups
    t = Templates(root)
    rendered = _counting(t, monkeypatch)
    put(root, "plain.md.j2", "{{ vars.text }} {{ now|hhmm }} {{ vars.n }}\n")
    batch = RenderBatch(t)
    texts = {g.id: batch.render("plain", group=g, data={"vars": {"text": "停水", "n": 1}},
                                now=NOW) for g in groups}
    assert len(rendered) == 2      # one per timezone
    assert texts["g0"] == "停水 00:00 1" and texts["g1"] == "停水 08:00 1"
    # values alike to == but printed differently are not taken for each other
    outs = [batch.render("plain", group=groups[1], data={"vars": {"text": "x", "n": n}},
                         now=NOW) for n in (1, True, 1.0, 0.0, -0.0, "1", [1], (1,))]
    assert outs == ["x 08:00 1", "x 08:00 True", "x 08:00 1.0", "x 08:00 0.0", "x 08:00 -0.0",
                    "x 08:00 1", "x 08:00 [1]", "x 08:00 (1,)"]


class _Loud(str):
    """Text that prints otherwise than it compares (an enum's member, say)."""

    def __str__(self) -> str:
        return self.upper()


def test_a_batch_takes_no_look_alike_value_for_another(root):
    """A subclass of text, number, list or dict may print as its equal never does: such data
    is rendered for its own group."""
    from collections import defaultdict

    from broadcaster.templating.batch import RenderBatch

    write_groups(root, MANY)
    group = load_groups(root).groups[1]
    t = Templates(root)
    put(root, "plain.md.j2", "{{ vars.text }} {{ vars.n }}\n")
    batch = RenderBatch(t)
    outs = [batch.render("plain", group=group, data={"vars": {"text": "x", "n": n}}, now=NOW)
            for n in ("ab", _Loud("ab"), "ab")]
    assert outs == ["x ab", "x AB", "x ab"]
    put(root, "table.md.j2", "{{ vars.t.x }}\n")
    batch = RenderBatch(t)
    outs = [batch.render("table", group=group, data={"vars": {"t": t_}}, now=NOW)
            for t_ in (defaultdict(lambda: "甲"), defaultdict(lambda: "乙"))]
    assert outs == ["甲", "乙"]


@pytest.mark.parametrize("body, partial", [
    ("{{ vars.text }}/{{ group.name }}\n", None),
    ("{{ vars.text }}{% include '_who.md.j2' %}\n", "/{{ group.name }}"),
    ("{% from '_who.md.j2' import who with context %}{{ vars.text }}{{ who() }}\n",
     "{% macro who() %}/{{ group.name }}{% endmacro %}"),
    ("{{ vars.text }}{% include '_' ~ vars.part ~ '.md.j2' %}\n", "/{{ group.name }}"),
])
def test_a_batch_renders_per_group_a_template_that_reads_the_group(root, monkeypatch, body,
                                                                    partial):
    from broadcaster.templating.batch import RenderBatch

    write_groups(root, MANY)
    groups = load_groups(root).groups
    put(root, "named.md.j2", body)
    if partial is not None:
        put(root, "_who.md.j2", partial)
    t = Templates(root)
    rendered = _counting(t, monkeypatch)
    batch = RenderBatch(t)
    data = {"vars": {"text": "who", "part": "who"}}
    texts = [batch.render("named", group=g, data=data, now=NOW) for g in groups]
    assert texts == [f"who/{g.name}" for g in groups]
    assert len(rendered) == len(groups)


def test_a_batch_draws_a_random_choice_per_group(root, monkeypatch):
    from broadcaster.templating.batch import RenderBatch

    write_groups(root, MANY)
    groups = load_groups(root).groups
    put(root, "lucky.md.j2", "{{ range(1000)|random }}\n")
    t = Templates(root)
    rendered = _counting(t, monkeypatch)
    batch = RenderBatch(t)
    texts = {batch.render("lucky", group=g, data={}, now=NOW) for g in groups}
    assert len(rendered) == len(groups)
    assert len(texts) > 1
