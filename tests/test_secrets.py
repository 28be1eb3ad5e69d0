"""Secrets never show: redacted by their configured values, whatever their length or encoding.

The reported case: a generic webhook whose path token is shorter than 16
characters, echoed back by the endpoint in an error body, reached the
archive and was shown by ``status``, ``log`` and ``report``.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import yaml

from broadcaster.redact import Redactor, secret_forms
from tests.conftest import cli
from tests.simulator import PlatformSimulator

TOKEN = "hk7Qz2"            # 6 characters: the SPEC's shortest secret URL piece
SIGNING = "s+g/1"           # a short signing secret, echoed URL-encoded


@pytest.fixture
def sim():
    with PlatformSimulator() as s:
        yield s


def _state_text(root) -> str:
    """Every byte the state directory holds (archive, journal, history, caches...)."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace")
                     for p in (root / "var").rglob("*") if p.is_file())


@pytest.mark.parametrize("from_env", [False, True])
def test_an_echoed_short_path_token_never_reaches_the_archive_status_log_or_report(
        root, sim, from_env):
    robot = sim.add_robot("webhook", key=TOKEN, secret=SIGNING)
    robot.answer_next(403, f"hook {TOKEN} refused: signature for {quote(SIGNING, safe='')} "
                           f"does not match (url {robot.url})")
    env = {"HOOK_URL": robot.url, "HOOK_SECRET": SIGNING} if from_env else {}
    channel = {"type": "webhook", "url": "${HOOK_URL}", "secret": "${HOOK_SECRET}"} if from_env \
        else robot.config()
    doc = {"defaults": {"timezone": "Asia/Shanghai"},
           "groups": [{"id": "g1", "name": "一网格群", "tags": ["kind:grid"], "channel": channel}]}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    ann = cli(root, "announce", "停水通知", "--to", "all", "--json", env=env)
    assert ann.code == 0, ann.err
    ann_id = ann.json()["id"]
    run = cli(root, "run-once", "--json", env=env)
    assert run.json()["failed"] == 1, run.out + run.err
    outputs = [run.out + run.err]
    for args in (["status", "--json"], ["status"], ["log", "--json"], ["log"],
                 ["report", ann_id, "--json"], ["report", ann_id]):
        r = cli(root, *args, env=env)
        assert r.code == 0, (args, r.err)
        outputs.append(r.out + r.err)
    shown = "\n".join(outputs)
    assert "refused: signature" in shown        # the platform's words are kept...
    assert "hook *** refused" in shown           # ...without the token
    everywhere = shown + _state_text(root)
    for secret in (TOKEN, SIGNING, quote(SIGNING, safe=""), robot.url):
        assert secret not in everywhere, secret


def test_every_form_of_a_secret_is_masked():
    url = "https://hooks.example.org/broadcaster/in/Tk9zQp?sig=abc%2Fdef"
    r = Redactor([url, "x1", "AES+key/=="])
    assert r(f"echo {url}") == "echo ***"
    assert r(f"quoted {quote(url, safe='')}") == "quoted ***"
    assert r("path Tk9zQp and value abc/def") == "path *** and value ***"
    assert r("AES%2Bkey%2F%3D%3D / AES+key/== / AES%2Bkey/%3D%3D") == "*** / *** / ***"
    assert r("x1 any length") == "*** any length"
    # the platforms' fixed route words and this program's own words are not secrets
    assert r("webhook broadcaster cgi-bin in") == "webhook broadcaster cgi-bin in"


def test_url_pieces_follow_the_spec_six_characters_or_more():
    forms = secret_forms("https://example.org/a/abcde/abcdef?k=12345&t=123456")
    assert {"abcdef", "123456"} <= forms
    assert not {"a", "abcde", "12345"} & forms


def test_redacting_with_thousands_of_robots_costs_a_lookup_per_character():
    urls = [f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=key-{i:05d}-abcdef" for i in range(5000)]
    r = Redactor(urls)
    assert r("send failed for key-04321-abcdef: 93000 invalid webhook url") == \
        "send failed for ***: 93000 invalid webhook url"
    assert len(r._present("x" * 200)) == 0


def test_inbound_credentials_and_the_dashboard_token_are_redacted(root):
    from broadcaster.app import App

    (root / "groups.yaml").write_text(yaml.safe_dump({
        "defaults": {"timezone": "Asia/Shanghai", "dashboard_token": "dash-token-0123456789"},
        "groups": [{"id": "g1", "name": "一网格群", "tags": ["kind:grid"],
                    "channel": {"type": "file", "path": "out"}}],
        "inbound": {"wecom": {"token": "wtk", "encoding_aes_key": "A" * 43},
                    "feishu": {"verification_token": "vt-1", "encrypt_key": "ek-2",
                               "app_id": "cli_x", "app_secret": "as-3"}},
    }, allow_unicode=True), encoding="utf-8")
    app = App(root)
    app.groups  # noqa: B018 - loading the config registers its secrets
    for secret in ("wtk", "A" * 43, "vt-1", "ek-2", "as-3", "dash-token-0123456789"):
        assert app.redact(f"value {secret} end") == "value *** end", secret
