"""The one HTTP client (broadcaster.net): URL policy, total deadline, redirects, addresses,
nothing from the environment. Every fault is injected on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from broadcaster import channels
from broadcaster.channels.http import check_url
from broadcaster.inbound.replies import reply_url_allowed
from broadcaster.net.client import USER_AGENT, HttpFailure, fetch_client, webhook_client
from broadcaster.net.urls import UrlRefused, address_allowed, check_fetch_url
from broadcaster.sources import SourceError, fetch_bytes
from tests.faulty_http import DeadServer, DripServer, Routes, timed

EVIL = "http://evil.example\\@127.0.0.1/cgi-bin/webhook/send?key=K"


# -- URLs ------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "why"), [
    (EVIL, "backslashes"),
    ("https://user:pw@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K", "credentials"),
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K K", "spaces"),
    ("http://example.com/hook", "must use https://"),
    ("http://127.0.0.1.evil.example/hook", "must use https://"),
    ("ftp://127.0.0.1/x", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("https://", "no host"),
])
def test_webhook_urls_refused_with_the_reason(url, why):
    with pytest.raises(UrlRefused, match=why) as info:
        check_url(url)
    assert "key=K" not in str(info.value) and "evil" not in str(info.value)


def test_the_evil_url_is_refused_in_groups_yaml_and_as_a_reply_route():
    cls = channels.get("wecom")
    with pytest.raises(Exception, match="backslashes") as info:
        cls.Config.model_validate({"type": "wecom", "url": EVIL})
    assert "key=K" not in str(info.value)
    assert not reply_url_allowed("dingtalk_session", EVIL)
    assert not reply_url_allowed("dingtalk_session", "http://u:p@127.0.0.1:9/robot")


@pytest.mark.parametrize("url", ["https://example.com/hook", "http://127.0.0.1:8080/x",
                                 "http://localhost/x", "http://[::1]:9/x"])
def test_webhook_urls_accepted_as_the_client_sends_them(url):
    assert check_url(url) == url


def test_fetch_urls_are_http_or_https_without_credentials():
    assert check_fetch_url("http://example.com/rss.xml").host == "example.com"
    for url in ("ftp://example.com/x", "https://a:b@example.com/x", "http://x\\@127.0.0.1/"):
        with pytest.raises(UrlRefused):
            check_fetch_url(url)


@pytest.mark.parametrize(("address", "kind"), [
    ("10.0.0.1", "private"), ("192.168.1.1", "private"), ("172.16.0.5", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fc00::1", "private"),
    ("::ffff:192.168.1.1", "private"), ("127.0.0.1", "loopback"), ("0.0.0.0", "private"),
])
def test_private_and_link_local_addresses_need_allow_private_feeds(address, kind):
    why = address_allowed(address, loopback_named=False, allow_private=False)
    assert why and kind in why and "allow_private_feeds" in why
    assert address_allowed(address, loopback_named=False, allow_private=True) is None
    assert address_allowed("93.184.216.34", loopback_named=False, allow_private=False) is None
    assert address_allowed("127.0.0.1", loopback_named=True, allow_private=False) is None


# -- the client --------------------------------------------------------------------------

def test_a_drip_fed_answer_is_cut_at_the_total_deadline():
    """One byte every 0.3 s never trips a 1 s read timeout; the 1.5 s deadline ends it."""
    with DripServer(interval=0.3) as drip, webhook_client() as client:
        out, took = timed(lambda: client.post(f"{drip.url}/hook", data=b"{}",
                                              timeout=(1.0, 1.0), deadline=1.5))
    assert isinstance(out, HttpFailure) and "1.5 s deadline" in out.reason, out
    assert 1.4 < took < 2.2, took


def test_a_server_that_never_answers_is_cut_at_the_deadline_not_the_read_timeout():
    with DeadServer() as dead, webhook_client() as client:
        out, took = timed(lambda: client.post(f"{dead.url}/hook", data=b"{}",
                                              timeout=(1.0, 30.0), deadline=1.0))
    assert isinstance(out, HttpFailure) and "deadline" in out.reason
    assert took < 1.6, took


def test_the_channel_reports_a_deadline_as_transient_maybe_delivered():
    with DripServer(interval=0.3) as drip:
        cls = channels.get("webhook")
        ch = cls(cls.Config.model_validate({"type": "webhook", "url": f"{drip.url}/hook/x"}),
                 "g1", timeout=(1.0, 1.0), deadline=1.0)
        result, took = timed(lambda: ch.send(ch.render("通知", title="通知")[0]))
    assert result.outcome == "transient"
    assert "1 s deadline (the message may have been delivered)" in result.reason
    assert took < 1.6


def test_webhooks_follow_no_redirect_and_send_one_user_agent():
    with Routes() as srv:
        srv.routes["/hook"] = lambda h: (302, {"Location": "/elsewhere"}, b"")
        with webhook_client() as client:
            resp = client.post(f"{srv.url}/hook", data=b"{}")
    assert resp.status_code == 302
    assert [path for path, _ in srv.hits] == ["/hook"]
    assert srv.hits[0][1]["User-Agent"] == USER_AGENT


def test_a_cookie_one_robot_sets_never_goes_to_another():
    """No cookie jar: robots share hosts, and a cookie set in one answer stays with it."""
    with Routes() as srv, webhook_client() as client:
        srv.routes["/a"] = lambda h: (200, {"Set-Cookie": "session=ROBOT-A; Path=/"}, b"{}")
        srv.routes["/b"] = lambda h: (200, {}, b"{}")
        first_answer = client.post(f"{srv.url}/a", data=b"{}")
        assert (first_answer.status_code, first_answer.reason) == (200, "OK")
        assert first_answer.url == f"{srv.url}/a" and first_answer.json() == {}
        assert first_answer.headers["set-cookie"].startswith("session=ROBOT-A")  # any case
        assert not first_answer.cookies     # kept nowhere
        assert client.post(f"{srv.url}/b?q=1", data=b"{}", headers={"X-Sign": "s"}).json() == {}
    (_, first), (path, second) = srv.hits
    assert "Cookie" not in second and path == "/b?q=1" and second["X-Sign"] == "s"
    assert second["User-Agent"] == USER_AGENT == first["User-Agent"]


def test_no_proxy_or_netrc_from_the_environment(monkeypatch, tmp_path):
    """A proxy and .netrc in the environment are ignored: the request goes straight out."""
    with Routes() as proxy, Routes() as target:
        proxy.routes["/hook"] = lambda h: (200, {}, b"via proxy")
        target.routes["/hook"] = lambda h: (200, {}, b"direct")
        (tmp_path / ".netrc").write_text("machine 127.0.0.1 login u password NETRCSECRET\n")
        monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with webhook_client() as client:
            assert client.post(f"{target.url}/hook", data=b"{}").text == "direct"
        with fetch_client() as client:
            assert client.get(f"{target.url}/hook").text == "direct"
    assert proxy.hits == []
    assert all("Authorization" not in headers for _, headers in target.hits)


# -- feeds: redirects and addresses -------------------------------------------------------

def test_feed_redirects_are_followed_bounded_and_rechecked(tmp_path):
    with Routes() as srv:
        srv.routes["/a"] = lambda h: (301, {"Location": "/b"}, b"")
        srv.routes["/b"] = lambda h: (200, {}, b"<rss/>")
        srv.routes["/loop"] = lambda h: (302, {"Location": "/loop"}, b"")
        srv.routes["/ftp"] = lambda h: (302, {"Location": "ftp://127.0.0.1/x"}, b"")
        srv.routes["/creds"] = lambda h: (302, {"Location": f"http://u:p@127.0.0.1:{srv.port}/b"},
                                          b"")
        assert fetch_bytes(f"{srv.url}/a", root=tmp_path).body == b"<rss/>"
        with pytest.raises(SourceError, match="more than 5 redirects"):
            fetch_bytes(f"{srv.url}/loop", root=tmp_path)
        assert len([p for p, _ in srv.hits if p == "/loop"]) == 6
        with pytest.raises(SourceError, match="URL refused: must be an http"):
            fetch_bytes(f"{srv.url}/ftp", root=tmp_path)
        with pytest.raises(SourceError, match="URL refused: must not contain credentials"):
            fetch_bytes(f"{srv.url}/creds", root=tmp_path)


@pytest.fixture
def public_name_on_loopback(monkeypatch):
    """``feeds.example`` resolves to 127.0.0.1: a public name pointing inside (DNS is the only
    part mocked; every connection still goes to loopback)."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        return real("127.0.0.1" if host == "feeds.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_a_public_name_resolving_inside_is_refused_unless_allowed(tmp_path,
                                                                  public_name_on_loopback):
    with Routes() as srv:
        srv.routes["/rss"] = lambda h: (200, {}, b"<rss/>")
        srv.routes["/jump"] = lambda h: (302, {"Location": f"http://feeds.example:{srv.port}/rss"},
                                         b"")
        url = f"http://feeds.example:{srv.port}/rss"
        with pytest.raises(SourceError, match=r"loopback address 127\.0\.0\.1.*allow_private_feeds"):
            fetch_bytes(url, root=tmp_path)
        # a loopback feed may not redirect to a name that resolves inside either
        with pytest.raises(SourceError, match="loopback address"):
            fetch_bytes(f"{srv.url}/jump", root=tmp_path)
        assert [p for p, _ in srv.hits] == ["/jump"]          # nothing reached /rss
        with fetch_client(allow_private=True) as client:
            assert fetch_bytes(url, root=tmp_path, session=client).body == b"<rss/>"


def test_file_feeds_only_inside_the_root(tmp_path):
    root = tmp_path / "site"
    (root / "feeds").mkdir(parents=True)
    (root / "feeds" / "demo.xml").write_bytes(b"<rss/>")
    (tmp_path / "secret.txt").write_text("no")
    assert fetch_bytes("feeds/demo.xml", root=root).body == b"<rss/>"
    assert fetch_bytes(f"file://{root}/feeds/demo.xml", root=root).body == b"<rss/>"
    for url in ("../secret.txt", f"file://{tmp_path}/secret.txt", "file:/etc/hostname",
                str(Path("/etc/hostname"))):
        with pytest.raises(SourceError, match="outside the project directory"):
            fetch_bytes(url, root=root)


def test_a_drip_fed_feed_ends_at_the_fetch_deadline(tmp_path, monkeypatch):
    import broadcaster.sources as sources

    monkeypatch.setattr(sources, "DEADLINE", 1.5)
    with DripServer(interval=0.3) as drip:
        out, took = timed(lambda: fetch_bytes(f"{drip.url}/rss.xml", root=tmp_path,
                                              timeout=(1.0, 1.0)))
    assert isinstance(out, SourceError) and "within the 1.5 s deadline" in str(out), out
    assert took < 2.2, took


def test_feed_urls_are_checked_at_load_time_with_their_line(tmp_path):
    from broadcaster.config.feeds import load_feeds
    from broadcaster.errors import ConfigError

    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "news.yaml").write_text(
        "news:\n"
        "  - {id: a, url: 'http://evil.example\\@127.0.0.1/rss', to: [all]}\n"
        "  - {id: b, url: 'https://user:pw@gov.example/rss', to: [all]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_feeds(tmp_path)
    text = "\n".join(f"{p.file}:{p.line}: {p.message}" for p in info.value.problems)
    assert "news.yaml:2:" in text and "backslashes" in text
    assert "news.yaml:3:" in text and "credentials" in text
    assert "pw" not in text.replace("news.yaml", "")


RSS = (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
       b"<item><title>a</title><guid>1</guid><link>https://gov.example/1</link></item>"
       b"</channel></rss>")


@pytest.mark.parametrize("allowed", [False, True])
def test_a_job_reaches_an_intranet_feed_only_with_allow_private_feeds(
        root, tmp_path, public_name_on_loopback, allowed):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from broadcaster.app import App
    from broadcaster.schedule import scheduler
    from tests.conftest import write_groups

    with Routes() as srv:
        srv.routes["/rss"] = lambda h: (200, {"Content-Type": "application/rss+xml"}, RSS)
        write_groups(root, f"defaults: {{allow_private_feeds: {str(allowed).lower()}}}\n"
                           "groups:\n  - {id: g1, name: 一, channel: {type: file, path: o}}\n")
        (root / "feeds" / "news.yaml").write_text(
            f"news:\n  - {{id: intranet, url: 'http://feeds.example:{srv.port}/rss', "
            "to: [all]}\n", encoding="utf-8")
        (root / "schedules" / "s.yaml").write_text(
            "jobs:\n  - {id: news, cron: '0 8 * * *', content: news, to: [all]}\n",
            encoding="utf-8")
        app = App(root, tmp_path / "state")
        run = scheduler.try_job(app, "news",
                                datetime(2026, 11, 22, 8, tzinfo=ZoneInfo("Asia/Shanghai")))
    fetched = [p for p, _ in srv.hits if p == "/rss"]
    if allowed:
        assert fetched == ["/rss"]
    else:
        assert fetched == []
        assert any("loopback address 127.0.0.1 (set defaults.allow_private_feeds" in p
                   for p in run.problems), run.problems


def test_every_outbound_request_goes_through_the_one_client():
    """No module outside broadcaster/net/ makes its own HTTP session or request."""
    import re

    from tests.conftest import REPO

    own = re.compile(r"requests\.(Session|get|post|put|request)\(|urlopen\(|http\.client|httpx")
    package = REPO / "broadcaster"
    offenders = [str(p.relative_to(REPO)) for p in package.rglob("*.py")
                 if p.parent != package / "net" and own.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
