"""Weather: Open-Meteo (default, no key) or QWeather (和风天气, key), plus alerts.

Declares:
- content ``weather`` (``Weather`` below): options ``forecast``, ``alerts``; renders
  ``weather`` for the forecast and ``weather_alert`` (urgent, once per group and alert);
- config: ``feeds/*.yaml`` ``weather:`` (``WeatherConfig``: ``provider``, ``base_url`` /
  ``host``, ``key`` — secret —, ``alerts``, ``heat_c``, ``cold_c``);
- requests: Open-Meteo one GET per distinct location (current + 3-day daily in one
  answer); QWeather ``/v7/weather/now`` + ``/v7/weather/3d`` (+ ``/v7/warning/now``
  with alerts) per distinct location; both timeouts on every request;
- offline base: ``base_url: file:DIR`` (or a path) reads recorded answers instead of
  calling the API — ``DIR/forecast.json`` for Open-Meteo, ``DIR/weather-now.json``,
  ``DIR/weather-3d.json`` and ``DIR/warning-now.json`` for QWeather — the same file
  for every location;
- alerts: QWeather's official warnings (id as given); for Open-Meteo, which has no
  warnings, thresholds on today's and tomorrow's forecast — thunderstorm (WMO 95/96/99),
  heavy rain (65/82), heavy snow (75/86), heat (max ≥ ``heat_c``), cold (min ≤ ``cold_c``)
  — with an id per location, day and type, so each is posted once;
- state: ``weather-alerts`` — which groups got which alert.

The data shapes are the template contract (templates/README.md): ``weather`` =
{location, provider, current: {temp, text, code}, today: {date, text, code, temp_max,
temp_min, precip_prob}, days: [3 × today's shape]}; an alert = {id, title, severity,
type, text, sender, pub_time}.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from broadcaster.config.fields import source_url
from broadcaster.sources import HTTPStatusError, Source, SourceError, is_local, local_path, safe_text
from broadcaster.sources.kinds import ContentKind, RunContext, Section, TemplateKind, register, sample_at

if TYPE_CHECKING:   # annotations only: validating a schedule loads no group models
    from broadcaster.config.groups import Location

MAX_BYTES = 1024 * 1024
WORKERS = 8

WMO = {
    0: "晴", 1: "晴间少云", 2: "多云", 3: "阴",
    45: "雾", 48: "冻雾",
    51: "小毛毛雨", 53: "毛毛雨", 55: "大毛毛雨", 56: "冻毛毛雨", 57: "强冻毛毛雨",
    61: "小雨", 63: "中雨", 65: "大雨", 66: "冻雨", 67: "强冻雨",
    71: "小雪", 73: "中雪", 75: "大雪", 77: "米雪",
    80: "小阵雨", 81: "阵雨", 82: "强阵雨", 85: "阵雪", 86: "强阵雪",
    95: "雷阵雨", 96: "雷阵雨伴有冰雹", 99: "强雷阵雨伴有冰雹",
}
QWEATHER_ICONS = {
    "100": "晴", "101": "多云", "102": "少云", "103": "晴间多云", "104": "阴",
    "150": "晴", "151": "多云", "152": "少云", "153": "晴间多云",
    "300": "阵雨", "301": "强阵雨", "302": "雷阵雨", "303": "强雷阵雨", "304": "雷阵雨伴有冰雹",
    "305": "小雨", "306": "中雨", "307": "大雨", "308": "极端降雨", "309": "毛毛雨",
    "310": "暴雨", "311": "大暴雨", "312": "特大暴雨", "313": "冻雨", "314": "小到中雨",
    "315": "中到大雨", "316": "大到暴雨", "317": "暴雨到大暴雨", "318": "大暴雨到特大暴雨",
    "350": "阵雨", "351": "强阵雨", "399": "雨",
    "400": "小雪", "401": "中雪", "402": "大雪", "403": "暴雪", "404": "雨夹雪", "405": "雨雪天气",
    "406": "阵雨夹雪", "407": "阵雪", "408": "小到中雪", "409": "中到大雪", "410": "大到暴雪",
    "456": "阵雨夹雪", "457": "阵雪", "499": "雪",
    "500": "薄雾", "501": "雾", "502": "霾", "503": "扬沙", "504": "浮尘", "507": "沙尘暴",
    "508": "强沙尘暴", "509": "浓雾", "510": "强浓雾", "511": "中度霾", "512": "重度霾",
    "513": "严重霾", "514": "大雾", "515": "特强浓雾",
    "900": "热", "901": "冷", "999": "未知",
}
QWEATHER_CODES = {
    "204": "no data for this location", "400": "bad request", "401": "authentication failed",
    "402": "over quota or account overdue", "403": "no permission for this API",
    "404": "location or data not found", "429": "too many requests", "500": "server error",
}
THUNDER, HEAVY_RAIN, HEAVY_SNOW = {95, 96, 99}, {65, 82}, {75, 86}
ALERTS = "weather-alerts"        # state: which groups got which alert
ALERT_EXPIRES = timedelta(hours=12)


class WeatherConfig(BaseModel):
    """Provider settings. ``key`` is a secret: write it as ``${QWEATHER_KEY}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["open-meteo", "qweather"] = "open-meteo"
    # open-meteo: https://api.open-meteo.com (default); qweather: use `host`.
    # A `file:DIR` base reads recorded answers from DIR instead (see sources/weather.py).
    base_url: str | None = None
    host: str | None = None
    key: str | None = None
    alerts: bool = True
    heat_c: float = 35.0             # daily maximum at or above → 高温 alert (open-meteo)
    cold_c: float = -5.0             # daily minimum at or below → 低温 alert (open-meteo)

    @field_validator("base_url", "host")
    @classmethod
    def _urls(cls, v):
        return None if v is None else source_url(v)

    @model_validator(mode="after")
    def _qweather_needs(self):
        if self.provider == "qweather":
            base = self.host or self.base_url
            if not base:
                raise ValueError("qweather needs `host` (https://<id>.qweatherapi.com)")
            if not is_local(base) and not self.key:   # recorded answers need no key
                raise ValueError("qweather needs `key` (write key: ${QWEATHER_KEY})")
        return self

    @property
    def base(self) -> str:
        if self.provider == "qweather":
            return (self.host or self.base_url or "").rstrip("/")
        return (self.base_url or "https://api.open-meteo.com").rstrip("/")

    def secrets(self) -> list[str]:
        return [self.key] if self.key else []


def location_key(loc: Location, provider: str = "open-meteo") -> str:
    """Groups whose locations share this key share one request."""
    if provider == "qweather" and loc.qweather_id:
        return f"id:{loc.qweather_id}"
    if loc.lat is None or loc.lon is None:
        raise SourceError(f"location {loc.name!r} has no lat/lon")
    return f"{loc.lat:.2f},{loc.lon:.2f}"


@dataclass
class Report:
    weather: dict
    alerts: list[dict] = field(default_factory=list)


def _num(value) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _day(d: date, code, text: str, tmax, tmin, prob) -> dict:
    return {
        "date": d, "text": text, "code": code, "temp_max": _num(tmax), "temp_min": _num(tmin),
        "precip_prob": None if _num(prob) is None else round(_num(prob)),
    }


def _pick_days(days: list[dict], today: date, replay: bool) -> tuple[dict, list[dict]]:
    """Today and the next two days. A recorded answer (``replay``) that does not
    cover today is replayed as if recorded today: its days are re-dated from today."""
    if replay and days and all(d["date"] != today for d in days):
        shift = today - days[0]["date"]
        days = [{**d, "date": d["date"] + shift} for d in days]
    start = next((i for i, d in enumerate(days) if d["date"] == today), 0)
    chosen = days[start : start + 3]
    if not chosen:
        raise SourceError("forecast has no days")
    return chosen[0], chosen


class WeatherSource(Source):
    """One provider; ``fetch(location, now)`` → Report; ``fetch_many`` dedupes locations."""

    max_bytes = MAX_BYTES

    def __init__(self, config: WeatherConfig, root: Path, tz: ZoneInfo, **kw):
        super().__init__(root, **kw)
        self.config = config
        self.tz = tz

    # -- transport -----------------------------------------------------------
    def _get(self, path: str, params: dict, headers: dict | None = None) -> dict:
        base = self.config.base
        if is_local(base):
            name = path.strip("/").split("/", 1)[-1].replace("/", "-") + ".json"
            url = str(local_path(base, self.root) / name)
        else:
            url = base + path
        try:
            got = self.get(url, params=params, headers=headers)
        except HTTPStatusError as exc:
            raise SourceError(f"{self.config.provider}: {exc}: {_error_text(exc.body)}") from None
        try:
            return json.loads(got.body)
        except ValueError:
            raise SourceError(f"{self.config.provider}: answer is not JSON") from None

    # -- providers -----------------------------------------------------------
    def fetch(self, loc: Location, now: datetime) -> Report:
        if self.config.provider == "qweather":
            return self._qweather(loc, now)
        return self._open_meteo(loc, now)

    def fetch_many(
        self, locations: list[Location], now: datetime
    ) -> dict[str, Report | SourceError]:
        """One fetch per distinct location key (concurrently); failures come back as errors."""
        unique: dict[str, Location] = {}
        for loc in locations:
            try:
                unique.setdefault(location_key(loc, self.config.provider), loc)
            except SourceError:
                continue

        def one(item):
            key, loc = item
            try:
                return key, self.fetch(loc, now)
            except SourceError as exc:
                return key, exc

        if not unique:
            return {}
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(unique))) as pool:
            return dict(pool.map(one, unique.items()))

    def _open_meteo(self, loc: Location, now: datetime) -> Report:
        if loc.lat is None or loc.lon is None:
            raise SourceError(f"location {loc.name!r} has no lat/lon")
        data = self._get("/v1/forecast", {
            "latitude": loc.lat, "longitude": loc.lon,
            "current": "temperature_2m,weather_code",
            "daily": "weather_code,temperature_2m_max,temperature_2m_min,"
                     "precipitation_probability_max",
            "timezone": str(self.tz), "forecast_days": 3,
        })
        if not isinstance(data, dict) or data.get("error"):
            reason = data.get("reason") if isinstance(data, dict) else "unexpected answer"
            raise SourceError(f"open-meteo: {reason}")
        try:
            cur, daily = data["current"], data["daily"]
            code = int(cur["weather_code"])
            days = []
            for i, day_text in enumerate(daily["time"]):
                dcode = int(daily["weather_code"][i])
                prob = (daily.get("precipitation_probability_max") or [None] * (i + 1))[i]
                days.append(_day(date.fromisoformat(day_text), dcode, WMO.get(dcode, "未知"),
                                 daily["temperature_2m_max"][i], daily["temperature_2m_min"][i],
                                 prob))
            current = {"temp": _num(cur["temperature_2m"]), "text": WMO.get(code, "未知"),
                       "code": code}
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SourceError(f"open-meteo: unexpected answer ({exc!r})") from None
        today, chosen = _pick_days(days, now.astimezone(self.tz).date(),
                                   is_local(self.config.base))
        weather = {"location": loc.name, "provider": "Open-Meteo", "current": current,
                   "today": today, "days": chosen}
        alerts = threshold_alerts(loc, chosen[:2], now.astimezone(self.tz), self.config)
        return Report(weather, alerts if self.config.alerts else [])

    def _qweather(self, loc: Location, now: datetime) -> Report:
        where = loc.qweather_id or (
            f"{loc.lon:.2f},{loc.lat:.2f}" if loc.lat is not None and loc.lon is not None else None
        )
        if where is None:
            raise SourceError(f"location {loc.name!r} has neither qweather_id nor lat/lon")
        headers = {"X-QW-Api-Key": self.config.key} if self.config.key else {}
        params = {"location": where}
        now_data = _qweather_ok(self._get("/v7/weather/now", params, headers), "weather/now")
        daily = _qweather_ok(self._get("/v7/weather/3d", params, headers), "weather/3d")
        try:
            n = now_data["now"]
            current = {"temp": _num(n.get("temp")), "code": n.get("icon"),
                       "text": n.get("text") or QWEATHER_ICONS.get(n.get("icon"), "未知")}
            days = [
                _day(date.fromisoformat(d["fxDate"]), d.get("iconDay"),
                     d.get("textDay") or QWEATHER_ICONS.get(d.get("iconDay"), "未知"),
                     d.get("tempMax"), d.get("tempMin"), None)
                for d in daily["daily"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"qweather: unexpected answer ({exc!r})") from None
        today, chosen = _pick_days(days, now.astimezone(self.tz).date(),
                                   is_local(self.config.base))
        weather = {"location": loc.name, "provider": "和风天气", "current": current,
                   "today": today, "days": chosen}
        alerts: list[dict] = []
        if self.config.alerts:
            warn = _qweather_ok(self._get("/v7/warning/now", params, headers), "warning/now",
                                empty_ok=True)
            alerts = [_qweather_alert(w) for w in warn.get("warning") or [] if w.get("id")]
        return Report(weather, alerts)


def _error_text(body: bytes) -> str:
    """The reason inside an error answer (Open-Meteo ``reason``, QWeather ``error.title``)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):
            err = data["error"]
            return ": ".join(str(x) for x in (err.get("title"), err.get("detail")) if x)
        if data.get("reason"):
            return str(data["reason"])
        if data.get("code"):
            return QWEATHER_CODES.get(str(data["code"]), f"code {data['code']}")
    return "error"


def _qweather_ok(data: dict, what: str, *, empty_ok: bool = False) -> dict:
    if not isinstance(data, dict):
        raise SourceError(f"qweather {what}: unexpected answer")
    if isinstance(data.get("error"), dict):
        raise SourceError(f"qweather {what}: {_error_text(json.dumps(data).encode())}")
    code = str(data.get("code", ""))
    if code == "200" or (code == "204" and empty_ok):
        return data
    reason = QWEATHER_CODES.get(code, f"code {code!r}")
    raise SourceError(f"qweather {what}: {reason} (code {code})")


def _qweather_alert(w: dict) -> dict:
    try:
        pub = datetime.fromisoformat(w.get("pubTime") or "")
    except ValueError:
        pub = None
    def clean(value, limit=None) -> str:
        return safe_text(str(value or ""), limit=limit, html_input=False)

    return {
        "id": f"qweather:{w['id']}",
        "title": clean(w.get("title") or w.get("typeName") or "天气预警", 120),
        "severity": clean(w.get("severity") or w.get("level")),
        "type": clean(w.get("typeName") or w.get("type")),
        "text": clean(w.get("text"), 1000),
        "sender": clean(w.get("sender"), 60),
        "pub_time": pub,
    }


def threshold_alerts(
    loc: Location, days: list[dict], now: datetime, cfg: WeatherConfig
) -> list[dict]:
    """Open-Meteo has no warnings: turn severe forecasts for today/tomorrow into alerts."""
    out = []
    key = location_key(loc)
    for day in days:
        when = "今天" if day["date"] == now.date() else "明天" if day["date"] > now.date() else None
        if when is None:
            continue
        found = []
        code, tmax, tmin = day["code"], day["temp_max"], day["temp_min"]
        if code in THUNDER:
            hail = "，可能伴有冰雹" if code in (96, 99) else ""
            found.append(("thunderstorm", "雷暴", "severe" if hail else "moderate",
                          f"{when}有雷阵雨{hail}。请关好门窗，避免在空旷处和大树下停留，"
                          "注意用电安全。"))
        if code in HEAVY_RAIN:
            found.append(("heavy_rain", "强降雨", "moderate",
                          f"{when}有大雨或强阵雨。请注意出行安全，低洼地带注意防涝。"))
        if code in HEAVY_SNOW:
            found.append(("heavy_snow", "大雪", "moderate",
                          f"{when}有大雪。请注意防滑防冻，尽量减少外出。"))
        if tmax is not None and tmax >= cfg.heat_c:
            found.append(("heat", "高温", "moderate",
                          f"{when}最高气温{tmax:.0f}°C。请注意防暑降温，老人和儿童避免午后外出。"))
        if tmin is not None and tmin <= cfg.cold_c:
            found.append(("cold", "低温", "moderate",
                          f"{when}最低气温{tmin:.0f}°C。请注意防寒保暖，做好水管防冻。"))
        for kind, name, severity, text in found:
            out.append({
                "id": f"open-meteo:{key}:{day['date'].isoformat()}:{kind}",
                "title": f"{loc.name}{when}{name}提醒",
                "severity": severity,
                "type": name,
                "text": text,
                "sender": "根据 Open-Meteo 预报自动提示",
                "pub_time": now,
            })
    return out


# --- the content kind ------------------------------------------------------------------

def _sample(now: datetime, *, location: str, **_) -> dict:
    days = [
        {"date": now.date(), "text": "多云转小雨", "code": 61, "temp_max": 14.0,
         "temp_min": 6.0, "precip_prob": 60},
        {"date": now.date() + timedelta(days=1), "text": "小雨", "code": 61, "temp_max": 10.0,
         "temp_min": 4.0, "precip_prob": 80},
        {"date": now.date() + timedelta(days=2), "text": "晴", "code": 0, "temp_max": 12.0,
         "temp_min": 1.0, "precip_prob": None},
    ]
    return {
        "weather": {
            "location": location,
            "provider": "open-meteo",
            "current": {"temp": 9.4, "text": "多云", "code": 3},
            "today": dict(days[0]),
            "days": days,
        }
    }


def _alert_sample(now: datetime, *, location: str, **_) -> dict:
    return {
        "alert": {
            "id": "10132010020260101091500",
            "title": "南京市气象台发布大风蓝色预警",
            "severity": "蓝色",
            "type": "大风",
            "text": (
                "南京市气象台今天 9 时发布大风蓝色预警：预计今天下午到夜里，"
                "我市将出现 6 级左右偏北风，阵风 7—8 级。请关好门窗，收好阳台花盆和晾晒衣物，"
                "外出注意远离广告牌和临时搭建物。"
            ),
            "sender": "南京市气象台",
            "pub_time": sample_at(now, 0, 9, 15),
        },
        "location": location,
    }


def _sample_day(text: str, code: int, low: float, high: float, rain: int | None, temp: float):
    """A case of the weather sample: today (and now) as given, the coming days as sampled."""
    def change(now: datetime, **_) -> dict:
        return {"weather": {
            "current": {"temp": temp, "text": text, "code": code},
            "today": {"date": now.date(), "text": text, "code": code, "temp_max": high,
                      "temp_min": low, "precip_prob": rain},
        }}
    return change


_DAY = ("date", "text", "code", "temp_max", "temp_min", "precip_prob")
WEATHER = TemplateKind(
    "weather", data=("weather",), sample=_sample,
    cases={"rain": {}, "sunny": _sample_day("晴", 0, 8.0, 18.0, 10, 15.2),
           "hot": _sample_day("晴", 0, 27.0, 36.0, 0, 33.5), "cold": _sample_day("阴", 3, -3.0, 4.0, 10, -1.0)},
    fields=(
        "weather", "weather.location", "weather.provider",
        "weather.current", "weather.current.temp", "weather.current.text",
        "weather.current.code",
        "weather.today", *(f"weather.today.{f}" for f in _DAY),
        "weather.days", *(f"weather.days[].{f}" for f in _DAY),
    ),
)
WEATHER_ALERT = TemplateKind(
    "weather_alert", data=("alert", "location"), sample=_alert_sample,
    cases={"blue": {}, "red": {"alert": {
        "title": "南京市气象台发布暴雨红色预警", "severity": "红色", "type": "暴雨",
        "text": "南京市气象台发布暴雨红色预警：预计未来 3 小时我市将出现 100 毫米以上降水。"
                "请停止户外活动，远离河道、地下通道和低洼地带，危险地带人员尽快撤离。"}}},
    fields=("alert", "alert.id", "alert.title", "alert.severity", "alert.type", "alert.text",
            "alert.sender", "alert.pub_time", "location"),
    used_by="weather alerts (feeds/weather.yaml)",
)


@register
class Weather(ContentKind):
    """The forecast for each group's location, and severe-weather alerts (urgent, once)."""

    name = "weather"
    options: ClassVar = {"forecast": bool, "alerts": bool}
    section = Section("weather", WeatherConfig)
    templates = (WEATHER, WEATHER_ALERT)

    def run(self, ctx: RunContext) -> None:
        config = ctx.section or WeatherConfig()
        ctx.app.redactor.add(config.secrets())
        located = [g for g in ctx.targets if g.location is not None]
        if len(located) < len(ctx.targets):
            ctx.problem(f"{len(ctx.targets) - len(located)} targeted group(s) have no location; "
                        "skipped")
        by_group = _reports(ctx, config, located)
        groups = [g for g in located if g.id in by_group]
        if ctx.job.options.get("forecast", True):
            ctx.send("weather", groups, lambda g: {"weather": by_group[g.id].weather})
        if ctx.job.options.get("alerts", config.alerts):
            _alerts(ctx, groups, by_group)


def _reports(ctx: RunContext, config: WeatherConfig, located: list) -> dict[str, Report]:
    """Group id -> its location's report (one request per location); failures reported once."""
    source = WeatherSource(config, ctx.app.root, ctx.job.tz, session=ctx.session)
    reports = source.fetch_many([g.location for g in located], ctx.now)
    by_group: dict[str, Report] = {}
    for g in located:
        try:
            got = reports.get(location_key(g.location, config.provider))
        except SourceError as exc:
            ctx.problem(f"group {g.id}: {exc}")
            continue
        if isinstance(got, Report):       # a failed location is reported once, below
            by_group[g.id] = got
    for err in {str(r) for r in reports.values() if isinstance(r, SourceError)}:
        ctx.problem(f"weather: {err}")
    return by_group


def _alerts(ctx: RunContext, groups: list, by_group: dict[str, Report]) -> None:
    """Each alert once per group, urgent, as its own announcement."""
    alerts: dict[str, tuple[dict, list]] = {}
    for g in groups:
        for alert in by_group[g.id].alerts:
            alerts.setdefault(alert["id"], (alert, []))[1].append(g)
    if not alerts:
        return
    with ctx.once_only(ALERTS) as once:
        for alert_id, (alert, members) in alerts.items():
            once(alert_id, members, "weather_alert",
                 lambda g, alert=alert: {"alert": alert,
                                         "location": g.location.name if g.location else ""},
                 urgent=True, source=f"weather-alert:{alert_id}", expires=ALERT_EXPIRES)
