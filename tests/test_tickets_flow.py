"""End to end on loopback platforms: a resident's message -> ticket -> the handler's robot ->
reminder -> morning digest -> overdue alert to the supervisor -> resolve -> the result in the
resident's group. Time is moved with time-machine; every pass is a real ``run-once``.

The first tests hand the resident's message to ``intake.open_from_message`` as the inbound
server does (an object with InboundMessage's attributes); the last goes through the real
server (``serve`` on loopback, a signed bridge request) from the complaint to its result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml

from broadcaster.app import App
from broadcaster.tickets.intake import open_from_message
from tests.conftest import REPO, cli
from tests.simulator import PlatformSimulator
from tests.tickets_helpers import Msg, write_tickets_root

TZ = ZoneInfo("Asia/Shanghai")
COMPLAINT = "3栋2单元楼道垃圾三天没清了，味道很大"
BRIDGE = "bridge-secret-0123456789abcdef"


def masked(first: str) -> str:
    return first + "＊"   # WeCom Markdown has no escapes: a literal star shows full-width


@pytest.fixture
def sim():
    with PlatformSimulator() as s:
        yield s


@pytest.fixture
def robots(sim, root):
    group = sim.add_robot("wecom")
    handler = sim.add_robot("dingtalk", secret="SEC-staff")
    supervisor = sim.add_robot("feishu", secret="fs-boss")
    write_tickets_root(root, group_channels={"hlz-g01": group.config()},
                       staff_channels={"wang-li": handler.config(),
                                       "zhang-hua": supervisor.config()})
    return group, handler, supervisor


def at(*args):
    return datetime(*args, tzinfo=TZ)


def run_once(root):
    r = cli(root, "run-once", "--json")
    assert r.code == 0, r.err
    return r.json()


def test_complaint_to_result_across_the_spring_festival(root, robots):
    group, handler, supervisor = robots
    # Friday 13 Feb 2026, 15:30: two working days run over 春节 (the 14th is a make-up workday)
    with time_machine.travel(at(2026, 2, 13, 15, 30), tick=True):
        ticket = open_from_message(App(root), Msg(COMPLAINT, received_at=at(2026, 2, 13, 15, 30)))
        assert ticket is not None and ticket.id == "GL-0213-0001"
        assert (ticket.status, ticket.staff, ticket.category) == ("assigned", "wang-li", "sanitation")
        assert ticket.deadline == at(2026, 2, 24, 15, 30)
        again = open_from_message(App(root), Msg(COMPLAINT, received_at=at(2026, 2, 13, 15, 30)))
        assert again.id == ticket.id                         # the platform retried: same ticket
        assert run_once(root)["sent"] == 2
    ack = group.texts[-1]
    assert ticket.id in ack and "卫生" in ack and masked("赵") in ack and masked("王") in ack
    assert "赵大爷" not in ack and "王丽" not in ack and "楼道" not in ack
    assert len(group.texts) == 1
    notice = handler.texts[-1]
    assert ticket.id in notice and COMPLAINT in notice and "赵大爷" in notice

    with time_machine.travel(at(2026, 2, 22, 10, 41), tick=True):   # just before 80 %
        run_once(root)
        assert len(handler.texts) == 1
    with time_machine.travel(at(2026, 2, 22, 10, 43), tick=True):
        run_once(root)
        run_once(root)
    assert len(handler.texts) == 2 and "快到期" in handler.texts[-1] and ticket.id in handler.texts[-1]

    with time_machine.travel(at(2026, 2, 24, 8, 31), tick=True):     # a working morning
        run_once(root)
        run_once(root)
    assert len(handler.texts) == 3
    assert "早上好" in handler.texts[-1] and ticket.id in handler.texts[-1]

    with time_machine.travel(at(2026, 2, 24, 15, 31), tick=True):
        listed = cli(root, "tickets", "list", "--overdue", "--json").json()
        assert [t["id"] for t in listed] == [ticket.id] and listed[0]["overdue"] is True
        run_once(root)
        run_once(root)
    assert len(supervisor.texts) == 1
    alert = supervisor.texts[0]
    assert "超过办理时限" in alert and "张华" in alert and "王丽" in alert
    assert f"工单已超时 {ticket.id}" in str(supervisor.messages[0].payload)   # the card's title
    assert len(handler.texts) == 3                                # no reminder after the alert

    with time_machine.travel(at(2026, 2, 24, 16, 0), tick=True):
        r = cli(root, "tickets", "accept", ticket.id, "--by", "wang-li")
        assert r.code == 0, r.err
        r = cli(root, "tickets", "resolve", ticket.id, "--result", "楼道垃圾已清运，已请物业每天清理",
                "--by", "wang-li", "--json")
        assert r.code == 0, r.err
        assert r.json()["overdue"] is False and r.json()["status"] == "resolved"
        run_once(root)
    result = group.texts[-1]
    assert len(group.texts) == 2 and ticket.id in result and "已办结" in result
    assert "楼道垃圾已清运" in result and masked("赵") in result
    assert "赵大爷" not in result and "三天没清" not in result
    history = cli(root, "tickets", "show", ticket.id, "--json").json()["history"]
    assert [(h["status"], h["by"]) for h in history] == [
        ("open", "resident"), ("assigned", "system"), ("accepted", "wang-li"),
        ("resolved", "wang-li")]


def test_what_opens_a_ticket_and_what_does_not(root, robots):
    app = App(root)
    assert open_from_message(app, Msg("今天天气不错")) is None
    assert open_from_message(app, Msg("垃圾没人清", is_bot=True)) is None
    assert open_from_message(app, Msg("垃圾没人清", group_id="nowhere")) is None
    urgent = open_from_message(app, Msg("楼道里有燃气味，垃圾也没清", message_id="m2"))
    assert urgent.category == "safety" and urgent.urgent is True
    uncovered = open_from_message(app, Msg("路灯坏了", group_id="volunteers", message_id="m3"))
    assert uncovered.staff == "zhang-hua"                          # the fallback
    (root / "tickets.yaml").unlink()
    assert open_from_message(App(root), Msg("垃圾没人清", message_id="m4")) is None


def test_names_and_text_cannot_steer_the_group_message(root, robots):
    group, handler, _ = robots
    msg = Msg("垃圾 @all <at user_id=\"all\"></at> [点我](https://evil.example)",
              sender_name="@所有人 <b>x</b>")
    ticket = open_from_message(App(root), msg)
    run_once(root)
    ack = group.texts[-1]
    assert "@" not in ack.replace("＠", "") and "evil" not in ack and "所有人" not in ack
    assert "mentioned_list" not in str(group.messages[-1].payload)
    assert ticket.id in handler.texts[-1]
    from broadcaster.queue import outbox

    app = App(root)
    bodies = [body for ann in outbox.archived(app) + outbox.active(app)
              if "ticket_assigned" in ann.meta.source for body in ann.meta.bodies.values()]
    assert len(bodies) == 1 and "\\[点我\\]" in bodies[0]      # inert Markdown, not a link


CRASH = textwrap.dedent("""
    import os, sys
    from broadcaster.app import App
    from broadcaster.store import filetickets
    from broadcaster.tickets import notices
    from broadcaster.tickets.intake import open_from_message
    from tests.tickets_helpers import Msg

    point = sys.argv[2]
    if point == "after-store":                 # the ticket is on disk, nothing queued yet
        notices.Notices.send_pending = lambda *a, **k: os._exit(9)
    else:                                      # queued, not yet marked as queued on the ticket
        real = filetickets.FileTicketStore.change
        def change(self, *a, bump=True, **k):
            if not bump:
                os._exit(9)
            return real(self, *a, bump=bump, **k)
        filetickets.FileTicketStore.change = change
    open_from_message(App(sys.argv[1]), Msg("楼道垃圾三天没清了"))
""")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-store", "after-queue"])
def test_a_crash_after_storing_queues_the_acknowledgement_once(root, robots, point):
    group, handler, _ = robots
    p = subprocess.run([sys.executable, "-c", CRASH, str(root), point], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env={**os.environ},
                       check=False)
    assert p.returncode == 9, p.stderr
    shown = cli(root, "tickets", "list", "--json").json()
    assert len(shown) == 1
    run_once(root)
    run_once(root)
    assert len(group.texts) == 1 and shown[0]["id"] in group.texts[0]
    assert len(handler.texts) == 1
    assert cli(root, "tickets", "list", "--json").json()[0]["status"] == "assigned"


def _served_root(root, robots):
    """The flow's root, with the resident's group reachable through the signed bridge."""
    doc = yaml.safe_load((root / "groups.yaml").read_text(encoding="utf-8"))
    doc["inbound"] = {"generic": {"secret": BRIDGE}}
    for group in doc["groups"]:
        group["chats"] = [f"generic:{group['id']}"]
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_complaint_through_the_inbound_server_to_its_result(root, robots):
    """The resident writes in the group; the bridge signs it to ``serve``; the ticket reaches
    the handler, the reminder and the overdue alert follow (time moved), the result comes back."""
    from broadcaster.inbound.server import ServerThread
    from tests.simulator_inbound import InboundClient

    group, handler, supervisor = robots
    _served_root(root, robots)
    with time_machine.travel(at(2026, 2, 13, 15, 30), tick=True):
        with ServerThread(App(root)) as server:
            r = InboundClient(server.url).generic(BRIDGE, "hlz-g01", COMPLAINT, message_id="wx-1",
                                                  mentioned=False)
            assert r.status_code == 200
            assert wait_for(lambda: group.texts and handler.texts)   # serve sent both itself
            again = InboundClient(server.url).generic(BRIDGE, "hlz-g01", COMPLAINT, message_id="wx-1")
            assert again.status_code == 200                          # the bridge retried
            time.sleep(0.3)
        listed = cli(root, "tickets", "list", "--json").json()
        assert len(listed) == 1
        ticket = listed[0]
        assert (ticket["status"], ticket["staff"], ticket["category"]) == \
            ("assigned", "wang-li", "sanitation")
        assert ticket["deadline"].startswith("2026-02-24T15:30") and ticket["reporter"] == "张阿姨"
        run_once(root)
    assert len(group.texts) == 1 and len(handler.texts) == 1
    ack = group.texts[0]
    assert ticket["id"] in ack and "卫生" in ack and masked("张") in ack and "楼道" not in ack
    assert ticket["id"] in handler.texts[0] and COMPLAINT in handler.texts[0]

    with time_machine.travel(at(2026, 2, 22, 10, 43), tick=True):    # 80 % of the time
        run_once(root)
    assert len(handler.texts) == 2 and "快到期" in handler.texts[-1]
    with time_machine.travel(at(2026, 2, 24, 15, 31), tick=True):    # overdue
        run_once(root)
        run_once(root)
    assert len(supervisor.texts) == 1 and "超过办理时限" in supervisor.texts[0]
    assert f"工单已超时 {ticket['id']}" in str(supervisor.messages[0].payload)   # the card's title
    with time_machine.travel(at(2026, 2, 24, 16, 0), tick=True):
        r = cli(root, "tickets", "resolve", ticket["id"], "--result", "楼道垃圾已清运", "--by",
                "wang-li")
        assert r.code == 1 and "accept" in r.err                     # assigned: accept first
        assert cli(root, "tickets", "accept", ticket["id"], "--by", "wang-li").code == 0
        assert cli(root, "tickets", "resolve", ticket["id"], "--result", "楼道垃圾已清运",
                   "--by", "wang-li").code == 0
        run_once(root)
    assert len(group.texts) == 2 and ticket["id"] in group.texts[-1]
    assert "楼道垃圾已清运" in group.texts[-1] and masked("张") in group.texts[-1]
    assert "三天没清" not in group.texts[-1]
