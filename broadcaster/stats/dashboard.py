"""The dashboard: the office's figures as one self-contained HTML page, in Chinese.

``render(figures)`` turns the document ``stats --json`` prints (built by
``broadcaster.stats.figures.build``) into a page; ``render_dashboard(app)``
builds the figures and renders them (``serve`` shows it at ``/dashboard``);
``write(out_dir, figures)`` saves it as ``<out_dir>/index.html``; ``authorized``
says whether a request's ``Authorization`` header carries ``defaults.dashboard_token``.

The page needs nothing from outside: styles are inline, charts are SVG drawn
here (``broadcaster.stats.svg``), there is no script to run, and its content
security policy forbids loading anything, so it works offline and from a file.
Every figure shown carries ``data-key``/``data-value`` (the path in the
figures document and its number), and the document itself is embedded as
``<script type="application/json" id="figures">``, so what the page shows can
be checked against ``stats --json``. It reads well on a phone: one column
under 640 px, two or three above.
"""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.stats import svg
from broadcaster.stats.svg import Series

if TYPE_CHECKING:
    from broadcaster.app import App

DEFAULT_SINCE = timedelta(days=30)
PAGE_NAME = "index.html"
GREEN, RED, ORANGE, BLUE, GREY = "#2e7d32", "#c62828", "#ef6c00", "#1565c0", "#757575"

TICKET_STATUS = {"open": "待分派", "assigned": "已分派", "accepted": "已受理", "resolved": "已办结",
                 "closed": "已关闭", "reopened": "重新处理", "rejected": "已驳回"}

# (path in the figures document, label, how to show it)
CARDS = [
    ("announcements", "发布通知", "count"),
    ("deliveries.sent", "送达群次", "count"),
    ("groups_reached", "覆盖群数", "count"),
    ("deliveries.failed", "发送失败", "count"),
    ("deliveries.expired", "过期未送达", "count"),
    ("deliveries.pending", "等待发送", "count"),
    ("latency.median_s", "送达用时（中位数）", "duration"),
    ("latency.p95_s", "送达用时（95%）", "duration"),
    ("inbound.messages", "居民消息", "count"),
    ("inbound.answered", "在线解答", "count"),
    ("inbound.missed", "未能解答", "count"),
    ("tickets.opened", "新建工单", "count"),
    ("tickets.resolved", "办结工单", "count"),
    ("tickets.overdue", "超期工单", "count"),
]

STYLE = """
*{box-sizing:border-box}
body{margin:0;padding:12px;background:#f4f6f8;color:#222;
font-family:-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei","WenQuanYi Zen Hei",sans-serif}
main{max-width:1100px;margin:0 auto}
h1{font-size:20px;margin:4px 0}
.period{color:#666;font-size:13px;margin:0 0 12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(110px,1fr));gap:8px;margin-bottom:12px}
.card{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .label{font-size:13px;color:#555}
.card .value{font-size:24px;font-weight:600;margin-top:2px}
.panels{display:grid;grid-template-columns:1fr;gap:12px}
@media (min-width:640px){.panels{grid-template-columns:repeat(2,1fr)}}
@media (min-width:1000px){.panels{grid-template-columns:repeat(3,1fr)}}
section{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:0}
h2{font-size:15px;margin:0 0 8px}
svg.chart{display:block;width:100%;height:auto}
table{width:100%;border-collapse:collapse;font-size:13px;margin-top:8px}
td,th{text-align:left;padding:3px 4px;border-bottom:1px solid #eee;word-break:break-all}
td.n,th.n{text-align:right;white-space:nowrap}
footer{color:#888;font-size:12px;margin:12px 0}
"""


def lookup(figures: dict, path: str):
    value = figures
    for part in path.split("."):
        value = value[part]
    return value


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f}秒"
    if seconds < 3600:
        return f"{seconds / 60:.1f}分钟"
    return f"{seconds / 3600:.1f}小时"


def _card(figures: dict, path: str, label: str, kind: str) -> str:
    value = lookup(figures, path)
    shown = duration(value) if kind == "duration" else svg.short_number(value)
    data = "" if value is None else f' data-value="{value}"'
    return (f'<div class="card" data-key="{path}"{data}><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(shown)}</div></div>')


def _panel(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def _by_reason(figures: dict) -> list[tuple[str, int]]:
    out: dict[str, int] = {}
    for f in figures["failures"]:
        out[f["reason"]] = out.get(f["reason"], 0) + f["count"]
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))[:10]


def _by_platform(figures: dict) -> list[tuple[str, int]]:
    out: dict[str, int] = {}
    for f in figures["failures"]:
        out[f["platform"]] = out.get(f["platform"], 0) + f["count"]
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))


def _misses_table(misses: list[dict]) -> str:
    if not misses:
        return ""
    rows = "".join(f'<tr><td>{escape(str(m["text"]))}</td><td class="n">{m["count"]}</td></tr>'
                   for m in misses)
    return f'<table class="misses"><tr><th>居民常问但未能解答</th><th class="n">次数</th></tr>{rows}</table>'


def panels(figures: dict) -> list[str]:
    daily = figures["daily"]
    labels = [d["date"][5:] for d in daily]
    inbound, tickets = figures["inbound"], figures["tickets"]
    return [
        _panel("每日送达情况", svg.stacked_columns(
            "daily", "每日送达与失败", labels,
            [Series("sent", "已送达", GREEN, [d["sent"] for d in daily]),
             Series("failed", "失败", RED, [d["failed"] for d in daily])])),
        _panel("失败原因", svg.bars("failure-reasons", "失败原因", _by_reason(figures), RED)),
        _panel("各平台失败次数", svg.bars("failure-platforms", "各平台失败次数",
                                         _by_platform(figures), ORANGE)),
        _panel("失败最多的群", svg.bars(
            "failed-groups", "失败最多的群",
            [(g["name"] or g["group"], g["failed"]) for g in figures["top_failed_groups"]], RED)),
        _panel("居民提问解答情况", svg.bars(
            "questions", "已解答与未解答",
            [("已解答", inbound["answered"]), ("未解答", inbound["missed"])], GREEN,
            colors=[GREEN, ORANGE]) + _misses_table(inbound["top_misses"])),
        _panel("工单状态", svg.bars(
            "ticket-status", "工单状态",
            [(TICKET_STATUS.get(k, k), v) for k, v in tickets["by_status"].items()], BLUE)),
        _panel("各网格超期工单", svg.bars(
            "overdue-grids", "各网格超期工单",
            [(r.get("name") or r["grid"], r["overdue"]) for r in tickets["by_grid"]][:10], RED)),
    ]


def _embedded(figures: dict) -> str:
    text = json.dumps(figures, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(figures: dict, *, title: str = "社区群发与居民服务数据看板") -> str:
    period = (f"统计区间：{figures['since'][:10]} 至 {figures['until'][:10]}"
              f"（截至 {figures['until'][11:16]}）")
    cards = "".join(_card(figures, *c) for c in CARDS)
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{escape(title)}</h1><p class=\"period\">{escape(period)}</p>"
        f'<div class="cards">{cards}</div>'
        f'<div class="panels">{"".join(panels(figures))}</div>'
        f"<footer>本页由 broadcaster 生成，数字与 <code>broadcaster stats --json</code> 一致。</footer>"
        f'</main><script type="application/json" id="figures">{_embedded(figures)}</script>'
        "</body></html>\n"
    )


def render_dashboard(app: App, since: timedelta = DEFAULT_SINCE) -> str:
    """The page for ``app``'s figures over ``since`` (what ``serve`` shows at ``/dashboard``)."""
    from broadcaster.stats.figures import build  # start-up time: loaded when first used

    return render(build(app, since))


def authorized(app: App, header: str | None) -> bool | None:
    """Whether an ``Authorization`` header carries ``defaults.dashboard_token``.

    None when no token is set: then the page is not served at all (404).
    """

    token = app.groups.defaults.dashboard_token
    if not token:
        return None
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def write(out_dir: Path, figures: dict) -> Path:
    """Write the page for ``figures`` as ``<out_dir>/index.html`` (atomically); return its path."""
    from broadcaster.store import atomic_write  # start-up time: loaded when first used

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PAGE_NAME
    atomic_write(path, render(figures).encode("utf-8"))
    path.chmod(0o644)
    return path
