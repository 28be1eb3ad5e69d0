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
    from broadcaster.config.timezone import default_timezone

    (tmp_path / "groups.yaml").write_text(text)
    assert default_timezone(tmp_path) == zone


def parse_cache(cache):
    [cached] = [f for f in cache.iterdir() if not f.name.endswith("-valid.json")]
    return cached


def valid_cache(cache):
    [cached] = list(cache.glob("*-valid.json"))
    return cached


def test_parse_cache_is_reused_invalidated_and_never_holds_secrets(tmp_path):
    cache = tmp_path / "cache"
    env = {"WECOM_G1": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY-1"}
    write_groups(tmp_path, GOOD)
    first = load_groups(tmp_path, environ=env, cache_dir=cache)
    cached = parse_cache(cache)
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
    cached = parse_cache(cache)
    raw = cached.read_text(encoding="utf-8")
    assert "out" in raw and "第2网格群" in raw
    # messages redirected to another directory, a group renamed: the header still matches the text
    cached.write_text(raw.replace('"path": "out"', '"path": "/tmp/elsewhere"')
                      .replace("第2网格群", "冒名群"), encoding="utf-8")
    config = load_groups(tmp_path, environ=env, cache_dir=cache)
    assert config.groups[1].name == "第2网格群"
    assert config.groups[1].channel.path == str(tmp_path / "out")
    assert "冒名群" not in cached.read_text(encoding="utf-8")     # rewritten from the file


def counted_validation(monkeypatch) -> list[str]:
    """The ids of the group entries validated from now on (not served from the cache)."""
    import broadcaster.config.groups as groups_module

    calls: list[str] = []
    validate = groups_module._validate

    def counted(raw, *args):
        calls.append(raw.get("id"))
        return validate(raw, *args)

    monkeypatch.setattr(groups_module, "_validate", counted)
    return calls


ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key="


def test_validated_groups_are_kept_without_secrets_and_served_to_the_next_load(
        tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    write_groups(tmp_path, GOOD)
    first = load_groups(tmp_path, environ={"WECOM_G1": ROBOT + "SECRET-KEY-1"}, cache_dir=cache,
                        isolate=True)
    kept = valid_cache(cache)
    assert "SECRET-KEY-1" not in kept.read_text() and "qyapi" not in kept.read_text()
    assert kept.stat().st_mode & 0o777 == 0o600
    calls = counted_validation(monkeypatch)
    again = load_groups(tmp_path, environ={"WECOM_G1": ROBOT + "SECRET-KEY-1"}, cache_dir=cache,
                        isolate=True)
    assert calls == [] and again.groups == first.groups and again.secrets() == first.secrets()
    # another key in the environment: that group alone is validated again, and uses it
    changed = load_groups(tmp_path, environ={"WECOM_G1": ROBOT + "SECRET-KEY-2"},
                          cache_dir=cache, isolate=True)
    assert calls == ["g1"] and changed.groups[0].channel.url == ROBOT + "SECRET-KEY-2"
    # the variable unset: g1 is left out with its line, g2 still comes from the cache
    calls.clear()
    config = load_groups(tmp_path, environ={}, cache_dir=cache, isolate=True)
    assert [g.id for g in config.groups] == ["g2"] and calls == ["g1"]
    [problem] = config.broken["g1"]
    assert problem.line == 8 and "WECOM_G1 is not set" in problem.message
    # an invalid URL in it: left out with the reason, never kept, so said again next time
    for _ in range(2):
        calls.clear()
        config = load_groups(tmp_path, environ={"WECOM_G1": "http://example.com/?key=k"},
                             cache_dir=cache, isolate=True)
        assert calls == ["g1"] and [g.id for g in config.groups] == ["g2"]
        assert "https" in config.broken["g1"][0].message
    # without isolation the file is refused as a whole, as before
    with pytest.raises(ConfigError):
        load_groups(tmp_path, environ={}, cache_dir=cache)


def test_locations_from_the_cache_are_each_group_s_own(tmp_path, monkeypatch):
    """Groups at one place share one (frozen) location; a different one, even -0.0 for
    0.0, or one field left unwritten, stays apart."""
    places = ["{name: 鼓楼区, lat: 32.1, lon: 118.8}", "{name: 鼓楼区, lat: 32.1, lon: 118.8}",
              "{name: 鼓楼区, lat: -0.0, lon: 118.8}", "{name: 鼓楼区, lat: 0.0, lon: 118.8}",
              "{name: 鼓楼区, lat: 0.0, lon: 118.8, qweather_id: null}"]
    write_groups(tmp_path, "groups:\n" + "".join(
        f"  - {{id: g{i}, name: 群{i}, channel: {{type: file, path: out}}, location: {p}}}\n"
        for i, p in enumerate(places)))
    cache = tmp_path / "cache"
    first = load_groups(tmp_path, cache_dir=cache)
    calls = counted_validation(monkeypatch)
    again = load_groups(tmp_path, cache_dir=cache)
    assert calls == [] and again.groups == first.groups
    shown = [(str(g.location.lat), sorted(g.location.model_fields_set)) for g in again.groups]
    written = ["lat", "lon", "name"]
    assert shown == [("32.1", written), ("32.1", written), ("-0.0", written), ("0.0", written),
                     ("0.0", [*written, "qweather_id"])]
    assert again.groups[0].location is again.groups[1].location


def test_a_secret_that_validation_rewrites_is_not_kept(tmp_path, monkeypatch):
    """The parser writes the scheme and host in lowercase: keeping that URL would keep the key."""
    cache = tmp_path / "cache"
    write_groups(tmp_path, GOOD)
    env = {"WECOM_G1": "HTTPS://QYAPI.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY-1"}
    load_groups(tmp_path, environ=env, cache_dir=cache)
    assert "SECRET-KEY-1" not in valid_cache(cache).read_text()
    calls = counted_validation(monkeypatch)
    config = load_groups(tmp_path, environ=env, cache_dir=cache)
    assert calls == ["g1"] and config.groups[0].channel.url == ROBOT + "SECRET-KEY-1"


def test_a_validated_groups_cache_edited_damaged_or_of_another_shape_is_ignored(
        tmp_path, monkeypatch):
    import json

    from broadcaster.config.groupcache import code_version
    from broadcaster.config.yamlfile import CheckedCache

    cache = tmp_path / "cache"
    env = {"WECOM_G1": ROBOT + "SECRET-KEY-1"}
    write_groups(tmp_path, GOOD)
    load_groups(tmp_path, environ=env, cache_dir=cache)
    kept = valid_cache(cache)
    good = kept.read_text(encoding="utf-8")
    assert str(tmp_path / "out") in good and "第2网格群" in good
    calls = counted_validation(monkeypatch)
    # edited by hand: messages redirected to another directory, a group renamed
    kept.write_text(good.replace(str(tmp_path / "out"), "/tmp/elsewhere")
                    .replace("第2网格群", "冒名群"), encoding="utf-8")
    config = load_groups(tmp_path, environ=env, cache_dir=cache)
    assert calls == ["g1", "g2"]
    assert config.groups[1].name == "第2网格群" and config.groups[1].channel.path == str(tmp_path / "out")
    assert "冒名群" not in kept.read_text(encoding="utf-8")     # rewritten from the file
    # damaged (cut short); well-formed with its digests but of a shape this code never
    # wrote (a bad key, bad entries); written by another version of the code
    body = json.loads(kept.read_text(encoding="utf-8").split("\n", 1)[1])
    for damage in (lambda: kept.write_bytes(kept.read_bytes()[:60]),
                   lambda: CheckedCache(kept, code_version()).store({"key": "zz", "groups": []}),
                   lambda: CheckedCache(kept, code_version()).store(
                       {"key": body["key"], "groups": {key: {"spec": 1} for key in body["groups"]}}),
                   lambda: CheckedCache(kept, "another version").store(body)):
        damage()
        calls.clear()
        config = load_groups(tmp_path, environ=env, cache_dir=cache)
        assert calls == ["g1", "g2"], damage
        assert [g.name for g in config.groups] == ["第1网格群", "第2网格群"]
        assert config.groups[0].channel.url == ROBOT + "SECRET-KEY-1"
        calls.clear()
        load_groups(tmp_path, environ=env, cache_dir=cache)     # rewritten: served again
        assert calls == [], damage


def test_parse_cache_skips_files_with_secrets_written_inline(tmp_path):
    cache = tmp_path / "cache"
    write_groups(tmp_path, GOOD.replace('"${WECOM_G1}"',
                                        '"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=inline"'))
    load_groups(tmp_path, environ={}, cache_dir=cache)
    assert not cache.exists() or not list(cache.iterdir())


def test_loading_groups_imports_their_adapters_alone_and_no_http_stack(tmp_path):
    """``announce`` loads WeCom groups without requests or other adapters; from the cache,
    without even urllib3 (whose parser checks robot URLs)."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    write_groups(tmp_path, GOOD)
    code = (f"import json, sys\nfrom pathlib import Path\n"
            f"from broadcaster.config.groups import load_groups\n"
            f"load_groups(Path({str(tmp_path)!r}), environ={{'WECOM_G1': {ROBOT + 'k'!r}}}, "
            f"cache_dir=Path({str(tmp_path / 'cache')!r}))\n"
            "print(json.dumps(sorted(sys.modules)))")
    for http_stack in ({"requests"}, {"requests", "urllib3"}):    # validated, then from the cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=REPO, timeout=60, check=True).stdout
        modules = set(json.loads(out))
        assert {"broadcaster.channels.wecom", "broadcaster.channels.file"} <= modules
        assert not modules & {*http_stack, "broadcaster.net.client",
                              "broadcaster.channels.dingtalk", "broadcaster.channels.telegram"}
