"""tickets.yaml and staff: in groups.yaml: validated with file:line, wired into check."""

from __future__ import annotations

import shutil

import pytest
import yaml

from broadcaster.app import App
from broadcaster.config.groups import load_groups
from broadcaster.config.tickets import Deadline, load_tickets
from broadcaster.errors import ConfigError
from tests.conftest import REPO, cli
from tests.tickets_helpers import write_tickets_root


@pytest.mark.parametrize("text, amount, unit", [
    ("2 workdays", 2, "workdays"), ("1 workday", 1, "workdays"), ("4h", 4, "hours"),
    ("4 h", 4, "hours"), ("12 hours", 12, "hours"), ("3d", 3, "days"), ("3 days", 3, "days"),
    (" 5 WORKDAYS ", 5, "workdays"),
])
def test_deadlines_parse(text, amount, unit):
    d = Deadline.parse(text)
    assert (d.amount, d.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["", "2", "two days", "0h", "-1 d", "2 weeks", "251 workdays",
                                  "1.5h"])
def test_bad_deadlines_are_refused(text):
    with pytest.raises(ValueError, match="deadline"):
        Deadline.parse(text)


def test_shipped_demo_is_valid_and_check_passes(root):
    shutil.copy(REPO / "groups.yaml", root / "groups.yaml")
    shutil.copy(REPO / "tickets.yaml", root / "tickets.yaml")
    config = load_tickets(root)
    assert {c.name for c in config.categories} >= {"卫生", "绿化", "设施报修", "噪音", "安全隐患"}
    staff = load_groups(root).staff
    assert staff.problems == [] and staff.warnings == []
    assert staff.fallback == "zhang-hua" and staff.digest_at.strftime("%H:%M") == "08:30"
    r = cli(root, "check")
    assert r.code == 0, r.err
    assert "warning" not in r.err


def test_every_tickets_yaml_problem_is_listed_with_its_line(root):
    write_tickets_root(root)
    (root / "tickets.yaml").write_text(
        "categories:\n"
        "  - id: sanitation\n"
        "    name: 卫生\n"
        "    keywords: [垃圾]\n"
        "    deadline: 2 weeks\n"          # line 5
        "  - id: sanitation\n"             # line 6: duplicate
        "    name: 卫生二\n"
        "    keywords: [垃圾]\n"
        "    deadline: 1d\n"
        "  - id: Bad Id\n"                  # line 10
        "    name: x\n"
        "    keywords: []\n"                # line 12
        "    deadline: 4h\n"
        "    colour: red\n",                # line 14
        encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_tickets(root)
    text = str(exc.value)
    assert "tickets.yaml:5: categories.0.deadline: deadline must be" in text
    assert "tickets.yaml:6: categories.1.id: duplicate category id 'sanitation'" in text
    assert "tickets.yaml:10: categories.2.id:" in text
    assert "tickets.yaml:12: categories.2.keywords: give at least one keyword" in text
    assert "tickets.yaml:14: categories.2.colour:" in text
    r = cli(root, "check")
    assert r.code == 1 and "tickets.yaml:5:" in r.err and "tickets.yaml:14:" in r.err


def _staff_doc(root):
    return yaml.safe_load((root / "groups.yaml").read_text(encoding="utf-8"))


def _save(root, doc):
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")


def test_unknown_supervisor_and_fallback_are_errors_with_lines(root):
    write_tickets_root(root)
    doc = _staff_doc(root)
    doc["staff"][0]["supervisor"] = "zhang-hau"
    doc["defaults"]["tickets"]["fallback"] = "nobody"
    _save(root, doc)
    r = cli(root, "check")
    assert r.code == 1
    assert "staff.0.supervisor: unknown staff id 'zhang-hau'; did you mean zhang-hua?" in r.err
    assert "defaults.tickets.fallback: unknown staff id 'nobody'" in r.err
    lines = (root / "groups.yaml").read_text(encoding="utf-8").splitlines()
    where = next(i for i, line in enumerate(lines, 1) if "zhang-hau" in line)
    assert f"groups.yaml:{where}: staff.0.supervisor" in r.err


def test_covers_matching_no_group_is_a_warning_not_an_error(root):
    write_tickets_root(root)
    doc = _staff_doc(root)
    doc["staff"][2]["covers"] = ["community:nowhere"]
    _save(root, doc)
    r = cli(root, "check")
    assert r.code == 0, r.err
    assert "warning:" in r.err and "staff.2.covers" in r.err and "community:nowhere" in r.err


def test_a_broken_staff_member_is_left_out_and_groups_still_work(root, monkeypatch):
    write_tickets_root(root)
    doc = _staff_doc(root)
    doc["staff"][1]["channel"] = {"type": "wecom", "url": "${WECOM_STAFF_LI}"}
    doc["staff"][0]["channel"] = {"type": "pager"}
    doc["staff"].append({"id": "Bad Id", "name": "", "channel": {"type": "file", "path": "x"}})
    _save(root, doc)
    monkeypatch.delenv("WECOM_STAFF_LI", raising=False)
    config = load_groups(root)                     # the groups load: announcements go on
    assert [g.id for g in config.groups] == ["hlz-g01", "huju-g01", "volunteers"]
    staff = config.staff
    assert [m.id for m in staff.members] == ["zhang-hua"]
    messages = "\n".join(str(p) for p in staff.problems)
    assert "WECOM_STAFF_LI is not set" in messages
    assert "unknown channel type 'pager'" in messages
    assert "staff.3.id" in messages and "staff.3.name" in messages
    r = cli(root, "announce", "通知", "--to", "all", "--json")
    assert r.code == 0, r.err
    assert cli(root, "check").code == 1


def test_staff_secrets_are_redacted_and_never_cached(root):
    write_tickets_root(root, staff_channels={
        "wang-li": {"type": "webhook", "url": "https://hooks.example.org/staff/wang",
                    "secret": "staff-signing-secret"}})
    app = App(root)
    assert app.groups.staff.members[0].id == "wang-li"
    assert app.redact("signed with staff-signing-secret") == "signed with ***"
    cache = app.store.dir / "cache"
    assert not list(cache.glob("groups-*.json"))    # a file holding a secret is not cached


def test_staff_destination_resolves_to_their_channel(root):
    write_tickets_root(root)
    config = load_groups(root)
    dest = config.destination("staff:wang-li")
    assert dest is not None and dest.channel_type == "file" and dest.name == "王丽"
    assert dest.channel.path == str(root / "staff")
    assert config.destination("staff:nobody") is None
    assert config.destination("hlz-g01").name == "汇林绿洲第1网格群"
