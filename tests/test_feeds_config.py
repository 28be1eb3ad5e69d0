"""feeds/*.yaml and schedules/*.yaml: validated at the edge, every problem as file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from broadcaster.config.feeds import check_feeds, load_feeds
from broadcaster.config.schedules import load_schedules
from broadcaster.errors import ConfigError
from tests.conftest import REPO


def write(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")


def problems(exc: pytest.ExceptionInfo) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_shipped_config_loads():
    feeds = load_feeds(REPO)
    assert {f.id for f in feeds.news} == {"gulou-gov", "hlz-notices"}
    assert feeds.weather.provider == "open-meteo"
    assert "dongzhi" in feeds.holidays.greet and not feeds.holidays.solar_terms
    jobs = load_schedules(REPO)
    ids = [j.id for j in jobs]
    assert {"morning-weather", "news-digest", "festival-greetings", "weekly-events",
            "sorting-reminder"} <= set(ids)
    demo = sorted(j.cron for j in jobs if j.id.startswith("demo-"))
    assert demo == ["*/3 * * * *", "1-59/3 * * * *", "2-59/3 * * * *"]  # one post a minute, in turn


def test_every_feed_problem_at_once_with_lines(tmp_path):
    write(tmp_path / "feeds" / "news.yaml", """
        news:
          - id: Bad Id
            url: https://x.example/rss
            to: [all]
          - id: ok
            url: ftp://x.example/rss
            to: [all]
          - id: ok
            url: feeds/a.xml
            to: []
        weather:
          provider: qweather
          host: https://abc.qweatherapi.com
    """)
    write(tmp_path / "feeds" / "z-more.yaml", """
        events:
          - id: e1
            to: [all]
            items:
              - {title: 活动, start: "2026-13-01 09:00"}
          - id: e2
            to: [all]
        holidays:
          greet: [chunjie, christmas]
        wrong: 1
        weather: {}
    """)
    with pytest.raises(ConfigError) as exc:
        load_feeds(tmp_path)
    text = "\n".join(problems(exc))
    assert "feeds/news.yaml:2: news.0.id: may hold only" in text.replace(str(tmp_path) + "/", "")
    assert "unsupported URL scheme 'ftp'" in text
    assert "news.2.to: give at least one selector" in text
    assert "qweather needs `key`" in text
    assert "invalid time '2026-13-01 09:00'" in text
    assert "give either `ics:`" in text
    assert "unknown festival 'christmas'" in text
    assert "wrong: unknown section" in text
    assert "weather: already configured in" in text
    assert len(exc.value.problems) == 9


def test_missing_env_is_named(tmp_path):
    write(tmp_path / "feeds" / "weather.yaml", """
        weather:
          provider: qweather
          host: https://abc.qweatherapi.com
          key: ${QWEATHER_KEY}
    """)
    with pytest.raises(ConfigError, match=r"weather.yaml:4: weather.key: environment variable "
                                          r"QWEATHER_KEY is not set"):
        load_feeds(tmp_path)
    feeds = load_feeds(tmp_path, environ={"QWEATHER_KEY": "k123"})
    assert feeds.secrets() == ["k123"]


@pytest.mark.parametrize(("cron", "message"), [
    ("0 7 * *", "cron needs 5 fields"),
    ("61 7 * * *", "higher than the maximum value"),
    ("0 7 1 * 1", "restricts both day-of-month and day-of-week"),
    ("0 7 * * 9", "invalid day-of-week"),
])
def test_bad_cron_is_located(tmp_path, cron, message):
    write(tmp_path / "schedules" / "a.yaml", f"""
        jobs:
          - id: j
            content: news
            to: [all]
            cron: "{cron}"
    """)
    with pytest.raises(ConfigError) as exc:
        load_schedules(tmp_path)
    [p] = exc.value.problems
    assert (p.line, p.field) == (5, "jobs.0.cron") and message in p.message


def test_schedule_problems_across_files(tmp_path):
    write(tmp_path / "schedules" / "a.yaml", """
        jobs:
          - id: j1
            cron: "0 7 * * *"
            content: template
            to: [all]
          - id: j2
            cron: "0 7 * * *"
            content: news
            to: [all]
            options: {max_itmes: 5}
          - id: j3
            cron: "0 7 * * *"
            content: weather
            to: [all]
            timezone: Mars/Olympus
            grace: soon
          - id: j4
            cron: "0 7 * * *"
            content: holidays
            to: [all]
    """)
    write(tmp_path / "schedules" / "b.yml", """
        jobs:
          - id: j4
            cron: "0 8 * * *"
            content: holidays
            to: [all]
    """)
    with pytest.raises(ConfigError) as exc:
        load_schedules(tmp_path)
    text = "\n".join(problems(exc))
    assert "needs `template: <name>`" in text
    assert "unknown option 'max_itmes' for news (known: max_items, feeds)" in text
    assert "unknown timezone 'Mars/Olympus'" in text
    assert "invalid duration 'soon'" in text
    assert "duplicate job id 'j4' (first at" in text and "b.yml:2" in text


def test_job_defaults(tmp_path):
    write(tmp_path / "schedules" / "a.yaml", """
        jobs:
          - id: j
            cron: "0 19 * * 5"
            content: template
            template: sorting_reminder
            to: [community:x]
            timezone: America/New_York
            catch_up: skip
            grace: 2h
    """)
    [job] = load_schedules(tmp_path, "Asia/Shanghai")
    assert (job.timezone, job.catch_up, job.grace.total_seconds()) == ("America/New_York",
                                                                       "skip", 7200)
    assert job.where.endswith("a.yaml:2")


def test_check_reports_selectors_matching_nothing(tmp_path):
    from broadcaster.config.groups import load_groups
    from tests.conftest import write_groups

    write_groups(tmp_path, """
        groups:
          - {id: g1, name: 一, tags: [street:ninghai-road], channel: {type: file, path: out}}
    """)
    write(tmp_path / "feeds" / "news.yaml", """
        news:
          - {id: n, url: a.xml, to: [street:ninghai-raod]}
    """)
    [p] = check_feeds(tmp_path, load_groups(tmp_path))
    assert p.line == 2 and "did you mean street:ninghai-road" in p.message


def test_recorded_qweather_needs_no_key_but_live_does(tmp_path):
    from pydantic import ValidationError

    from broadcaster.sources.weather import WeatherConfig

    for base in ("file:feeds/samples/qweather", "feeds/samples/qweather"):   # both are local
        assert WeatherConfig(provider="qweather", host=base).key is None
    with pytest.raises(ValidationError, match="qweather needs `key`"):
        WeatherConfig(provider="qweather", host="https://abc.qweatherapi.com")


@pytest.mark.parametrize(("line", "seconds"), [("grace: 90s", 90), ("grace: 30m", 1800),
                                               ("grace: '2h '", 7200), ("grace: 1d", 86400),
                                               ("grace: 600", 600), ("", 3600)])
def test_grace_durations(tmp_path, line, seconds):
    write(tmp_path / "schedules" / "a.yaml",
          f"jobs:\n  - id: j\n    cron: '0 7 * * *'\n    content: holidays\n    to: [all]\n    {line}\n")
    [job] = load_schedules(tmp_path)
    assert job.grace.total_seconds() == seconds


@pytest.mark.parametrize("grace", ["soon", "0m", -5, "true"])
def test_bad_grace_is_located(tmp_path, grace):
    write(tmp_path / "schedules" / "a.yaml",
          f"jobs:\n  - id: j\n    cron: '0 7 * * *'\n    content: holidays\n    to: [all]\n"
          f"    grace: {grace}\n")
    with pytest.raises(ConfigError) as exc:
        load_schedules(tmp_path)
    [p] = exc.value.problems
    assert (p.line, p.field) == (6, "jobs.0.grace") and "invalid duration" in p.message
