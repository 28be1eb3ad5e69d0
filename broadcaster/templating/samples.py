"""Realistic sample data for every kind, and a sample group, for ``check`` and
``templates preview``.

Dates are relative to ``now`` so that a preview reads naturally ("明天上午9:00");
with a fixed ``now`` the samples are fixed (golden files rely on it). A holiday
sample is shown on its festival's day (``shown_at``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from broadcaster import channels
from broadcaster.config.groups import Group, Location
from broadcaster.sources import festivals
from broadcaster.templating import kinds

DEFAULT_LOCATION = "鼓楼区"
DEFAULT_FESTIVAL = "zhongqiu"

# Every festival key the holiday source can greet (``holiday_<key>.md.j2``).
FESTIVAL_KEYS: tuple[str, ...] = festivals.KEYS

SAMPLE_GROUP_ID = "sample-group"


def sample_group(timezone: str = "Asia/Shanghai") -> Group:
    """A typical grid group, for previews and checks without a real one."""
    return Group(
        id=SAMPLE_GROUP_ID,
        name="汇林绿洲社区第1网格群",
        tags=("district:gulou", "street:ninghai-road", "community:huilinlvzhou", "kind:grid"),
        channel=channels.get("file").Config.model_validate({"type": "file", "path": "var/out"}),
        location=Location(name=DEFAULT_LOCATION, lat=32.066, lon=118.778),
        templates={},
        timezone=timezone,
        quiet_hours=None,
    )


def festival_in_name(name: str) -> str | None:
    """``holiday_chunjie`` -> ``chunjie``: the festival a per-festival file is for, if any."""
    key = name.removeprefix("holiday_")
    return key if key != name and key in FESTIVAL_KEYS else None


def shown_at(kind: str, data: dict[str, Any], now: datetime) -> datetime:
    """When a sample is shown: a holiday greeting at 8:00 on its festival's day, else ``now``."""
    fest = data.get("festival") if kind == "holiday" else None
    day = fest.get("date") if isinstance(fest, dict) else None
    if isinstance(day, date):
        return datetime.combine(day, time(8, 0), tzinfo=now.tzinfo)
    return now


def sample_data(
    kind: str,
    now: datetime,
    *,
    location: str | None = None,
    festival: str | None = None,
) -> dict[str, Any]:
    """Sample data of ``kind`` (a key of ``kinds.KINDS``) as of ``now`` (aware)."""
    if kind not in kinds.KINDS:
        raise KeyError(f"unknown template kind {kind!r}")
    place = location or DEFAULT_LOCATION
    builders = {
        "announcement": lambda: _announcement(),
        "weather": lambda: _weather(now, place),
        "weather_alert": lambda: _weather_alert(now, place),
        "news": lambda: _news(now),
        "events": lambda: _events(now),
        "holiday": lambda: _holiday(now, festival or DEFAULT_FESTIVAL),
        "welcome": lambda: {"members": ["张阿姨", "李师傅", "小王"]},
        "template": lambda: {"vars": {}},
        **{k: (lambda k=k: _ticket(k, now)) for k in kinds.KINDS if k.startswith("ticket_")},
    }
    return builders[kind]()


def festival_data(key: str, after: date) -> dict[str, Any]:
    """The ``festival`` variable for festival ``key`` on its first day on or after ``after``.

    Built by the holiday source itself, so it has exactly the shape the daily
    greeting job passes (with the statutory days-off arrangement, if any).
    KeyError if ``key`` is no festival.
    """
    return dict(_festival_data(key, after))


@lru_cache(maxsize=64)  # the lunar calendar is slow; check asks once per template and place
def _festival_data(key: str, after: date) -> dict[str, Any]:
    from broadcaster.sources.holidays import festivals_on

    if key not in festivals.KEYS:
        raise KeyError(f"unknown festival {key!r}")
    day = festivals.next_date(key, after)
    return next(fest for fest in festivals_on(day) if fest["key"] == key)


def _at(now: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    day = now.date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=now.tzinfo)


def _announcement() -> dict[str, Any]:
    return {
        "text": (
            "**停水通知**\n\n"
            "因供水管道维修，明天 9:00—17:00 宁海路 12—36 号停水，请大家提前储水。\n\n"
            "如有困难请联系社区：025-8371 2345"
        ),
        "urgent": False,
        "sender": "汇林绿洲社区居委会",
    }


def _weather(now: datetime, place: str) -> dict[str, Any]:
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
            "location": place,
            "provider": "open-meteo",
            "current": {"temp": 9.4, "text": "多云", "code": 3},
            "today": dict(days[0]),
            "days": days,
        }
    }


def _weather_alert(now: datetime, place: str) -> dict[str, Any]:
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
            "pub_time": _at(now, 0, 9, 15),
        },
        "location": place,
    }


def _news(now: datetime) -> dict[str, Any]:
    feed = {"feed_id": "gulou-gov", "feed_title": "鼓楼区人民政府"}
    return {
        "items": [
            {"title": "鼓楼区新增 3 处社区食堂 老人就餐可享优惠",
             "link": "https://example.gov.cn/gulou/news/1001.html",
             "summary": "宁海路、湖南路、华侨路街道的 3 处社区食堂本周开业，"
                        "60 岁以上老人凭身份证就餐每餐优惠 2 元。",
             "published": _at(now, 0, 7, 30), **feed},
            {"title": "冬季供暖设备安全检查开始预约",
             "link": "https://example.gov.cn/gulou/news/1002.html",
             "summary": "即日起可通过社区网格员预约上门检查燃气热水器和取暖设备。",
             "published": _at(now, -1, 16, 0), **feed},
            {"title": "鼓楼区图书馆周末开展亲子阅读活动",
             "link": "https://example.gov.cn/gulou/news/1003.html",
             "summary": "",
             "published": None, **feed},
        ]
    }


def _events(now: datetime) -> dict[str, Any]:
    saturday = (5 - now.weekday()) % 7 or 7
    return {
        "events": [
            {"title": "免费测血压、血糖", "start": _at(now, 1, 9), "end": _at(now, 1, 11),
             "place": "社区卫生服务站", "description": "请带上医保卡，空腹测血糖更准确。",
             "all_day": False},
            {"title": "垃圾分类宣传活动", "start": _at(now, saturday, 9, 30),
             "end": _at(now, saturday, 11, 30), "place": "社区广场",
             "description": None, "all_day": False},
            {"title": "旧衣物回收日", "start": _at(now, saturday + 1, 0), "end": None,
             "place": None, "description": "干净衣物请打包好放到各单元门口回收箱。",
             "all_day": True},
        ],
        "days_ahead": 7,
        "reminder": False,
    }


def _holiday(now: datetime, key: str) -> dict[str, Any]:
    return {"festival": festival_data(key, now.date())}


_STAFF = {"id": "wang-li", "name": "王丽"}
_SUPERVISOR = {"id": "zhang-hua", "name": "张华"}


def _staff_ticket(now: datetime, seq: int, text: str, **over: Any) -> dict[str, Any]:
    return {
        "id": f"GL-{now:%m%d}-{seq:04d}", "category": "卫生", "urgent": False,
        "status": "assigned", "text": text, "reporter": "赵大爷",
        "group_name": "汇林绿洲社区第1网格群", "created_at": _at(now, 0, 9, 12),
        "deadline": _at(now, 2, 9, 12), "overdue": False,
        "note": "wang-li (covers community:huilinlvzhou)", **over,
    }


def _ticket(kind: str, now: datetime) -> dict[str, Any]:
    """Sample work-order data; group-facing kinds get only what groups may see."""
    created, deadline = _at(now, 0, 9, 12), _at(now, 2, 9, 12)
    ticket = _staff_ticket(now, 42, "3栋2单元楼道里的垃圾三天没人清了，味道很大，麻烦尽快处理。")
    if kind == "ticket_ack":
        return {"ticket": {"id": ticket["id"], "category": "卫生", "urgent": False,
                           "reporter": "赵\\*", "handler": "王\\*", "deadline": deadline,
                           "created_at": created}}
    if kind == "ticket_resolved":
        return {"ticket": {"id": ticket["id"], "category": "卫生", "reporter": "赵\\*",
                           "handler": "王\\*", "created_at": created,
                           "resolved_at": _at(now, 1, 15, 40),
                           "result": "楼道垃圾已清运，已联系物业每天上午、下午各清理一次。"}}
    if kind == "ticket_digest":
        return {"staff": dict(_STAFF), "tickets": [
            _staff_ticket(now, 17, "小区东门路灯不亮，晚上出入很不方便。", category="设施报修",
                          status="accepted", urgent=True, overdue=True,
                          created_at=_at(now, -1, 20, 5), deadline=_at(now, -1, 23, 5),
                          note="", reporter="钱阿姨"),
            ticket,
            _staff_ticket(now, 45, "5栋楼下绿化带的树枝挡住了路，老人走路不方便。",
                          category="绿化", deadline=_at(now, 3, 10, 30), reporter="孙师傅"),
        ]}
    data: dict[str, Any] = {"ticket": ticket, "staff": dict(_STAFF)}
    if kind == "ticket_reminder":
        ticket.update(status="accepted", note="")
    if kind == "ticket_overdue":
        ticket.update(status="accepted", overdue=True, note="",
                      created_at=_at(now, -3, 9, 12), deadline=_at(now, -1, 9, 12))
        data["supervisor"] = dict(_SUPERVISOR)
    return data
