"""The ticket state machine, table-tested: every status against every command.

The table is the contract's (SPEC "tickets.yaml and `tickets`"); each pair is
driven through the real CLI on a real store: allowed ones change the status and
record who and when, refused ones exit 1 naming the allowed commands and change nothing.
"""

from __future__ import annotations

import pytest

from broadcaster.app import App
from broadcaster.tickets import states
from broadcaster.tickets.model import STATUSES
from tests.conftest import cli
from tests.tickets_helpers import write_tickets_root

CONTRACT = {   # written out again from SPEC, not imported: the code must match it
    "open": {"assigned", "rejected"},
    "assigned": {"accepted", "assigned", "rejected"},
    "accepted": {"resolved", "assigned"},
    "resolved": {"closed", "reopened"},
    "reopened": {"assigned", "accepted"},
    "closed": {"reopened"},
    "rejected": set(),
}
COMMANDS = {   # target status -> the command line after ``tickets <cmd> ID``
    "assigned": ["assign", "{id}", "li-qiang"],
    "accepted": ["accept", "{id}"],
    "resolved": ["resolve", "{id}", "--result", "已处理"],
    "closed": ["close", "{id}"],
    "reopened": ["reopen", "{id}", "--reason", "居民不满意"],
    "rejected": ["reject", "{id}", "--reason", "重复工单"],
}
# how to bring a fresh ticket (assigned on opening) to each status
PATHS = {
    "assigned": [],
    "accepted": ["accepted"],
    "resolved": ["accepted", "resolved"],
    "closed": ["accepted", "resolved", "closed"],
    "reopened": ["accepted", "resolved", "reopened"],
    "rejected": ["rejected"],
}


def test_the_code_has_exactly_the_contract_table():
    assert {s: set(states.ALLOWED[s]) for s in STATUSES} == CONTRACT
    for status in STATUSES:
        for target in COMMANDS:
            if target in CONTRACT[status]:
                states.check("T-0101-0001", status, target)
            else:
                with pytest.raises(states.IllegalChange):
                    states.check("T-0101-0001", status, target)


@pytest.fixture(scope="module")
def desk_root(tmp_path_factory):
    import shutil

    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("states") / "root"
    root.mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    write_tickets_root(root, fallback=False)
    return root


def _ticket_in(root, status: str) -> str:
    app = App(root)
    desk = app.tickets
    group = "volunteers" if status == "open" else "hlz-g01"   # nobody covers volunteers
    ticket, _ = desk.open(app.groups.by_id[group], "楼道垃圾没人清", by="tester", reporter="赵大爷")
    for target in PATHS.get(status, []):
        ticket = desk.change(ticket.id, target, by="tester", note="x", result="已处理",
                             staff="li-qiang" if target == "assigned" else None)
    assert ticket.status == status
    return ticket.id


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("target", sorted(COMMANDS))
def test_every_status_against_every_command(desk_root, status, target):
    tid = _ticket_in(desk_root, status)
    before = cli(desk_root, "tickets", "show", tid, "--json").json()
    args = [a.format(id=tid) for a in COMMANDS[target]]
    r = cli(desk_root, "tickets", *args, "--by", "wang-li", "--json")
    after = cli(desk_root, "tickets", "show", tid, "--json").json()
    if target in CONTRACT[status]:
        assert r.code == 0, r.err
        assert after["status"] == target and after["version"] == before["version"] + 1
        last = after["history"][-1]
        assert last["status"] == target and last["by"] == "wang-li" and last["at"]
    else:
        assert r.code == 1
        verb = COMMANDS[target][0]
        assert f"cannot {verb} {tid}: it is {status}" in r.err
        for allowed in CONTRACT[status]:
            assert f"{states.COMMAND[allowed]} (-> {allowed})" in r.err
        if not CONTRACT[status]:
            assert "final" in r.err
        assert after == before                       # nothing changed


def test_a_change_records_the_login_user_without_by(desk_root, monkeypatch):
    monkeypatch.setenv("USER", "clerk")
    monkeypatch.setenv("LOGNAME", "clerk")
    tid = _ticket_in(desk_root, "assigned")
    r = cli(desk_root, "tickets", "accept", tid, "--note", "马上去看", "--json")
    assert r.code == 0, r.err
    last = r.json()["history"][-1]
    assert (last["by"], last["status"], last["note"]) == ("clerk", "accepted", "马上去看")


def test_by_must_be_a_staff_id(desk_root):
    tid = _ticket_in(desk_root, "assigned")
    r = cli(desk_root, "tickets", "accept", tid, "--by", "wang-lee")
    assert r.code == 1 and "no staff member with id 'wang-lee'; did you mean wang-li?" in r.err


def test_reopen_and_reject_need_a_reason_resolve_a_result(desk_root):
    tid = _ticket_in(desk_root, "accepted")
    assert cli(desk_root, "tickets", "resolve", tid, "--result", " ").code == 1
    assert cli(desk_root, "tickets", "reject", _ticket_in(desk_root, "assigned"),
               "--reason", "").code == 1
    assert cli(desk_root, "tickets", "resolve", tid).code == 2     # usage: --result missing

