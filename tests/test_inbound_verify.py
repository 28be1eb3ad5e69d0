"""Every platform's verification: the official vectors of PLATFORMS.md, then the bad cases
(wrong signature, stale timestamp, replayed id, oversized body) against the real server."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from broadcaster.app import App
from broadcaster.config.inbound import FeishuInbound, WeComInbound
from broadcaster.inbound import crypto, journal
from broadcaster.inbound.crypto import Refused
from broadcaster.inbound.platforms import RawRequest, dingtalk, feishu, wecom
from broadcaster.inbound.server import MAX_BODY, ServerThread
from tests.inbound_world import CHATS, SECRETS, served_world
from tests.simulator_inbound import InboundClient

S = SECRETS
TZ = ZoneInfo("Asia/Shanghai")
WECOM_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_ECHO = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
WECOM_POST = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
    "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGU"
    "callcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDY"
    "A5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
    b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
    b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")


# -- the official vectors ------------------------------------------------------------------

def test_dingtalk_vector():
    assert crypto.dingtalk_sign("testsecret", "1577262236757") == "J+BiSbR3jshnMXl7lBt86VHVkxu/BShC2VzSWYBVCKE="
    crypto.check_dingtalk("testsecret", "1577262236757", "J+BiSbR3jshnMXl7lBt86VHVkxu/BShC2VzSWYBVCKE=",
                          1577262236.757)


def test_feishu_vector():
    assert crypto.feishu_decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == "hello world"
    with pytest.raises(Refused):
        crypto.feishu_decrypt("other key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=")


def test_wecom_get_vector_answers_the_bare_echostr():
    assert crypto.wecom_signature("QDG6eK", "1409659589", "263014780", WECOM_ECHO) == \
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    cfg = WeComInbound(token="QDG6eK", encoding_aes_key=WECOM_KEY, receive_id="wx5823bf96d3bd56c7")
    req = RawRequest("GET", {}, {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                                 "timestamp": "1409659589", "nonce": "263014780", "echostr": WECOM_ECHO})
    parsed = wecom.parse(req, cfg, datetime.now(TZ))
    assert parsed.answer == "1616140317555161061" and parsed.content_type == "text/plain"


def test_wecom_post_vector_pads_to_32_bytes():
    assert crypto.wecom_signature("QDG6eK", "1409659813", "1372623149", WECOM_POST) == \
        "477715d11cdb4164915debcba66cb864d751f3e6"
    plain = crypto.wecom_decrypt(WECOM_KEY, WECOM_POST, "wx5823bf96d3bd56c7")
    assert "<Content><![CDATA[hello]]></Content>" in plain   # pad byte 30: a 16-byte unpad fails
    with pytest.raises(Refused):
        crypto.wecom_decrypt(WECOM_KEY, WECOM_POST, "wx-another-corp")


def test_slack_vector():
    assert crypto.slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", SLACK_BODY) == \
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    with pytest.raises(Refused, match="too far"):   # the vector is from 2018: stale today
        crypto.check_slack("8f742231b10e8888abcd99yyyzzz85a5", "1531420618",
                           "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                           SLACK_BODY, time.time())


def test_generic_signature_matches_the_spec():
    import hashlib
    import hmac

    body = b'{"chat":"x"}'
    want = "sha256=" + hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert crypto.generic_signature("s3cret", "1700000000", body) == want


# -- parse-level refusals --------------------------------------------------------------

def test_dingtalk_refuses_wrong_sign_and_an_hour_of_skew():
    now = datetime.now(TZ)
    cfg = type("C", (), {"app_secret": "abc"})()
    ts = str(int(now.timestamp() * 1000))
    good = crypto.dingtalk_sign("abc", ts)
    body = json.dumps({"msgtype": "text", "text": {"content": "hi"}, "msgId": "1",
                       "conversationId": "c"}).encode()
    assert dingtalk.parse(RawRequest("POST", {"timestamp": ts, "sign": good}, {}, body), cfg, now).events
    with pytest.raises(Refused):
        dingtalk.parse(RawRequest("POST", {"timestamp": ts, "sign": crypto.dingtalk_sign("x", ts)}, {}, body),
                       cfg, now)
    old = str(int(now.timestamp() * 1000) - 3601 * 1000)
    with pytest.raises(Refused, match="timestamp"):
        dingtalk.parse(RawRequest("POST", {"timestamp": old, "sign": crypto.dingtalk_sign("abc", old)}, {}, body),
                       cfg, now)


def test_feishu_without_encrypt_key_checks_the_token():
    cfg = FeishuInbound(verification_token="tok")
    now = datetime.now(TZ)
    ok = RawRequest("POST", {}, {}, json.dumps({"type": "url_verification", "challenge": "c1",
                                                 "token": "tok"}).encode())
    assert feishu.parse(ok, cfg, now).answer == {"challenge": "c1"}
    bad = RawRequest("POST", {}, {}, json.dumps({"type": "url_verification", "challenge": "c1",
                                                  "token": "nope"}).encode())
    with pytest.raises(Refused):
        feishu.parse(bad, cfg, now)


# -- against the real server ---------------------------------------------------------------

@pytest.fixture
def served(root):
    with served_world(root) as parts:
        yield parts


def stored(app) -> list[dict]:
    return [r for r in journal.read(app.store) if r.get("type") in ("message", "join")]


def test_healthz(served):
    *_, server = served
    r = requests.get(f"{server.url}/healthz", timeout=5)
    assert (r.status_code, r.text) == (200, "ok")


@pytest.mark.parametrize("platform", ["dingtalk", "feishu", "wecom", "telegram", "slack", "generic"])
def test_wrong_signature_is_401_and_nothing_is_stored(served, platform):
    _, _, client, app, _ = served
    send = {
        "dingtalk": lambda: client.dingtalk(S["dingtalk"], CHATS["dingtalk"], "居住证", sign="AAAA"),
        "feishu": lambda: client.feishu(S["feishu_token"], S["feishu_key"], CHATS["feishu"], "居住证",
                                        signature="0" * 64),
        "wecom": lambda: client.wecom(S["wecom_token"], S["wecom_aes"], CHATS["wecom"], "居住证",
                                      signature="0" * 40),
        "telegram": lambda: client.telegram(S["telegram"], int(CHATS["telegram"]), "/居住证", secret="nope"),
        "slack": lambda: client.slack(S["slack"], CHATS["slack"], "居住证", signature="v0=" + "0" * 64),
        "generic": lambda: client.generic(S["generic"], CHATS["generic"], "居住证", signature="sha256=00"),
    }[platform]
    assert send().status_code == 401
    assert stored(app) == []


@pytest.mark.parametrize("platform", ["dingtalk", "slack", "generic"])
def test_stale_timestamp_is_401(served, platform):
    _, _, client, app, _ = served
    old = int(time.time()) - 2 * 3600
    r = {"dingtalk": lambda: client.dingtalk(S["dingtalk"], CHATS["dingtalk"], "居住证", ts_ms=old * 1000),
         "slack": lambda: client.slack_raw(S["slack"], b'{"type":"event_callback"}', ts=old),
         "generic": lambda: client.generic(S["generic"], CHATS["generic"], "居住证", ts=old)}[platform]()
    assert r.status_code == 401
    assert stored(app) == []


@pytest.mark.parametrize("platform", ["dingtalk", "feishu", "wecom", "telegram", "slack", "generic"])
def test_each_platform_stores_a_replayed_message_once(served, platform):
    _, _, client, app, _ = served
    send = {
        "dingtalk": lambda: client.dingtalk(S["dingtalk"], CHATS["dingtalk"], "你好", msg_id="dt-1"),
        "feishu": lambda: client.feishu(S["feishu_token"], S["feishu_key"], CHATS["feishu"], "你好",
                                        message_id="om_same"),
        "wecom": lambda: client.wecom(S["wecom_token"], S["wecom_aes"], CHATS["wecom"], "你好", msgid="wc-1"),
        "telegram": lambda: client.telegram(S["telegram"], int(CHATS["telegram"]), "/你好", message_id=7),
        "slack": lambda: client.slack(S["slack"], CHATS["slack"], "你好", ts="1700000000.000200"),
        "generic": lambda: client.generic(S["generic"], CHATS["generic"], "你好", message_id="g-1"),
    }[platform]
    assert [send().status_code for _ in range(3)] == [200, 200, 200]
    assert len(stored(app)) == 1


@pytest.mark.parametrize("platform", ["dingtalk", "feishu", "wecom", "telegram", "slack", "generic"])
def test_each_platform_refuses_an_oversized_body(served, platform):
    *_, app, server = served
    r = requests.post(f"{server.url}/inbound/{platform}", data=b"x" * (MAX_BODY + 1), timeout=10)
    assert r.status_code == 413
    assert stored(app) == []


def test_a_replayed_message_is_handled_once(served):
    _sim, w, client, app, _ = served
    for _ in range(3):
        assert client.generic(S["generic"], CHATS["generic"], "垃圾怎么分", message_id="same-1").status_code == 200
    deadline = time.monotonic() + 5
    while not w.robots["generic"].texts and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(stored(app)) == 1
    assert len(w.robots["generic"].texts) == 1


def test_slack_retries_are_deduplicated(served):
    _sim, _w, client, app, _ = served
    for retry in (None, 1, 2):
        r = client.slack(S["slack"], CHATS["slack"], "停水了", ts="1700000000.000100", event_id="Ev1",
                         retry_num=retry)
        assert r.status_code == 200
    time.sleep(1.0)
    assert len(stored(app)) == 1


def test_oversized_body_is_413_while_reading(served):
    _, _, client, app, server = served
    big = b"{" + b" " * (MAX_BODY + 10) + b"}"
    assert client.generic_raw(S["generic"], big).status_code == 413

    def chunks():   # no Content-Length: refused once 64 KiB have been read
        for _ in range(100):
            yield b" " * 4096

    r = requests.post(f"{server.url}/inbound/generic", data=chunks(), timeout=10,
                      headers={"X-Broadcaster-Timestamp": str(int(time.time())),
                               "X-Broadcaster-Signature": "sha256=00"})
    assert r.status_code == 413
    assert stored(app) == []


def test_unknown_chat_is_logged_and_ignored(served, caplog):
    _, _, client, app, _ = served
    with caplog.at_level(logging.INFO, logger="broadcaster.inbound"):
        assert client.generic(S["generic"], "nobody-claims-this", "居住证").status_code == 200
    assert any("inbound unknown generic:nobody-claims-this" in r.getMessage() for r in caplog.records)
    assert stored(app) == []


def test_challenges_and_wecom_url_verification(served):
    _, _, client, _, _ = served
    r = client.feishu_challenge(S["feishu_token"], S["feishu_key"], "ch-123")
    assert r.json() == {"challenge": "ch-123"}
    body = json.dumps({"type": "url_verification", "challenge": "sl-9", "token": "x"}).encode()
    assert client.slack_raw(S["slack"], body).json() == {"challenge": "sl-9"}
    r = client.wecom_verify(S["wecom_token"], S["wecom_aes"], "8848123456789")
    assert r.status_code == 200 and r.text == "8848123456789"     # bare body: no quotes, no newline
    assert client.wecom_verify(S["wecom_token"], S["wecom_aes"], "1", signature="0" * 40).status_code == 401


def test_joins_feed_the_welcome_batching(served):
    _, w, client, app, _ = served
    assert client.generic_join(S["generic"], CHATS["generic"], ["李师傅"]).status_code == 200
    assert client.telegram_join(S["telegram"], int(CHATS["telegram"]), ["Anna"]).status_code == 200
    assert client.feishu_join(S["feishu_token"], S["feishu_key"], CHATS["feishu"], ["赵阿姨"]).status_code == 200
    deadline = time.monotonic() + 5
    pending = {}
    while time.monotonic() < deadline and len(pending) < 3:
        pending = app.store.read_state("members").get("pending", {})
        time.sleep(0.05)
    assert pending[w.group_of["generic"]]["names"] == ["李师傅"]
    assert pending[w.group_of["telegram"]]["names"] == ["Anna"]
    assert pending[w.group_of["feishu"]]["names"] == ["赵阿姨"]


def test_secrets_never_show_in_the_logs(served, caplog):
    _, _, client, app, _ = served
    with caplog.at_level(logging.DEBUG):
        client.generic(S["generic"], CHATS["generic"], "居住证", signature="sha256=00")
        client.wecom(S["wecom_token"], S["wecom_aes"], CHATS["wecom"], "居住证", signature="0" * 40)
    text = "\n".join(app.redact(r.getMessage()) for r in caplog.records)
    for secret in SECRETS.values():
        assert secret not in text
    assert all(s in app.groups.secrets() for s in (S["wecom_aes"], S["feishu_key"], S["slack"]))


def test_dashboard_wants_the_token_and_counts_answers(root):
    with served_world(root) as (*_, server):
        assert requests.get(f"{server.url}/dashboard", timeout=5).status_code == 404
    text = (root / "groups.yaml").read_text(encoding="utf-8")
    (root / "groups.yaml").write_text(
        text.replace("defaults:\n", "defaults:\n  dashboard_token: dash-token-123456\n"), encoding="utf-8")
    # the robots are gone now: the answers stay queued, and the figures count them
    with ServerThread(App(root)) as server:
        client = InboundClient(server.url)
        client.generic(S["generic"], CHATS["generic"], "居住证怎么办")
        client.generic(S["generic"], CHATS["generic"], "明天几点开会")
        assert requests.get(f"{server.url}/dashboard", timeout=5).status_code == 401
        deadline = time.monotonic() + 5
        while True:
            r = requests.get(f"{server.url}/dashboard", timeout=10,
                             headers={"Authorization": "Bearer dash-token-123456"})
            if "明天几点开会" in r.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and "明天几点开会" in r.text
    from broadcaster.inbound import history

    now = datetime.now(TZ)
    figures = history.figures(App(root), now.replace(hour=0, minute=0), now)
    assert (figures["messages"], figures["answered"], figures["missed"]) == (2, 1, 1)
