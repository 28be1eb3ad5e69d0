"""What editors meet: sample cases, --data laid over the sample, and errors that say
what to do (a content template given to announce, a misspelt template or filter, one
undefined field reported once)."""

from __future__ import annotations

import re

import pytest

from broadcaster.sources import kinds as registry
from broadcaster.templating import Templates, kinds
from tests.conftest import REPO, cli, queued_files, write_groups

GROUPS = """
defaults: {timezone: Asia/Shanghai}
groups:
  - id: gulou-hlz-g01
    name: 汇林绿洲社区第1网格群
    tags: [kind:grid]
    location: {name: 鼓楼区, lat: 32.066, lon: 118.778}
    channel: {type: file, path: out}
  - id: gulou-hlz-g02
    name: 汇林绿洲社区第2网格群
    tags: [kind:grid]
    location: {name: 鼓楼区, lat: 32.066, lon: 118.778}
    channel: {type: file, path: out}
"""
README = (REPO / "templates" / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def proj(root):
    write_groups(root, GROUPS)
    return root


# -- sample cases -------------------------------------------------------------------

def _cases() -> list[tuple[str, str]]:
    return [(kind, case) for kind, tk in registry.template_kinds().items() for case in tk.cases]


def test_the_kinds_editors_branch_on_declare_cases():
    declared = {kind for kind, _ in _cases()}
    assert {"weather", "weather_alert", "news", "events", "announcement", "welcome"} <= declared


@pytest.mark.parametrize(("kind", "case"), _cases())
def test_every_case_renders_every_shipped_template_of_its_kind(proj, kind, case):
    templates = Templates(REPO)
    names = [n for n in templates.names() if templates.kind_of(n) == kind]
    assert names, kind
    for name in names:
        r = cli(proj, "templates", "preview", name, "--case", case, "--channel", "wecom", "--json")
        assert r.code == 0, (name, case, r.err)
        doc = r.json()
        assert doc["case"] == case and doc["data"] == f"sample data, case {case}"
        assert doc["channels"][0]["markdown"].strip()


@pytest.mark.parametrize(("case", "shows", "not_shown"), [
    (None, "☂️", "🌤"),
    ("rain", "☂️", "🌤"),
    ("sunny", "🌤", "☂️"),
    ("hot", "☀️", "☂️"),
    ("cold", "🧣", "☂️"),
])
def test_weather_cases_show_each_branch(proj, case, shows, not_shown):
    args = ["templates", "preview", "weather", "--channel", "file"]
    r = cli(proj, *args, *(["--case", case] if case else []))
    assert r.code == 0, r.err
    assert shows in r.out and not_shown not in r.out


def test_events_reminder_case_is_the_day_before_reminder(proj):
    r = cli(proj, "templates", "preview", "events", "--case", "reminder", "--channel", "file")
    assert r.code == 0 and "活动提醒" in r.out and "未来" not in r.out


@pytest.mark.parametrize(("args", "needle"), [
    (["weather", "--case", "sunnny"], "no case 'sunnny' for weather templates (cases: rain, sunny, hot, "
                                      "cold); did you mean sunny?"),
    (["holiday", "--case", "rain"], "no case 'rain' for holiday templates: holiday has no named "
                                    "cases (see templates/README.md)"),
])
def test_an_unknown_case_is_refused_with_the_known_ones(proj, args, needle):
    r = cli(proj, "templates", "preview", *args)
    assert r.code == 1 and r.err == f"error: {needle}\n" and r.out == ""
    j = cli(proj, "templates", "preview", *args, "--json")
    assert j.code == 1 and j.json()["error"]["message"] == needle


def test_the_editors_guide_lists_every_case():
    for kind, tk in registry.template_kinds().items():
        if not tk.cases:
            continue
        row = next((line for line in README.splitlines() if line.startswith(f"| `{kind}` |")
                    and "--case" not in line and "`" in line.split("|")[2]
                    and any(f"`{c}`" in line for c in tk.cases)), None)
        assert row is not None, f"templates/README.md has no cases row for {kind}"
        assert re.findall(r"`(\w+)` \(", row) == list(tk.cases), row


# -- --data is laid over the sample ---------------------------------------------------

def test_data_is_merged_into_the_sample_at_any_depth(proj, tmp_path):
    data = tmp_path / "warm.yaml"
    data.write_text("weather:\n  current:\n    temp: 31\n", encoding="utf-8")
    r = cli(proj, "templates", "preview", "weather", "--channel", "file", "--data", str(data))
    assert r.code == 0, r.err
    assert "**现在** 多云 31°C" in r.out            # the given field ...
    assert "多云转小雨，6°C ~ 14°C" in r.out         # ... and the rest of the sample
    assert f"data: {data} over sample data;" in r.out


def test_data_is_laid_over_a_case(proj, tmp_path):
    data = tmp_path / "d.json"
    data.write_text('{"weather": {"today": {"temp_max": 20}}}', encoding="utf-8")
    r = cli(proj, "templates", "preview", "weather", "--case", "sunny", "--channel", "file",
            "--data", str(data), "--json")
    assert r.code == 0, r.err
    assert "晴，8°C ~ 20°C" in r.json()["channels"][0]["markdown"]
    assert r.json()["data"] == f"{data} over sample data, case sunny"


def test_overlay_merges_mappings_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert registry.overlay(base, {"a": {"c": [3]}, "e": None}) == {
        "a": {"b": 1, "c": [3]}, "d": 1, "e": None}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


# -- errors that say what to do -----------------------------------------------------

def test_announce_with_a_content_template_says_what_announcements_use(proj):
    r = cli(proj, "announce", "--template", "weather", "--to", "all")
    assert r.code == 1
    assert r.err.startswith("error: weather is a content template (kind weather")
    assert "announcements use" in r.err and "announcement, sorting_reminder" in r.err
    assert "undefined" not in r.err and queued_files(proj) == []
    j = cli(proj, "announce", "--template", "weather", "--to", "all", "--json")
    assert j.code == 1 and "is a content template" in j.json()["error"]["message"]


def test_announce_with_a_named_template_still_works(proj):
    r = cli(proj, "announce", "--template", "sorting_reminder", "--to", "all", "--json")
    assert r.code == 0, r.err
    assert r.json()["targets"] == 2


@pytest.mark.parametrize(("args", "needle"), [
    (["templates", "preview", "welcom"], "did you mean welcome"),
    (["templates", "preview", "wether"], "did you mean weather"),
    (["announce", "--template", "sorting_remindr", "--to", "all"], "did you mean sorting_reminder"),
    (["templates", "preview", "xyzzy"], "(see: templates list)"),
])
def test_a_misspelt_template_gets_a_suggestion(proj, args, needle):
    r = cli(proj, *args)
    assert r.code == 1 and needle in r.err and "Traceback" not in r.err
    j = cli(proj, *args, "--json")
    assert j.code == 1 and needle in j.json()["error"]["message"]


@pytest.mark.parametrize(("source", "message"), [
    ('{{ members|joinn(",") }}', "unknown filter 'joinn' (did you mean 'join'?)"),
    ("{{ members|cn_dat }}", "unknown filter 'cn_dat' (did you mean 'cn_date'?)"),
    ("{{ members|zzzzzz }}", "unknown filter 'zzzzzz' (see the Filters list in templates/README.md)"),
    ("{% if members is nmber %}x{% endif %}", "unknown test 'nmber'"),
])
def test_an_unknown_filter_gets_a_suggestion_not_syntax_error(proj, source, message):
    (proj / "templates" / "welcome_x.md.j2").write_text(source + "\n", encoding="utf-8")
    for args in (["check"], ["templates", "preview", "welcome_x"]):
        r = cli(proj, *args)
        assert r.code == 1
        assert f"templates/welcome_x.md.j2:1: {message}" in r.err, r.err
        assert "syntax error" not in r.err


def test_an_undefined_field_is_reported_once_with_what_it_could_be(proj):
    weather = proj / "templates" / "weather.md.j2"
    weather.write_text(weather.read_text(encoding="utf-8").replace(
        "weather.current.text", "weather.current.txt"), encoding="utf-8")
    r = cli(proj, "check", "--json")
    assert r.code == 1
    problems = r.json()["error"]["problems"]
    assert len(problems) == 1, problems
    assert problems[0]["line"] == 6
    assert problems[0]["message"] == (
        "undefined: weather.current has no field 'txt' (did you mean 'text'?) "
        "(with sample data and for group gulou-hlz-g01 and 1 more)")
    human = cli(proj, "check")
    assert human.err.count("has no field 'txt'") == 1


def test_a_field_of_a_loop_variable_is_named_as_written(proj):
    (proj / "templates" / "weather_x.md.j2").write_text(
        "{% for d in weather.days %}{{ d.txt }}{% endfor %}\n", encoding="utf-8")
    r = cli(proj, "templates", "preview", "weather_x")
    assert r.code == 1 and "weather_x.md.j2:1: undefined: d has no field 'txt'" in r.err


def test_every_kind_with_cases_is_a_template_kind():
    for kind, _ in _cases():
        assert kind in kinds.names()
