"""Channel adapters against the loopback platform simulator (no mocking of requests)."""

from __future__ import annotations

import hmac
import json
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import requests
import time_machine

from broadcaster import channels
from broadcaster.channels import dingtalk, feishu, webhook
from broadcaster.channels.base import SendResult
from broadcaster.channels.http import check_url, parse_retry_after
from broadcaster.net.client import webhook_client
from tests.simulator import PlatformSimulator

HTTP_PLATFORMS = ["wecom", "dingtalk", "feishu", "telegram", "slack", "discord", "webhook"]
SHORT_TIMEOUT = (0.5, 0.5)

# per platform: robot options, the platform's words for an unknown key, retry-after on 429
CASES = {
    "wecom": ({}, "93000: invalid webhook url", 60.0),
    "dingtalk": ({"secret": "SECsimsecret", "keywords": ["通知"]}, "token is not exist", 600.0),
    "feishu": ({"secret": "feishu-sim-secret"}, "incoming webhook access token invalid", 1.0),
    "telegram": ({"chats": {"-100200"}}, "Unauthorized", 1.0),
    "slack": ({}, "no_service", 1.0),
    "discord": ({}, "Unknown Webhook", 1.0),
    "webhook": ({"secret": "hook-sim-secret"}, "HTTP 404", 1.0),
}
WRONG_KEYS = {
    "wecom": "0000aaaa-bbbb-cccc-dddd-000000000000",
    "dingtalk": "f" * 64,
    "feishu": "00000000-1111-2222-3333-444444444444",
    "telegram": "999999999:AAunknownunknownunknownunknown",
    "slack": "T0000/B0000/unknownunknownunknown",
    "discord": "111111111111/unknownunknownunknown",
    "webhook": "nobody-listens-here",
}


@pytest.fixture(scope="module")
def sim():
    with PlatformSimulator(slow_seconds=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def session():
    with webhook_client() as s:
        yield s


def channel_for(cfg: dict, session, group: str = "g1"):
    cls = channels.get(cfg["type"])
    return cls(cls.Config.model_validate(cfg), group, session, timeout=SHORT_TIMEOUT)


def robot_for(sim, platform: str, **options):
    return sim.add_robot(platform, **{**CASES[platform][0], **options})


def send_all(channel, text: str, *, title: str = "停水通知", mention_all: bool = False):
    results = [channel.send(p) for p in channel.render(text, title=title, mention_all=mention_all)]
    secrets = channel.secret_strings() if hasattr(channel, "secret_strings") else []
    for result in results:
        for secret in secrets:
            assert secret not in result.reason, "a secret leaked into a SendResult"
    return results


def first(channel, text: str = "**停水通知**：明天 9:00 停水") -> SendResult:
    return send_all(channel, text)[0]


# -- the table: each platform x each situation --------------------------------------


@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
def test_ok(sim, session, platform):
    robot = robot_for(sim, platform)
    channel = channel_for(robot.config(), session)
    results = send_all(channel, "# 通知\n\n**明天** 停水 <注意> & 储水")
    assert [r.outcome for r in results] == ["sent"]
    assert results[0].latency_ms > 0
    assert len(robot.messages) == 1
    assert "停水" in robot.texts[0]


@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
def test_forced_rate_limit_is_transient_with_wait(sim, session, platform):
    robot = robot_for(sim, platform)
    robot.fail_next("rate_limit")
    result = first(channel_for(robot.config(), session))
    assert result.outcome == "transient"
    assert result.retry_after == pytest.approx(CASES[platform][2])
    assert robot.messages == []


@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
def test_rate_limit_is_enforced_per_robot(sim, session, platform):
    robot = robot_for(sim, platform, limits=[(2, 60.0)], penalty_seconds=0)
    other = robot_for(sim, platform, limits=[(2, 60.0)])
    channel = channel_for(robot.config(), session)
    outcomes = [first(channel).outcome for _ in range(3)]
    assert outcomes == ["sent", "sent", "transient"]
    assert first(channel_for(other.config(), session)).outcome == "sent"
    assert len(robot.messages) == 2


@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
def test_unknown_key_is_permanent_with_platform_reason(sim, session, platform):
    robot = robot_for(sim, platform)
    cfg = robot.config()
    if platform == "telegram":
        cfg["token"] = WRONG_KEYS[platform]
    else:
        cfg["url"] = cfg["url"].replace(robot.key, WRONG_KEYS[platform])
    channel = channel_for(cfg, session)
    result = first(channel)
    assert result.outcome == "permanent"
    assert CASES[platform][1] in result.reason
    assert WRONG_KEYS[platform] not in result.reason


@pytest.mark.parametrize("platform", ["dingtalk", "feishu", "webhook"])
def test_bad_signature_is_permanent(sim, session, platform):
    robot = robot_for(sim, platform)
    channel = channel_for(robot.config(secret="wrong-secret-value"), session)
    result = first(channel)
    assert result.outcome == "permanent"
    assert {"dingtalk": "sign not match", "feishu": "sign match fail",
            "webhook": "bad signature"}[platform] in result.reason
    assert "wrong-secret-value" not in result.reason
    assert robot.messages == []


@pytest.mark.parametrize("platform", ["dingtalk", "feishu"])
def test_missing_signature_is_permanent(sim, session, platform):
    robot = robot_for(sim, platform)
    cfg = robot.config()
    del cfg["secret"]
    assert first(channel_for(cfg, session)).outcome == "permanent"


# answers the simulator does not produce on its own: (platform, HTTP status, body,
# headers, outcome, retry_after, words of the reason)
ANSWERS = [
    ("wecom", 200, {"errcode": -1, "errmsg": "system busy"}, {}, "transient", None, "system busy"),
    ("wecom", 200, {"errcode": 44004, "errmsg": "empty content"}, {}, "permanent", None,
     "44004: empty content"),
    ("dingtalk", 200, {"errcode": 410100, "errmsg": "send too fast"}, {}, "transient", 600.0,
     "410100"),
    ("dingtalk", 200, {"errcode": -1, "errmsg": "系统繁忙"}, {}, "transient", None, "系统繁忙"),
    ("dingtalk", 200, {"errcode": 400102, "errmsg": "机器人已停用"}, {}, "permanent", None,
     "400102"),
    ("dingtalk", 200, {"errcode": 310000, "errmsg": "ip 1.2.3.4 not in whitelist"}, {},
     "permanent", None, "not in whitelist"),
    ("feishu", 400, {"code": 9499, "msg": "Bad Request", "data": {}}, {}, "permanent", None,
     "9499: Bad Request"),  # the code decides, not the HTTP status
    ("feishu", 200, {"code": 19024, "msg": "Key Words Not Found"}, {}, "permanent", None,
     "Key Words Not Found"),
    # an answer that is not the platform's (an HTML page, cut-off JSON) is retried, never final
    ("feishu", 200, "<html>gateway</html>", {}, "transient", None, "HTML page"),
    ("wecom", 200, '{"errcode":0,"errm', {}, "transient", None, "cut-off JSON"),
    ("dingtalk", 200, "<!DOCTYPE html><html>502</html>", {}, "transient", None, "HTML page"),
    ("telegram", 200, '{"ok":true,"result":{"mess', {}, "transient", None, "cut-off JSON"),
    ("discord", 200, "<html><body>cdn error</body></html>", {}, "transient", None, "HTML page"),
    ("slack", 200, "<html>proxy</html>", {}, "transient", None, "HTML page"),
    # what a platform may ask to wait is capped (1 h): more is a failure with the reason
    ("slack", 429, "rate_limited", {"Retry-After": "99999999"}, "permanent", None,
     "asked to wait 1157 days, more than the 1 h cap"),
    ("discord", 429, {"message": "You are being rate limited.", "retry_after": 1e12}, {},
     "permanent", None, "more than the 1 h cap"),
    ("webhook", 503, "busy", {"Retry-After": "3000"}, "transient", 3000.0, "HTTP 503"),
    ("webhook", 503, "busy", {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, "permanent", None,
     "more than the 1 h cap"),
    ("telegram", 403, {"ok": False, "error_code": 403,
                       "description": "Forbidden: the group chat was deleted"}, {},
     "permanent", None, "group chat was deleted"),
    ("telegram", 400, {"ok": False, "error_code": 400,
                       "description": "Bad Request: group chat was upgraded to a supergroup chat",
                       "parameters": {"migrate_to_chat_id": -1001}}, {},
     "permanent", None, "now chat_id -1001"),
    ("slack", 200, "invalid_token", {}, "permanent", None, "invalid_token"),  # 200 but not ok
    ("slack", 404, "channel_not_found", {}, "permanent", None, "channel_not_found"),
    ("discord", 429, {"message": "You are being rate limited.", "retry_after": 1.5},
     {"Retry-After": "2"}, "transient", 1.5, "rate limited"),  # the exact JSON value wins
    ("webhook", 503, "busy", {"Retry-After": "7"}, "transient", 7.0, "HTTP 503"),
    ("webhook", 408, "", {}, "transient", None, "HTTP 408"),
    ("webhook", 400, "bad", {}, "permanent", None, "HTTP 400"),
]


@pytest.mark.parametrize(("platform", "status", "body", "headers", "outcome", "retry_after",
                          "reason"), ANSWERS)
def test_platform_answers_are_classified(sim, session, platform, status, body, headers, outcome,
                                         retry_after, reason):
    robot = robot_for(sim, platform).answer_next(status, body, headers)
    result = first(channel_for(robot.config(), session))
    assert (result.outcome, result.retry_after) == (outcome, retry_after), result
    assert reason in result.reason


@pytest.mark.parametrize("platform", ["dingtalk", "feishu"])
def test_signature_is_made_at_send_time(sim, session, platform):
    robot = robot_for(sim, platform)
    channel = channel_for(robot.config(), session)
    [part] = channel.render("通知：明天停水", title="停水")
    with time_machine.travel(time.time() + 2 * 3600):  # a retry hours after rendering
        assert channel.send(part).ok
        now = time.time()
    received = robot.messages[0]
    if platform == "dingtalk":  # milliseconds, in the query string
        assert abs(int(received.query["timestamp"]) - now * 1000) < 60_000
    else:  # seconds, as a string, in the body
        stamp = received.payload["timestamp"]
        assert isinstance(stamp, str) and abs(int(stamp) - now) < 60


@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
@pytest.mark.parametrize("mode", ["5xx", "reset", "slow"])
def test_server_and_network_failures_are_transient(sim, session, platform, mode):
    robot = robot_for(sim, platform)
    robot.fail_next(mode)
    channel = channel_for(robot.config(), session)
    result = first(channel)
    assert result.outcome == "transient", result
    expected = {"5xx": "502", "reset": "connection", "slow": "read timeout"}[mode]
    assert expected in result.reason
    assert first(channel).outcome == "sent"  # the next request goes through


@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
def test_long_message_is_split_into_parts_the_platform_accepts(sim, session, platform):
    robot = robot_for(sim, platform, limits=[])
    paragraph = "各位居民：因管网维修，明天上午九点至下午五点停水，请提前储水。" * 8
    text = "\n\n".join([paragraph] * 100)  # ~75 KB of Chinese text
    channel = channel_for(robot.config(), session)
    parts = channel.render(text, title="停水通知")
    assert len(parts) > 1
    assert all(p.size <= p.limit for p in parts)
    results = [channel.send(p) for p in parts]
    assert {r.outcome for r in results} == {"sent"}, results
    n = len(parts)
    if platform == "webhook":  # the number travels in fields, not in the text
        numbers = [(m.payload["part"], m.payload["parts"]) for m in robot.messages]
        assert numbers == [(i, n) for i in range(1, n + 1)]
        return
    assert [t.count(f"/{n})") for t in robot.texts] == [1] * n
    assert f"(1/{n})" in robot.texts[0] and f"({n}/{n})" in robot.texts[-1]


# -- sizes as each platform counts --------------------------------------------------


def test_wecom_6000_byte_chinese_message_is_two_parts(sim, session):
    robot = sim.add_robot("wecom")
    text = "\n\n".join(["社区通知内容" * 50] * 7)  # 6,300+ bytes in UTF-8
    assert len(text.encode()) > 6000
    channel = channel_for(robot.config(), session)
    parts = channel.render(text, title="")
    assert len(parts) == 2
    assert [p.text.split("\n")[0] for p in parts] == ["(1/2)", "(2/2)"]
    assert all(len(p.payload["markdown"]["content"].encode()) <= 4096 for p in parts)
    assert all(p.size <= 4096 and p.limit == 4096 for p in parts)
    assert [r.outcome for r in (channel.send(p) for p in parts)] == ["sent", "sent"]


def test_wecom_text_format_counts_2048_bytes_and_mentions_in_first_part(sim, session):
    robot = sim.add_robot("wecom")
    channel = channel_for(robot.config(format="text"), session)
    parts = channel.render("\n\n".join(["停水" * 200] * 3), title="t", mention_all=True)
    assert len(parts) == 3  # 1,200-byte paragraphs: two never fit in 2,048 bytes
    assert all(p.size <= 2048 for p in parts)
    assert parts[0].payload["text"]["mentioned_list"] == ["@all"]
    assert "mentioned_list" not in parts[1].payload["text"]
    assert all(channel.send(p).ok for p in parts)


def test_telegram_counts_visible_characters(sim, session):
    robot = robot_for(sim, "telegram", limits=[])
    channel = channel_for(robot.config(), session)
    fits = "汉" * 4000 + "<&>" * 32  # 4096 characters, 12,000+ bytes, 4,256 HTML characters
    parts = channel.render(fits, title="")
    assert len(parts) == 1 and parts[0].size == 4096
    assert channel.send(parts[0]).ok
    assert len(channel.render(fits + "!", title="")) == 2


def test_discord_limit_is_2000_characters(sim, session):
    robot = robot_for(sim, "discord", limits=[])
    channel = channel_for(robot.config(), session)
    parts = channel.render("字" * 2500, title="")
    assert len(parts) == 2 and all(p.size <= 2000 for p in parts)
    assert all(channel.send(p).ok for p in parts)


def test_simulator_rejects_what_is_too_long(sim, session):
    robot = sim.add_robot("wecom")
    channel = channel_for(robot.config(), session)
    part = channel.render("短", title="")[0]
    part.payload["markdown"]["content"] = "字" * 2000  # 6,000 bytes, past the limit
    result = channel.send(part)
    assert result.outcome == "permanent" and result.code == "40058"


# -- platform specifics ---------------------------------------------------------------


def test_dingtalk_signing_test_vector():
    expected = "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D"
    assert dingtalk.sign("SECtest", 1700000000000) == expected


@pytest.mark.parametrize(("ts", "expected"), [
    (100, "jquNHnVOwmDRfw+vqTIrY5dooJAgi5EcRtLsQE4wfXg="),
    (1599360473, "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="),
])
def test_feishu_signing_test_vectors(ts, expected):
    assert feishu.sign("demo", ts) == expected


def test_webhook_signature_matches_documented_scheme(sim, session):
    robot = sim.add_robot("webhook", secret="s3cret-value")
    channel = channel_for(robot.config(), session, group="gulou-g01")
    assert channel.send(channel.render("**hi**", title="T", mention_all=True)[0]).ok
    received = robot.messages[0]
    body = received.payload
    assert body["group"] == "gulou-g01" and body["title"] == "T" and body["text"] == "**hi**"
    assert (body["part"], body["parts"], body["mention_all"]) == (1, 1, True)
    sent_at = datetime.fromisoformat(body["sent_at"])  # ISO 8601 with offset, inside the signature
    assert sent_at.utcoffset() is not None
    assert abs(sent_at.timestamp() - time.time()) < 60
    assert received.headers["X-Broadcaster-Signature"].startswith("sha256=")
    assert webhook.signature("k", b"{}") == (
        "sha256=" + hmac.new(b"k", b"{}", "sha256").hexdigest())


def test_dingtalk_stale_timestamp_is_refused(sim):
    robot = robot_for(sim, "dingtalk")
    stale = int((time.time() - 7200) * 1000)
    url = dingtalk.signed_url(robot.url, robot.secret, stale)
    body = {"msgtype": "text", "text": {"content": "通知"}}
    answer = requests.post(url, json=body, timeout=2).json()
    assert answer == {"errcode": 310000, "errmsg": "invalid timestamp"}


def test_dingtalk_keyword_and_title_and_at_all(sim, session):
    robot = robot_for(sim, "dingtalk")
    channel = channel_for(robot.config(), session)
    [part] = channel.render("# 明天停水\n\n请储水", title="", mention_all=True)
    assert part.payload["markdown"]["title"] == "明天停水"
    assert part.payload["at"] == {"isAtAll": True}
    assert "通知" in part.payload["markdown"]["text"]
    assert channel.send(part).ok
    # without the keyword the platform refuses, permanently
    no_keyword = channel_for({**robot.config(), "keyword": None}, session)
    result = send_all(no_keyword, "请储水", title="停水")[0]
    assert result.outcome == "permanent" and "keywords not in content" in result.reason


def test_dingtalk_multi_part_titles_are_numbered(sim, session):
    channel = channel_for(robot_for(sim, "dingtalk").config(), session)
    parts = channel.render("\n\n".join(["停水" * 2000] * 3), title="停水")
    assert [p.payload["markdown"]["title"] for p in parts][:2] == [
        f"停水 (1/{len(parts)})", f"停水 (2/{len(parts)})"]
    assert all(len(json.dumps(p.payload, ensure_ascii=False).encode()) <= 20_000 for p in parts)


def test_feishu_card_shape_and_mention(sim, session):
    robot = robot_for(sim, "feishu")
    channel = channel_for(robot.config(), session)
    [part] = channel.render("# 标题\n\n**正文**", title="社区通知", mention_all=True)
    card = part.payload["card"]
    assert part.payload["msg_type"] == "interactive"
    assert card["header"]["title"] == {"tag": "plain_text", "content": "社区通知"}
    assert card["elements"][0]["text"]["tag"] == "lark_md"
    assert card["elements"][0]["text"]["content"].startswith("<at id=all></at> **标题**")
    assert channel.send(part).ok
    assert "timestamp" in robot.messages[0].payload and "sign" in robot.messages[0].payload


def test_lark_is_registered_with_the_same_adapter(sim, session):
    robot = sim.add_robot("feishu")
    channel = channel_for({**robot.config(), "type": "lark"}, session)
    assert channel.type_name == "lark"
    assert first(channel).ok


def test_wecom_markdown_mention_all_adds_a_text_part(sim, session):
    robot = sim.add_robot("wecom")
    channel = channel_for(robot.config(), session)
    parts = channel.render("**停水**", title="停水通知", mention_all=True)
    assert [p.payload["msgtype"] for p in parts] == ["markdown", "text"]
    assert parts[1].payload["text"]["mentioned_list"] == ["@all"]
    assert all(channel.send(p).ok for p in parts)


@pytest.mark.parametrize(("options", "expected"), [
    ({"kicked": {"-100200"}}, "bot was kicked"),
    ({"chats": {"-100999"}}, "chat not found"),
])
def test_telegram_permanent_chat_errors(sim, session, options, expected):
    robot = sim.add_robot("telegram", **options)
    result = first(channel_for(robot.config(chat_id="-100200"), session))
    assert result.outcome == "permanent" and expected in result.reason


def test_telegram_broken_markup_is_refused_by_the_simulator(sim, session):
    robot = robot_for(sim, "telegram")
    channel = channel_for(robot.config(), session)
    part = channel.render("ok", title="")[0]
    part.payload["text"] = "<b>unclosed"
    result = channel.send(part)
    assert result.outcome == "permanent" and "can't parse entities" in result.reason


def test_telegram_request_shape(sim, session):
    robot = robot_for(sim, "telegram")
    channel = channel_for(robot.config(), session)
    assert first(channel, "见 https://example.org").ok
    payload = robot.messages[0].payload
    assert payload["parse_mode"] == "HTML"
    assert payload["link_preview_options"] == {"is_disabled": True}
    assert str(payload["chat_id"]) == "-100200"


def test_telegram_mention_all_is_a_no_op(sim, session):
    channel = channel_for(robot_for(sim, "telegram").config(), session)
    assert channel.render("x", title="", mention_all=True)[0].text == "x"


def test_slack_and_discord_mentions(sim, session):
    slack = channel_for(sim.add_robot("slack").config(), session)
    assert slack.render("hi", title="", mention_all=True)[0].payload["text"] == "<!channel> hi"
    discord = channel_for(sim.add_robot("discord").config(), session)
    quiet, loud = (discord.render("# hi", title="", mention_all=m)[0].payload
                   for m in (False, True))
    assert quiet["allowed_mentions"] == {"parse": []}
    assert loud["allowed_mentions"] == {"parse": ["everyone"]}
    assert loud["content"] == "@everyone\n# hi"


def test_unreachable_host_is_transient(session):
    cfg = {"type": "slack", "url": "http://127.0.0.1:9/services/T/B/closed-port-secret"}
    channel = channel_for(cfg, session)
    result = first(channel, "hi")
    assert result.outcome == "transient"
    assert "closed-port-secret" not in result.reason


# -- declarations ------------------------------------------------------------------------


def test_rate_limit_keys_are_per_robot_and_secret_free(sim, session):
    limits = {}
    for platform in HTTP_PLATFORMS:
        robot, other = robot_for(sim, platform), robot_for(sim, platform)
        channel = channel_for(robot.config(), session)
        keys = channel.rate_limits()
        for key, _ in keys:
            assert robot.key not in key and "sim" not in key
        assert len({key for key, _ in keys}) == len(keys)  # each limit counts on its own
        other_keys = {key for key, _ in channel_for(other.config(), session).rate_limits()}
        assert not other_keys & {key for key, _ in keys}, f"{platform}: robots share a key"
        limits[platform] = [(lim.count, lim.per_seconds) for _, lim in keys]
    assert limits == {
        "wecom": [(20, 60)], "dingtalk": [(20, 60)], "feishu": [(5, 1), (100, 60)],
        "telegram": [(20, 60), (30, 1)], "slack": [(1, 1)], "discord": [(5, 2)], "webhook": [],
    }


def test_same_key_shares_the_rate_limit_key(session):
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=shared-key-123"
    a = channel_for({"type": "wecom", "url": url}, session, group="a")
    b = channel_for({"type": "wecom", "url": url, "format": "text"}, session, group="b")
    assert a.rate_limits()[0][0] == b.rate_limits()[0][0]


def test_telegram_chats_of_one_bot_share_only_the_per_bot_limit(session):
    bot = {"type": "telegram", "token": "123456:AAsharedtoken"}
    one = channel_for({**bot, "chat_id": -1001}, session).rate_limits()
    two = channel_for({**bot, "chat_id": -1002}, session).rate_limits()
    assert one[0][0] != two[0][0]  # ~20 a minute per group
    assert one[1] == two[1]        # ~30 a second for the whole bot


@pytest.mark.parametrize("url", [
    "http://example.com/hook", "ftp://127.0.0.1/x", "https://", "not a url",
])
def test_url_policy_rejects(url):
    with pytest.raises(ValueError):
        check_url(url)


@pytest.mark.parametrize("url", [
    "https://example.com/hook", "http://127.0.0.1:8080/x", "http://localhost/x",
])
def test_url_policy_accepts(url):
    assert check_url(url) == url


def test_config_errors_never_show_the_url():
    cls = channels.get("wecom")
    with pytest.raises(Exception) as info:
        cls.Config.model_validate({"type": "wecom", "url": "http://evil.example/x?key=TOPSECRET"})
    assert "TOPSECRET" not in str(info.value)
    with pytest.raises(Exception, match="key="):
        cls.Config.model_validate({"type": "wecom", "url": "https://q.example/send?nokey=1"})


def test_secret_fields():
    cfg = channels.get("dingtalk").Config(url="https://oapi.dingtalk.com/robot/send?access_token=t",
                                          secret="SECx", keyword="通知")
    assert sorted(cfg.secrets()) == ["SECx", "https://oapi.dingtalk.com/robot/send?access_token=t"]
    tg = channels.get("telegram").Config(token="123:abc", chat_id=-100)
    assert tg.secrets() == ["123:abc"]


@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3.0), ("1.5", 1.5), ("", None), (None, None), ("soon", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_future():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10.0


# -- file channel --------------------------------------------------------------------------


def test_file_channel_appends_entries(tmp_path):
    target = tmp_path / "out" / "nested"
    channel = channel_for({"type": "file", "path": str(target)}, None, group="gulou-g01")
    for text in ("# 第一条", "第二条"):
        [part] = channel.render(text, title="标题", mention_all=text == "第二条")
        assert channel.send(part).ok
    path = target / "gulou-g01.md"
    content = path.read_text()
    assert content.count("---\n<!-- ") == 2
    assert "# 第一条" in content and "第二条" in content and '"mention_all": true' in content
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_channel_unwritable_is_permanent(tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    channel = channel_for({"type": "file", "path": str(blocker)}, None, group="g")
    result = channel.send(channel.render("x", title="")[0])
    assert result.outcome == "permanent" and "cannot write" in result.reason


# -- the simulator itself ----------------------------------------------------------------


def test_simulator_serves_64_concurrent_senders(session):
    with PlatformSimulator(latency=0.05) as server:
        robots = [server.add_robot("wecom") for _ in range(64)]
        chans = [channel_for(r.config(), session, group=f"g{i}") for i, r in enumerate(robots)]
        start = time.monotonic()
        with ThreadPoolExecutor(64) as pool:
            results = list(pool.map(lambda c: [first(c).outcome for _ in range(3)], chans))
        elapsed = time.monotonic() - start
    assert all(r == ["sent"] * 3 for r in results)
    assert server.stats()["total"] == 192
    assert elapsed < 3.0  # 3 rounds of 50 ms in parallel, not 192 x 50 ms


def test_simulator_runs_standalone():
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulator", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        made = requests.post(f"{base}/_sim/robots", json={"platform": "slack", "key": "T1/B1/X1"},
                             timeout=2).json()
        assert made["config"]["url"] == f"{base}/services/T1/B1/X1"
        assert requests.post(made["config"]["url"], json={"text": "hi"}, timeout=2).text == "ok"
        # unknown keys are registered on first use in standalone mode
        assert requests.post(f"{base}/cgi-bin/webhook/send?key=k", timeout=2, json={
            "msgtype": "text", "text": {"content": "hi"}}).json()["errcode"] == 0
        stats = requests.get(f"{base}/_sim/stats", timeout=2).json()
        assert stats == {"robots": {"slack:T1/B1/X1": 1, "wecom:k": 1}, "total": 2}
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
