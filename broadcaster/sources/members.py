"""New members and their welcome: joins close together are greeted in one message.

- ``record_joins(app, group_id, names, now)`` adds names to the group's pending
  welcome (state ``members``); the first join opens a window (``WINDOW``, 5 min).
- ``flush_welcomes(app, now)`` — called by every pass (run-once, daemon tick) —
  queues one ``welcome`` message per group whose window has closed, rendered
  with the group's welcome template (its override if it has one), and clears
  the pending list in the same locked step, so it is queued exactly once.
- ``poll_telegram(app)`` reads ``getUpdates`` for every Telegram bot of
  groups.yaml (offset persisted in state ``telegram``; ``message.new_chat_members``
  and ``chat_member`` updates) and records the joins; bots — the bot itself
  above all — are never welcomed. The daemon calls it every few seconds.

Names are untrusted (a Telegram user picks their own): they are reduced to
inert text (see ``broadcaster.sources.safe_text``) before they reach a template.
Declares the ``welcome`` template kind (``members``: the names greeted).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.errors import InputError, did_you_mean
from broadcaster.queue.outbox import Message, enqueue
from broadcaster.sources import safe_text
from broadcaster.sources.kinds import TemplateKind, register_template
from broadcaster.timeparse import from_iso, iso

if TYPE_CHECKING:
    from broadcaster.app import App
    from broadcaster.config.groups import Group
    from broadcaster.net.client import HttpClient

log = logging.getLogger(__name__)

STATE = "members"
TELEGRAM_STATE = "telegram"
WINDOW = timedelta(minutes=5)
NAME_LIMIT = 32
MAX_PENDING = 200                   # names per welcome; more joins still get one message
TELEGRAM_TIMEOUT = (3.0, 10.0)   # connect, read; the long-poll wait is added to both the
                                 # read timeout and the total deadline

WELCOME = register_template(TemplateKind(
    "welcome", data=("members",), fields=("members",),
    sample=lambda now, **_: {"members": ["张阿姨", "李师傅", "小王"]},
    cases={"one": {"members": ["张阿姨"]}},
    used_by="members join",
))


def _group(app: App, group_id: str) -> Group:
    group = app.groups.by_id.get(group_id)
    if group is None:
        hint = did_you_mean(group_id, app.groups.by_id, " (see: groups list)")
        raise InputError(f"no group with id {group_id!r}{hint}")
    return group


def record_joins(
    app: App, group_id: str, names: list[str], now: datetime | None = None,
    *, window: timedelta = WINDOW,
) -> dict:
    """Record that ``names`` joined ``group_id``; returns the pending welcome.

    ``{"group", "pending": [names], "welcome_at": iso}`` — the welcome is queued
    by the first ``flush_welcomes`` at or after ``welcome_at``.
    """
    _group(app, group_id)
    now = now or app.now()
    clean = [n for n in (safe_text(x, limit=NAME_LIMIT, html_input=False) for x in names) if n]
    if not clean:
        raise InputError("give at least one member name")
    with app.store.state(STATE) as st:
        pending = st.setdefault("pending", {})
        entry = pending.setdefault(group_id, {"first": iso(now), "names": []})
        for name in clean:
            if name not in entry["names"] and len(entry["names"]) < MAX_PENDING:
                entry["names"].append(name)
        joined = st.setdefault("joined", {})
        joined[group_id] = joined.get(group_id, 0) + len(clean)
        first = from_iso(entry["first"])
        return {"group": group_id, "pending": list(entry["names"]),
                "welcome_at": iso(first + window)}


def flush_welcomes(app: App, now: datetime | None = None, *, window: timedelta = WINDOW,
                   only: str | None = None) -> int:
    """Queue one welcome per group whose window has closed; returns how many were queued.

    ``only`` with ``window=timedelta(0)`` greets that group now (``members join --now``).
    """
    now = now or app.now()
    if not app.store.read_state(STATE).get("pending"):
        return 0
    queued = 0
    with app.store.state(STATE) as st:
        pending = st.get("pending", {})
        for group_id in list(pending):
            if only is not None and group_id != only:
                continue
            entry = pending[group_id]
            first = from_iso(entry["first"])
            if first + window > now:
                continue
            group = app.groups.by_id.get(group_id)
            if group is None:          # the group left groups.yaml: nobody to greet
                del pending[group_id]
                continue
            body = app.templates.render("welcome", group=group,
                                        data={"members": entry["names"]},
                                        now=now.astimezone(group.tz))
            enqueue(app, [Message(group_id, body)], source=f"welcome:{group_id}@{entry['first']}")
            del pending[group_id]
            queued += 1
    return queued


# --- Telegram getUpdates -------------------------------------------------------------

def _token_key(token: str) -> str:
    """State keys name a bot by a hash of its token, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _display(user: dict) -> str:
    name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
    return name or user.get("username") or str(user.get("id", ""))


def joins_in(update: dict, bot_id: int | None) -> tuple[str | None, list[str]]:
    """(chat id, names of humans who joined) from one Telegram update."""
    msg = update.get("message") or {}
    if msg.get("new_chat_members"):
        chat = str((msg.get("chat") or {}).get("id"))
        names = [
            _display(u) for u in msg["new_chat_members"]
            if not u.get("is_bot") and u.get("id") != bot_id
        ]
        return chat, names
    cm = update.get("chat_member")
    if cm:
        old = (cm.get("old_chat_member") or {}).get("status")
        new = cm.get("new_chat_member") or {}
        user = new.get("user") or {}
        if old in ("left", "kicked", None) and new.get("status") in ("member", "restricted") \
                and not user.get("is_bot") and user.get("id") != bot_id:
            return str((cm.get("chat") or {}).get("id")), [_display(user)]
    return None, []


def poll_telegram(
    app: App, *, timeout: int = 0, session: HttpClient | None = None,
    now: datetime | None = None,
) -> list[tuple[str, list[str]]]:
    """One ``getUpdates`` per Telegram bot; records and returns the joins found.

    ``timeout`` is Telegram's long-poll wait in seconds (0: answer at once).
    Failures are logged (token redacted) and retried at the next call. With
    ``inbound.telegram`` in webhook mode the updates come to ``serve`` instead
    (Telegram refuses ``getUpdates`` while a webhook is set): nothing is polled.
    """
    inbound = getattr(app.groups, "inbound", None)
    if inbound is not None and inbound.telegram is not None \
            and inbound.telegram.effective_mode == "webhook":
        return []
    from broadcaster import channels  # start-up time: a pass greeting nobody loads no channel

    bots: dict[str, tuple[str, dict[str, str]]] = {}   # token -> (Bot API URL, chat id -> group)
    for g in app.groups.groups:
        if g.channel_type == "telegram":   # the channel knows its bot, its API and its chat
            bot = channels.get("telegram")(g.channel, g.id)
            bots.setdefault(bot.credential(), (bot.api_url(""), {}))[1][bot.chat_id] = g.id
    found: list[tuple[str, list[str]]] = []
    from broadcaster.net.client import HttpFailure, webhook_client  # in-function: start-up
    from broadcaster.net.urls import UrlRefused  # start-up time: loaded when first used

    http = session or webhook_client()
    for token, (api, chats) in bots.items():
        key = _token_key(token)
        try:
            found.extend(_poll_one(app, http, api, key, chats, timeout, now))
        except (HttpFailure, UrlRefused) as exc:    # reasons never hold the URL (or the token)
            log.warning("telegram (bot %s): %s", key, exc)
        except (ValueError, KeyError) as exc:       # the platform's answer, e.g. 401 Unauthorized
            log.warning("telegram (bot %s): %s", key, app.redact(exc))
    return found


def _call(http, api: str, method: str, params: dict, timeout: int) -> dict:
    read = TELEGRAM_TIMEOUT[1] + timeout
    resp = http.get(api + method, params=params, timeout=(TELEGRAM_TIMEOUT[0], read),
                    deadline=sum(TELEGRAM_TIMEOUT) + timeout)
    data = resp.json()
    if not data.get("ok"):
        raise ValueError(f"{method}: {data.get('error_code')} {data.get('description')}")
    return data


def _poll_one(app: App, http, api, key, chats, timeout, now) -> list[tuple[str, list[str]]]:
    known = app.store.read_state(TELEGRAM_STATE).get(key, {})
    bot_id = known.get("bot_id")
    if bot_id is None:
        bot_id = _call(http, api, "getMe", {}, 0)["result"]["id"]
    params = {"timeout": timeout,
              "allowed_updates": json.dumps(["message", "chat_member"])}
    if known.get("offset"):
        params["offset"] = known["offset"]
    try:
        updates = _call(http, api, "getUpdates", params, timeout)["result"]
    except ValueError as exc:
        log.warning("telegram (bot %s): %s", key, app.redact(exc))
        updates = []
    found = []
    for update in updates:
        chat, names = joins_in(update, bot_id)
        if chat in chats and names:
            record_joins(app, chats[chat], names, now)
            found.append((chats[chat], names))
    with app.store.state(TELEGRAM_STATE) as st:
        entry = st.setdefault(key, {})
        entry["bot_id"] = bot_id
        if updates:
            entry["offset"] = max(u["update_id"] for u in updates) + 1
    return found
