"""What residents read in the shipped templates: no doubled dates, no doubled titles."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from broadcaster.channels.feishu import without_title_heading
from broadcaster.templating import Templates
from broadcaster.templating.preview import preview
from tests.conftest import REPO

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=TZ)  # a Sunday, the day of 小雪


def _render(tmp_path, name: str, data: str) -> str:
    path = tmp_path / "data.yaml"
    path.write_text(data, encoding="utf-8")
    result = preview(Templates(REPO), name, channel="file", data_file=path, now=NOW)
    return result.channels[0].markdown


def test_an_event_weeks_ahead_names_its_date_once(tmp_path):
    md = _render(tmp_path, "events", """
days_ahead: 14
reminder: false
events:
  - {title: 社区义诊, start: "2026-12-05T09:00:00+08:00", end: null, all_day: false,
     place: 社区广场, description: ""}
""")
    assert "12月5日（周六）09:00" in md
    assert "12月5日（12月5日" not in md


def test_the_solar_term_does_not_read_as_a_forecast():
    result = preview(Templates(REPO), "weather", channel="file", now=NOW)
    md = result.channels[0].markdown
    assert "今日小雪节气" in md and "今日小雪\n" not in md


def test_a_feishu_card_does_not_repeat_its_title():
    assert without_title_heading("### 停水通知\n\n明天停水", "停水通知") == "明天停水"
    assert without_title_heading("(1/2)\n### 停水通知\n\n明天", "停水通知") == "(1/2)\n明天"
    assert without_title_heading("明天停水", "明天停水") == "明天停水"  # no heading: kept
    assert without_title_heading("### 别的标题\n正文", "停水通知") == "### 别的标题\n正文"
