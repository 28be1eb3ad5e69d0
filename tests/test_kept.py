"""What a pass keeps for the next one (config/kept.py): the valid jobs while schedules/ is
unchanged, the time zone while groups.yaml is; and a pass with nothing queued starts no
dispatcher. Whatever changes, the next load sees it; a problem is reported every time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from broadcaster.app import App
from broadcaster.config.job import KEPT
from broadcaster.config.timezone import KEPT as KEPT_ZONE
from broadcaster.schedule.scheduler import load_jobs
from broadcaster.sources import kinds
from tests.conftest import cli, write_groups
from tests.test_scheduler import GROUPS

SCHEDULE = """
jobs:
  - id: morning
    cron: "0 7 * * *"
    content: template
    template: ${MORNING_TEMPLATE:-sorting_reminder}
    to: [all]
  - id: weekly
    cron: "0 9 * * 1"
    content: events
    to: [all]
    grace: 2h
    options: {days_ahead: 3}
"""


def _app(root) -> App:
    return App(root)


def _kept(root, name=KEPT):
    path = root / "var" / "cache" / f"{name}.json"
    return json.loads(path.read_bytes().partition(b"\n")[2]) if path.exists() else None


@pytest.fixture
def project(root):
    write_groups(root, GROUPS)
    (root / "schedules" / "s.yaml").write_text(SCHEDULE, encoding="utf-8")
    return root


def test_unchanged_schedules_give_the_same_jobs_from_what_was_kept(project):
    first = load_jobs(_app(project), [])
    assert [j["id"] for j in _kept(project)] == ["morning", "weekly"]
    again = load_jobs(_app(project), [])
    assert again == first
    assert again[1].grace == timedelta(hours=2) and again[1].options == {"days_ahead": 3}
    assert again[0].to == ("all",) and again[0].where.endswith("s.yaml:3")


def test_a_changed_file_or_variable_is_loaded_again(project, monkeypatch):
    load_jobs(_app(project), [])
    (project / "schedules" / "s.yaml").write_text(SCHEDULE.replace("0 7 * * *", "30 6 * * *"),
                                                  encoding="utf-8")
    assert load_jobs(_app(project), [])[0].cron == "30 6 * * *"
    monkeypatch.setenv("MORNING_TEMPLATE", "weather")
    assert load_jobs(_app(project), [])[0].template == "weather"
    monkeypatch.delenv("MORNING_TEMPLATE")
    assert load_jobs(_app(project), [])[0].template == "sorting_reminder"
    (project / "schedules" / "t.yaml").write_text(
        "jobs:\n  - {id: extra, cron: '0 8 * * *', content: template, template: weather, to: [all]}\n",
        encoding="utf-8")
    assert [j.id for j in load_jobs(_app(project), [])] == ["morning", "weekly", "extra"]


def test_a_moved_project_shows_its_jobs_where_they_are_now(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    assert load_jobs(_app(project.relative_to(project.parent)), [])[0].where == "root/schedules/s.yaml:3"
    moved = project.rename(project.parent / "moved")     # var/cache/ moves with it
    assert load_jobs(_app(moved.relative_to(moved.parent)), [])[0].where == "moved/schedules/s.yaml:3"


def test_a_broken_schedule_is_reported_on_every_load_and_never_kept(project):
    load_jobs(_app(project), [])
    kept = (project / "var" / "cache" / f"{KEPT}.json").read_bytes()
    (project / "schedules" / "bad.yaml").write_text(
        "jobs:\n  - id: broken\n    cron: '0 7 * * *'\n    content: nope\n    to: [all]\n", encoding="utf-8")
    for _ in range(2):
        problems: list[str] = []
        assert [j.id for j in load_jobs(_app(project), problems)] == ["morning", "weekly"]
        assert len(problems) == 1 and "unknown content 'nope'" in problems[0]
    assert (project / "var" / "cache" / f"{KEPT}.json").read_bytes() == kept


def test_jobs_whose_options_hold_a_variable_value_are_not_kept(project, monkeypatch):
    monkeypatch.setenv("NOTICE_TOKEN", "tok-not-for-disk-1234")
    (project / "schedules" / "s.yaml").write_text(SCHEDULE + """
  - id: link
    cron: "0 8 * * *"
    content: template
    template: sorting_reminder
    to: [all]
    options: {signup: {url: "https://example.org/join?t=${NOTICE_TOKEN}"}}
""", encoding="utf-8")
    for _ in range(2):
        jobs = load_jobs(_app(project), [])
        assert jobs[2].options == {"signup": {"url": "https://example.org/join?t=tok-not-for-disk-1234"}}
    assert _kept(project) is None
    cache = project / "var" / "cache"
    assert not any(b"tok-not-for-disk" in f.read_bytes() for f in cache.iterdir())
    monkeypatch.delenv("NOTICE_TOKEN")
    problems: list[str] = []
    assert [j.id for j in load_jobs(_app(project), problems)] == []
    assert "NOTICE_TOKEN is not set" in problems[0]


def test_a_damaged_kept_file_is_not_trusted(project):
    load_jobs(_app(project), [])
    path = project / "var" / "cache" / f"{KEPT}.json"
    head, _, body = path.read_bytes().partition(b"\n")
    path.write_bytes(head + b"\n" + body.replace(b"0 7 * * *", b"* * * * *"))
    assert load_jobs(_app(project), [])[0].cron == "0 7 * * *"
    path.write_bytes(b"not json")
    assert load_jobs(_app(project), [])[0].cron == "0 7 * * *"


class Toy(kinds.ContentKind):
    name = "toy-kept"
    options: ClassVar = {}

    def run(self, ctx) -> None:
        pass


def test_jobs_valid_only_with_a_kind_this_process_registered_are_not_kept(project):
    kinds.register(Toy)
    try:
        (project / "schedules" / "s.yaml").write_text(
            "jobs:\n  - {id: toy, cron: '0 8 * * *', content: toy-kept, to: [all]}\n", encoding="utf-8")
        assert [j.id for j in load_jobs(_app(project), [])] == ["toy"]
        assert _kept(project) is None
    finally:
        kinds.unregister("toy-kept")
    problems: list[str] = []
    assert load_jobs(_app(project), problems) == [] and "unknown content 'toy-kept'" in problems[0]


def test_the_time_zone_is_kept_while_groups_yaml_is_unchanged(project):
    assert _app(project).default_timezone == "Asia/Shanghai"
    assert _kept(project, KEPT_ZONE) == "Asia/Shanghai"
    write_groups(project, GROUPS.replace("Asia/Shanghai", "Europe/Berlin"))
    assert _app(project).default_timezone == "Europe/Berlin"
    assert _kept(project, KEPT_ZONE) == "Europe/Berlin"


def test_a_kept_time_zone_is_read_again_by_other_code(project, monkeypatch, tmp_path):
    import broadcaster.config.timezone as timezone
    from broadcaster.config.kept import CheckedCache

    assert _app(project).default_timezone == "Asia/Shanghai"
    path = project / "var" / "cache" / f"{KEPT_ZONE}.json"
    key = json.loads(path.read_bytes().partition(b"\n")[0])["sha256"]
    CheckedCache(path, key).store("Europe/Berlin")     # as an older reading of the same text kept it
    assert _app(project).default_timezone == "Europe/Berlin"
    changed = tmp_path / "timezone.py"
    changed.write_text(Path(timezone.__file__).read_text() + "\n# fixed\n")
    monkeypatch.setattr(timezone, "__file__", str(changed))
    assert _app(project).default_timezone == "Asia/Shanghai"


def test_nothing_queued_means_no_announcement_and_no_journal(project):
    store = _app(project).store
    assert store.nothing_queued()
    assert cli(project, "announce", "停水通知", "--to", "all", "--at", "+2h").code == 0
    assert not store.nothing_queued()
    run = cli(project, "run-once", "--json")
    assert run.code == 0 and run.json()["pending"] == 2      # counted: the dispatcher ran
    for path in (project / "var" / "active").iterdir():
        path.unlink()
    assert store.nothing_queued()
    (project / "var" / "journal").mkdir(exist_ok=True)
    (project / "var" / "journal" / f"{datetime.now():%Y%m%dT%H%M%S}-1-abcdef.jsonl").write_text("")
    assert not store.nothing_queued()   # a killed dispatcher's journal: the next one folds it
