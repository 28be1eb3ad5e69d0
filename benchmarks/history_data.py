"""A district's delivery history, written straight into the store's files.

``make_root(root, groups)`` writes a ``groups.yaml`` of ``groups`` groups (ten
streets, communities of 40 groups, every group a grid group, platforms mixed:
mostly WeCom, then DingTalk, Feishu, Slack, Discord and webhooks; robot URLs
from the environment, as in production) and returns that environment.

``generate(state, groups=..., per_day=..., days=..., now=...)`` writes ``days``
finished days of history, the last one being yesterday: every group gets
``per_day`` deliveries a day, from ``per_day - 2`` announcements to all groups
and two rounds of one announcement per street, scheduled between 07:00 and
21:00. About 97.5 % of deliveries are sent (most within seconds, a few held for
minutes), 1.5 % fail with a platform's reason and 1 % expire (after 6 hours). Files are written
in the store's format without going through ``announce`` (fast enough for
7,200,000 rows), with a fixed seed, so the same arguments give the same data.
The history index is written as the store writes it when announcements are
archived (``History.record``), from the same rows.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

TZ = ZoneInfo("Asia/Shanghai")
STREETS = 10
EXPIRES = 6 * 3600            # seconds: announcements of the generated history expire after 6 h
COMMUNITY_SIZE = 40
PLATFORMS = ("wecom",) * 6 + ("dingtalk", "dingtalk", "feishu", "slack", "discord", "webhook")
URLS = {
    "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=bench-{i:04d}",
    "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=bench-{i:04d}",
    "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook/bench-{i:04d}",
    "slack": "https://hooks.slack.com/services/bench-{i:04d}",
    "discord": "https://discord.com/api/webhooks/bench-{i:04d}",
    "webhook": "https://hooks.example.org/hook/bench-{i:04d}",
}
REASONS = {
    "wecom": ["93000: invalid webhook url", "45009: api freq out of limit"],
    "dingtalk": ["310000: keywords not in content", "300001: token is not exist"],
    "feishu": ["19021: sign match fail or timestamp is not within one hour from current time"],
    "slack": ["channel_not_found", "invalid_token"],
    "discord": ["Unknown Webhook"],
    "webhook": ["HTTP 410: gone"],
}
TITLES = ["今日天气", "鼓楼要闻", "社区活动预告", "停水通知", "垃圾分类提醒", "防诈骗提示",
          "疫苗接种通知", "志愿者招募", "燃气安全检查", "节日问候"]


def platform_of(i: int) -> str:
    return PLATFORMS[i % len(PLATFORMS)]


def group_id(i: int) -> str:
    return f"g{i:04d}"


def street_of(i: int, groups: int) -> int:
    return i * STREETS // groups


def make_root(root: Path, groups: int, templates: Path | None = None) -> dict[str, str]:
    """Write ``root/groups.yaml`` (and empty feeds/, schedules/); return the robots' env."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    for sub in ("feeds", "schedules"):
        (root / sub).mkdir(exist_ok=True)
    if templates is not None and not (root / "templates").exists():
        shutil.copytree(templates, root / "templates")
    env, docs = {}, []
    for i in range(groups):
        platform = platform_of(i)
        var = f"BENCH_HOOK_{i:04d}"
        env[var] = URLS[platform].format(i=i)
        docs.append({"id": group_id(i), "name": f"第{i // COMMUNITY_SIZE + 1}社区第{i % COMMUNITY_SIZE + 1}网格群",
                     "tags": ["district:gulou", f"street:s{street_of(i, groups):02d}",
                              f"community:c{i // COMMUNITY_SIZE:03d}", "kind:grid"],
                     "channel": {"type": platform, "url": f"${{{var}}}"}})
    doc = {"defaults": {"timezone": "Asia/Shanghai"}, "groups": docs}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
    return env


@dataclass
class Written:
    """What ``generate`` wrote: counts to check figures against."""

    announcements: int = 0
    rows: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0, "expired": 0})
    ids: list[str] = field(default_factory=list)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, TZ).isoformat(timespec="seconds")


class _Writer:
    def __init__(self, state: Path, groups: int, seed: int):
        self.state = state
        self.groups = groups
        self.rnd = random.Random(seed)
        self.history = _index(state)
        self.finished: list[tuple[dict, list[dict]]] = []
        self.serial = 0
        self.out = Written()

    def announcement(self, scheduled: datetime, members: range, title: str) -> None:
        rnd = self.rnd
        self.serial += 1
        created = scheduled - timedelta(minutes=5)
        ann_id = f"{created:%Y%m%d-%H%M%S}-{self.serial % 0xFFFFFF:06x}"
        base = scheduled.timestamp()
        stamps: dict[int, str] = {}

        def at(offset: int) -> str:
            s = stamps.get(offset)
            if s is None:
                s = stamps[offset] = _iso(base + offset)
            return s

        rows, last, facts = [], 0, []
        for n, i in enumerate(members, 1):
            gid = group_id(i)
            r = rnd.random()
            if r < 0.975:
                u = rnd.random()
                delay = int(u * 10) if u < 0.7 else (int(10 + u * 50) if u < 0.95 else int(60 + u * 540))
                ms = round(30 + rnd.random() * 500, 1)
                stamp = at(delay)
                rows.append(
                    f'"{n}":{{"group":"{gid}","body":"b","status":"sent","attempts":1,"parts_sent":1,'
                    f'"next_attempt_at":null,"updated_at":"{stamp}","sent_at":"{stamp}",'
                    f'"last_error":null,"http_status":200,"code":"0","latency_ms":{ms},'
                    f'"history":[{{"at":"{stamp}","outcome":"sent","http_status":200,"code":"0",'
                    f'"latency_ms":{ms},"error":null}}]}}')
                self.out.counts["sent"] += 1
                facts.append({"group": gid, "status": "sent", "updated_at": stamp, "sent_at": stamp,
                              "latency_ms": ms, "attempts": 1})
            elif r < 0.99:
                reasons = REASONS[platform_of(i)]
                reason = json.dumps(reasons[int(rnd.random() * len(reasons))], ensure_ascii=False)
                delay = int(rnd.random() * 30)
                stamp = at(delay)
                rows.append(
                    f'"{n}":{{"group":"{gid}","body":"b","status":"failed","attempts":1,"parts_sent":0,'
                    f'"next_attempt_at":null,"updated_at":"{stamp}","sent_at":null,'
                    f'"last_error":{reason},"http_status":200,"code":"1","latency_ms":80.0,'
                    f'"history":[{{"at":"{stamp}","outcome":"permanent","http_status":200,"code":"1",'
                    f'"latency_ms":80.0,"error":{reason}}}]}}')
                self.out.counts["failed"] += 1
                facts.append({"group": gid, "status": "failed", "updated_at": stamp, "attempts": 1,
                              "last_error": json.loads(reason), "http_status": 200, "code": "1",
                              "latency_ms": 80.0})
            else:
                delay = EXPIRES
                stamp = at(delay)
                rows.append(
                    f'"{n}":{{"group":"{gid}","body":"b","status":"expired","attempts":3,"parts_sent":0,'
                    f'"next_attempt_at":null,"updated_at":"{stamp}","sent_at":null,'
                    f'"last_error":"expired before delivery","http_status":null,"code":null,'
                    f'"latency_ms":null,"history":[]}}')
                self.out.counts["expired"] += 1
                facts.append({"group": gid, "status": "expired", "updated_at": stamp, "attempts": 3,
                              "last_error": "expired before delivery"})
            last = max(last, delay)
        meta = {"id": ann_id, "created_at": created.isoformat(timespec="seconds"),
                "scheduled_for": scheduled.isoformat(timespec="seconds"),
                "expires_at": (scheduled + timedelta(seconds=EXPIRES)).isoformat(timespec="seconds"),
                "status": "done", "source": "cli" if self.serial % 3 else "job:daily@bench",
                "created_by": "bench", "urgent": False, "mention_all": False, "title": title,
                "bodies": {"b": f"# {title}\n\n今日通知内容。"}, "updated_at": at(last),
                "finished_at": at(last)}
        month = self.state / "archive" / f"{created:%Y-%m}"
        month.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = ('{"_default":{"1":' + json.dumps(meta, ensure_ascii=False) + '},"deliveries":{'
                + ",".join(rows) + "}}")
        path = month / f"{ann_id}.json"
        path.write_text(body, encoding="utf-8")
        path.chmod(0o600)
        self.finished.append((meta, facts))
        self.out.announcements += 1
        self.out.rows += len(rows)
        self.out.ids.append(ann_id)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)   # generated data: no fsync (the store's own writes keep theirs)
    path.chmod(0o600)


def _index(state: Path):
    """The store's history index over ``state``, writing without fsync."""
    from contextlib import nullcontext

    from broadcaster.store.files import FileStore
    from broadcaster.store.history import History

    store = FileStore(state)
    return History.in_files(state, load=store.load_archived, listing=store.archived_by_day,
                   lock=nullcontext, write=_write)


def generate(state: Path, *, groups: int, per_day: int, days: int, now: datetime,
             seed: int = 1) -> Written:
    """Write ``days`` days of finished history ending yesterday (see the module docstring)."""
    for sub in ("archive", "active", "state", "locks"):
        (state / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    state.chmod(0o700)
    w = _Writer(state, groups, seed)
    today = now.astimezone(TZ).date()
    slots = max(per_day, 1)
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        for k in range(per_day):
            minute = 7 * 60 + k * (14 * 60) // slots
            scheduled = datetime.combine(day, time(minute // 60, minute % 60), TZ)
            title = TITLES[k % len(TITLES)]
            if k < per_day - 2 or groups < STREETS:
                w.announcement(scheduled, range(groups), title)
                continue
            for s in range(STREETS):  # one announcement per street
                members = range(-(-s * groups // STREETS), -(-(s + 1) * groups // STREETS))
                w.announcement(scheduled + timedelta(seconds=s), members, f"{title}（街道）")
        w.history.record_many(w.finished)   # the index, a day at a time
        w.finished.clear()
    return w.out
