"""groups.yaml: validation, ${ENV} interpolation, every problem reported with file:line."""

from __future__ import annotations

import pytest

from broadcaster.config.groups import QuietHours, load_groups
from broadcaster.errors import ConfigError
from tests.conftest import write_groups

GOOD = """
defaults:
  timezone: Asia/Shanghai
  quiet_hours: "22:00-07:00"
groups:
  - id: g1
    name: 第1网格群
    tags: [district:gulou, kind:grid]
    channel: {type: wecom, url: "${WECOM_G1}"}
    location: {name: 鼓楼区, lat: 32.066, lon: 118.778}
    templates: {welcome: welcome_elderly}
  - id: g2
    name: 第2网格群
    tags: [district:gulou]
    channel: {type: file, path: out}
    quiet_hours: ""
"""


def test_loads_and_interpolates(tmp_path):
    write_groups(tmp_path, GOOD)
    cfg = load_groups(tmp_path, environ={"WECOM_G1": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123"})
    g1, g2 = cfg.groups
    assert g1.channel.url.endswith("key=abc-123")
    assert g1.quiet_hours == QuietHours.parse("22:00-07:00")
    assert g2.quiet_hours is None  # explicitly switched off
    assert g1.templates == {"welcome": "welcome_elderly"}
    assert str(tmp_path) in g2.channel.path  # file paths are relative to the root
    assert "abc-123" in " ".join(cfg.secrets())


def test_missing_env_names_file_line_and_variable(tmp_path):
    write_groups(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_groups(tmp_path, environ={})
    [p] = info.value.problems
    assert p.file.endswith("groups.yaml") and p.line == 8
    assert "WECOM_G1" in p.message


def test_every_problem_at_once(tmp_path):
    write_groups(tmp_path, """
        groups:
          - id: Bad_ID
            name: x
            channel: {type: file, path: out}
          - id: dup
            name: a
            channel: {type: carrier-pigeon}
          - id: dup
            name: b
            channel: {type: file, path: out}
          - id: dup2
            name: c
            channel: {type: file, path: out}
            quiet_hours: "25:00-07:00"
          - id: ok
            name: d
            channel: {type: wecom, url: "http://evil.example.com/send?key=x"}
    """)
    with pytest.raises(ConfigError) as info:
        load_groups(tmp_path, environ={})
    text = str(info.value)
    assert "lowercase" in text and "carrier-pigeon" in text and "duplicate group id" in text
    assert "quiet hours" in text and "https" in text
    assert [(p.line, p.field) for p in info.value.problems] == [
        (2, "groups.0.id"), (7, "groups.1.channel.type"), (8, "groups.2.id"),
        (14, "groups.3.quiet_hours"), (17, "groups.4.channel.url"),
    ]


def test_malformed_yaml(tmp_path):
    (tmp_path / "groups.yaml").write_text("groups:\n  - id: a\n   name: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_groups(tmp_path)
    [p] = info.value.problems
    assert p.line is not None and "invalid YAML" in p.message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_groups(tmp_path)


@pytest.mark.parametrize(
    ("window", "hhmm", "inside"),
    [("22:00-07:00", "23:30", True), ("22:00-07:00", "06:59", True),
     ("22:00-07:00", "07:00", False), ("12:00-13:00", "12:30", True),
     ("12:00-13:00", "13:30", False)],
)
def test_quiet_hours(window, hhmm, inside):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    q = QuietHours.parse(window)
    t = datetime.fromisoformat(f"2026-11-22T{hhmm}").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert q.contains(t) is inside
    end = q.window_end(t)
    assert (end > t) is inside and not q.contains(end)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("defaults:\n  timezone: Europe/Berlin\ngroups: []\n", "Europe/Berlin"),
        ("groups:\n  - {id: a, tags: [x, y], timezone: Asia/Tokyo}\n"
         "defaults:\n  quiet_hours: '22:00-07:00'\n  timezone: America/New_York\n", "America/New_York"),
        ("defaults: {timezone: Asia/Tokyo}\n", "Asia/Tokyo"),
        ("groups:\n  - {id: a, timezone: Asia/Tokyo}\n", "Asia/Shanghai"),
        ("defaults:\n  quiet_hours: x\n  extra: {timezone: Asia/Tokyo}\n", "Asia/Shanghai"),
        ("defaults: [\n", "Asia/Shanghai"),
    ],
)
def test_default_timezone_without_loading_groups(tmp_path, text, zone):
    from broadcaster.config.fields import default_timezone

    (tmp_path / "groups.yaml").write_text(text)
    assert default_timezone(tmp_path) == zone


def test_parse_cache_is_reused_invalidated_and_never_holds_secrets(tmp_path):
    cache = tmp_path / "cache"
    env = {"WECOM_G1": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY-1"}
    write_groups(tmp_path, GOOD)
    first = load_groups(tmp_path, environ=env, cache_dir=cache)
    [cached] = list(cache.iterdir())
    assert "SECRET-KEY-1" not in cached.read_text() and "${WECOM_G1}" in cached.read_text()
    again = load_groups(tmp_path, environ=env, cache_dir=cache)  # served from the cache
    assert again.groups == first.groups
    # a missing variable on a cache hit still names the right line
    with pytest.raises(ConfigError) as info:
        load_groups(tmp_path, environ={}, cache_dir=cache)
    assert [(p.line, p.field) for p in info.value.problems] == [(8, "groups.0.channel.url")]
    # an edit invalidates it
    write_groups(tmp_path, GOOD.replace("第2网格群", "第二网格群"))
    assert load_groups(tmp_path, environ=env, cache_dir=cache).groups[1].name == "第二网格群"
    # a corrupt cache file is only a miss
    for f in cache.iterdir():
        f.write_text("{oops")
    assert load_groups(tmp_path, environ=env, cache_dir=cache).groups[1].name == "第二网格群"


def test_a_parse_cache_edited_by_hand_is_ignored(tmp_path):
    """The cache is keyed by the text it came from and checked: an edit is a miss."""
    cache = tmp_path / "cache"
    env = {"WECOM_G1": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY-1"}
    write_groups(tmp_path, GOOD)
    load_groups(tmp_path, environ=env, cache_dir=cache)
    [cached] = list(cache.iterdir())
    raw = cached.read_text(encoding="utf-8")
    assert "out" in raw and "第2网格群" in raw
    # messages redirected to another directory, a group renamed: the header still matches the text
    cached.write_text(raw.replace('"path": "out"', '"path": "/tmp/elsewhere"')
                      .replace("第2网格群", "冒名群"), encoding="utf-8")
    config = load_groups(tmp_path, environ=env, cache_dir=cache)
    assert config.groups[1].name == "第2网格群"
    assert config.groups[1].channel.path == str(tmp_path / "out")
    assert "冒名群" not in cached.read_text(encoding="utf-8")     # rewritten from the file


def test_parse_cache_skips_files_with_secrets_written_inline(tmp_path):
    cache = tmp_path / "cache"
    write_groups(tmp_path, GOOD.replace('"${WECOM_G1}"',
                                        '"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=inline"'))
    load_groups(tmp_path, environ={}, cache_dir=cache)
    assert not cache.exists() or not list(cache.iterdir())
