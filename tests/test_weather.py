"""Weather: Open-Meteo and QWeather over loopback, one request per location, alerts once."""

from __future__ import annotations

import gzip
import json
import textwrap
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from broadcaster.app import App
from broadcaster.config.groups import Location
from broadcaster.queue import outbox
from broadcaster.schedule import scheduler
from broadcaster.sources import SourceError
from broadcaster.sources.weather import WeatherConfig, WeatherSource
from tests.conftest import REPO, write_groups
from tests.test_news import Loopback

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 7, 20, 7, 0, tzinfo=SH)
HERE = Location(name="鼓楼区宁海路", lat=32.066, lon=118.778)


def open_meteo(codes=(2, 61, 3), tmax=(31.0, 29.0, 28.0), tmin=(24.0, 23.0, 22.0)) -> dict:
    return {
        "latitude": 32.06, "longitude": 118.78, "timezone": "Asia/Shanghai",
        "current": {"time": "2026-07-20T07:00", "temperature_2m": 27.5, "weather_code": codes[0]},
        "daily": {"time": ["2026-07-20", "2026-07-21", "2026-07-22"],
                  "weather_code": list(codes), "temperature_2m_max": list(tmax),
                  "temperature_2m_min": list(tmin),
                  "precipitation_probability_max": [10, 80, None]},
    }


def test_open_meteo_parse_and_chinese_text():
    with Loopback() as srv:
        srv.routes["/v1/forecast"] = lambda h: (200, {}, json.dumps(open_meteo()).encode())
        src = WeatherSource(WeatherConfig(base_url=srv.url), Path("."), SH)
        report = src.fetch(HERE, NOW)
    w = report.weather
    assert w["current"] == {"temp": 27.5, "text": "多云", "code": 2}
    assert w["today"]["date"] == date(2026, 7, 20) and w["days"][1]["text"] == "小雨"
    assert w["days"][1]["precip_prob"] == 80 and w["days"][2]["precip_prob"] is None
    assert report.alerts == []
    assert "latitude=32.066" in srv.hits[0] and "forecast_days=3" in srv.hits[0]


@pytest.mark.parametrize(("kw", "kinds"), [
    ({"codes": (95, 2, 2)}, ["雷暴"]),
    ({"codes": (2, 82, 2)}, ["强降雨"]),
    ({"codes": (86, 2, 2)}, ["大雪"]),
    ({"tmax": (36.0, 30.0, 30.0)}, ["高温"]),
    ({"tmin": (-6.0, 0.0, 0.0)}, ["低温"]),
])
def test_open_meteo_thresholds(kw, kinds):
    with Loopback() as srv:
        srv.routes["/v1/forecast"] = lambda h: (200, {}, json.dumps(open_meteo(**kw)).encode())
        source = WeatherSource(WeatherConfig(base_url=srv.url), Path("."), SH)
        alerts = source.fetch(HERE, NOW).alerts
    assert [a["type"] for a in alerts] == kinds
    assert alerts[0]["id"].startswith("open-meteo:32.07,118.78:")


def test_open_meteo_error_answer():
    with Loopback() as srv:
        srv.routes["/v1/forecast"] = lambda h: (
            400, {}, b'{"error":true,"reason":"Latitude must be in range of -90 to 90\xc2\xb0."}')
        with pytest.raises(SourceError, match="HTTP 400: Latitude must be in range"):
            WeatherSource(WeatherConfig(base_url=srv.url), Path("."), SH).fetch(HERE, NOW)


def qweather_routes(srv, warnings):
    def gz(obj):
        def route(h):
            if h.headers.get("X-QW-Api-Key") != "k":
                return 401, {"Content-Type": "application/json"}, json.dumps({"error": {
                    "status": 401, "title": "Unauthorized", "detail": "Invalid key"}}).encode()
            return 200, {"Content-Encoding": "gzip"}, gzip.compress(json.dumps(obj).encode())
        return route
    srv.routes["/v7/weather/now"] = gz({"code": "200", "now": {"temp": "31", "text": "晴",
                                                               "icon": "100"}})
    srv.routes["/v7/weather/3d"] = gz({"code": "200", "daily": [
        {"fxDate": f"2026-07-{d}", "tempMax": "35", "tempMin": "26", "textDay": "",
         "iconDay": "302"} for d in (20, 21, 22)]})
    srv.routes["/v7/warning/now"] = gz({"code": "200", "warning": warnings})


def test_qweather_gzip_strings_warnings_and_errors():
    warning = {"id": "10101010020230403142000", "sender": "南京市气象台",
               "pubTime": "2026-07-20T06:40+08:00", "title": "南京市气象台发布高温橙色预警",
               "severity": "Severe", "typeName": "高温", "text": "预计今天最高气温37℃。"}
    with Loopback() as srv:
        qweather_routes(srv, [warning])
        cfg = WeatherConfig(provider="qweather", host=srv.url, key="k")
        report = WeatherSource(cfg, Path("."), SH).fetch(HERE, NOW)
        assert report.weather["current"]["temp"] == 31.0
        assert report.weather["today"]["text"] == "雷阵雨"          # from the icon code
        [alert] = report.alerts
        assert alert["id"] == "qweather:10101010020230403142000"
        assert alert["pub_time"].utcoffset().total_seconds() == 8 * 3600
        assert "location=118.78%2C32.07" in srv.hits[0]
        bad = WeatherConfig(provider="qweather", host=srv.url, key="wrong")
        with pytest.raises(SourceError, match="HTTP 401: Unauthorized: Invalid key") as exc:
            WeatherSource(bad, Path("."), SH).fetch(HERE, NOW)
        assert "wrong" not in str(exc.value)
        srv.routes["/v7/weather/now"] = lambda h: (200, {}, b'{"code":"402"}')
        with pytest.raises(SourceError, match="over quota"):
            WeatherSource(cfg, Path("."), SH).fetch(HERE, NOW)


def test_recorded_sample_replays_offline():
    cfg = WeatherConfig(base_url="file:feeds/samples/open-meteo")
    report = WeatherSource(cfg, REPO, SH).fetch(HERE, NOW)
    assert report.weather["today"]["date"] == NOW.date()     # re-dated to today


# --- the job: 40 groups at 4 locations, one request per location ---------------------

@pytest.fixture
def app(root: Path, tmp_path: Path):
    groups = ["groups:"]
    for i in range(40):
        lat = 32.0 + (i % 4) / 100
        groups.append(f"  - {{id: g{i:02d}, name: 第{i}网格群, tags: [t{i % 2}], "
                      f"channel: {{type: file, path: out}}, "
                      f"location: {{name: 点{i % 4}, lat: {lat}, lon: 118.78}}}}")
    groups.append("  - {id: noloc, name: 无位置, tags: [t0], channel: {type: file, path: out}}")
    write_groups(root, "\n".join(groups) + "\n")
    with Loopback() as srv:
        (root / "feeds" / "weather.yaml").write_text(
            f"weather: {{provider: open-meteo, base_url: '{srv.url}'}}\n", encoding="utf-8")
        (root / "schedules" / "s.yaml").write_text(textwrap.dedent("""
            jobs:
              - {id: weather, cron: "0 7 * * *", content: weather, to: [all]}
        """), encoding="utf-8")
        a = App(root, tmp_path / "state")
        a.srv = srv
        yield a


def test_weather_job_one_request_per_location_and_alerts_once(app):
    storm = json.dumps(open_meteo((95, 2, 2))).encode()
    app.srv.routes["/v1/forecast"] = lambda h: (200, {}, storm)
    ids = scheduler.run_job(app, "weather", NOW)
    assert len(app.srv.hits) == 4
    anns = [outbox.get(app, i) for i in ids]
    [forecast] = [a for a in anns if not a.meta.urgent]
    alerts = [a for a in anns if a.meta.urgent]           # one per location's warning
    assert len(forecast.deliveries) == 40 and len(alerts) == 4
    assert sum(len(a.deliveries) for a in alerts) == 40
    assert "雷" in alerts[0].body(alerts[0].deliveries[0])
    again = scheduler.run_job(app, "weather", NOW)
    assert len(again) == 1                    # forecast again, the alert not
