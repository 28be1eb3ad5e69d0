"""Adding a content kind or a channel is one module: both are declared here, in the test.

``Quote`` is a content kind (schedule options, a ``feeds/`` section, a template
kind with fields and sample data, ``run``) and ``PagerChannel`` a channel (config,
limit, Markdown dialect, preview robot, ``send``). Registered from this module,
they are found by ``check``, schedules validation, ``templates list``,
``templates preview``, and a job of the new kind reaches a group on the new
channel through ``jobs run`` and ``run-once``. Unregistered, they are gone again.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from broadcaster import channels
from broadcaster.channels.base import Channel, ChannelConfig, Limit, Part, SendResult
from broadcaster.config.fields import Selectors
from broadcaster.config.schedules import load_schedules
from broadcaster.delivery.markdown import DIALECTS
from broadcaster.errors import ConfigError
from broadcaster.sources import kinds
from broadcaster.sources.kinds import ContentKind, RunContext, Section, TemplateKind
from tests.conftest import cli, write_groups

# -- a content kind: the quote of the day ------------------------------------------------


class Quotes(BaseModel):
    """``feeds/*.yaml`` ``quotes:``: the sayings a quote job picks from, and for whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: list[str]
    to: Selectors = ["all"]


def _sample(now: datetime, **_) -> dict:
    return {"quote": {"text": "远亲不如近邻。", "day": now.date()}}


QUOTE = TemplateKind("quote", data=("quote",), fields=("quote", "quote.text", "quote.day"),
                     sample=_sample)


class Quote(ContentKind):
    name = "quote"
    options: ClassVar = {"repeat": bool}
    section = Section("quotes", Quotes)
    templates = (QUOTE,)

    def run(self, ctx: RunContext) -> None:
        if ctx.section is None or not ctx.section.lines:
            return
        day = ctx.local_now.date()
        text = ctx.section.lines[day.toordinal() % len(ctx.section.lines)]
        ctx.send("quote", ctx.groups_for(ctx.section.to, "quotes"),
                 {"quote": {"text": text, "day": day}})


# -- a channel: a lobby screen showing plain text, one file per group --------------------


class PagerConfig(ChannelConfig):
    type: Literal["pager"] = "pager"
    path: str   # a directory, relative to the root (groups.yaml validates with it as context)

    @field_validator("path")
    @classmethod
    def _under_root(cls, value: str, info: ValidationInfo) -> str:
        root = (info.context or {}).get("root")
        return str(Path(root) / value) if root is not None else value


class PagerChannel(Channel):
    type_name = "pager"
    Config = PagerConfig
    limit = Limit(2000, "chars")
    dialect = "plain"
    preview: ClassVar = {"path": "var/pager"}

    def build_part(self, markdown: str, title: str, mention_all: bool) -> Part:
        text = self.in_dialect(markdown)
        return Part({"text": text}, text, len(text), self.limit.size)

    def send(self, part: Part) -> SendResult:
        target = Path(self.config.path) / f"{self.group_id}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            fh.write(part.payload["text"] + "\n")
        return SendResult("sent")


@pytest.fixture
def declared():
    """The kind and the channel registered as their modules would at import, then removed."""
    kinds.register(Quote)
    channels.register("pager")(PagerChannel)
    yield
    kinds.unregister("quote")
    channels.unregister("pager")


GROUPS = """
    groups:
      - {id: lobby, name: 大堂屏, tags: [kind:screen], channel: {type: pager, path: pager}}
      - {id: g01, name: 第1网格群, tags: [kind:grid], channel: {type: file, path: out}}
"""
SCHEDULE = """
    jobs:
      - id: quote-of-the-day
        cron: "0 7 * * *"
        content: quote
        options: {repeat: true}
        to: [all]
"""


@pytest.fixture
def project(root: Path) -> Path:
    write_groups(root, GROUPS)
    (root / "feeds" / "quotes.yaml").write_text(
        "quotes:\n  lines: [远亲不如近邻。]\n  to: [kind:screen]\n", encoding="utf-8")
    (root / "schedules" / "quotes.yaml").write_text(SCHEDULE, encoding="utf-8")
    (root / "templates" / "quote.md.j2").write_text(
        "**每日一句**\n\n{{ quote.text }}（{{ quote.day | cn_date(year=false) }}）\n", encoding="utf-8")
    return root


def test_a_kind_and_a_channel_declared_in_one_module_are_found_everywhere(declared, project):
    checked = cli(project, "check", "--json")
    assert checked.code == 0, checked.out + checked.err
    assert checked.json()["groups"] == 2

    [job] = load_schedules(project)
    assert (job.content, job.options) == ("quote", {"repeat": True})

    listed = cli(project, "templates", "list", "--json")
    assert listed.code == 0, listed.err
    quote = next(t for t in listed.json() if t["template"] == "quote.md.j2")
    assert quote["kind"] == "quote" and quote["schedules"] == ["quote-of-the-day"]

    preview = cli(project, "templates", "preview", "quote", "--json")
    assert preview.code == 0, preview.err
    shown = {c["channel"]: c for c in preview.json()["channels"]}
    assert "pager" in shown and "wecom" in shown
    assert shown["pager"]["parts"][0]["payload"]["text"].startswith("每日一句\n\n远亲不如近邻。")
    assert shown["pager"]["limit"] == 2000 and shown["pager"]["unit"] == "chars"

    on_the_screen = cli(project, "templates", "preview", "quote", "--group", "lobby", "--json")
    assert [c["channel"] for c in on_the_screen.json()["channels"]] == ["pager"]


def test_a_job_of_the_new_kind_reaches_a_group_on_the_new_channel(declared, project):
    fired = cli(project, "jobs", "run", "quote-of-the-day", "--json")
    assert fired.code == 0, fired.err
    sent = cli(project, "run-once", "--json", env={"BROADCASTER_STATE_DIR": str(project / "var")})
    assert sent.code == 0, sent.err
    assert sent.json()["sent"] == 1          # the feed is for the screens only
    screen = (project / "pager" / "lobby.txt").read_text(encoding="utf-8")
    assert screen.startswith("每日一句\n\n远亲不如近邻。")
    assert not (project / "out").exists()


def test_schedules_and_feeds_reject_what_the_kind_does_not_declare(declared, project):
    (project / "schedules" / "quotes.yaml").write_text(
        SCHEDULE.replace("repeat: true", "repaet: true"), encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_schedules(project)
    assert "unknown option 'repaet' for quote (known: repeat)" in str(bad.value)
    (project / "feeds" / "quotes.yaml").write_text("quotes:\n  lines: 3\n", encoding="utf-8")
    checked = cli(project, "check")
    assert checked.code == 1
    assert "quotes.lines" in checked.err


def test_without_their_module_they_are_unknown(project):
    assert "quote" not in kinds.content_kinds() and "pager" not in channels.channel_types()
    checked = cli(project, "check")
    assert checked.code == 1
    assert "unknown content 'quote' (known: weather, news, events, holidays, template)" in checked.err
    assert "unknown channel type 'pager'" in checked.err
    assert "unknown section (known: weather, news, events, holidays)" in checked.err


def test_every_built_in_channel_names_its_dialect_and_a_preview_robot():
    for name in channels.channel_types():
        cls = channels.get(name)
        assert cls.dialect is None or cls.dialect in DIALECTS, name
        config = cls.Config.model_validate({"type": name, **cls.preview})
        assert cls(config, "g").render("**通知**", title="通知"), name
