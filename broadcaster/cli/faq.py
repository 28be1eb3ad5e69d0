"""``faq list``, ``faq test``, ``faq misses``: the knowledge base as editors see it."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, SinceOpt, emit_json, get_app, noun, plural, table

app = noun("The knowledge base the bot answers residents from (faq/).")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List the entries of faq/.

    \b
    Example:
      broadcaster faq list --json
    """
    from broadcaster.faq.entries import load  # start-up time: loaded when first used

    kb = load(get_app(ctx).root)
    rows = [{"id": e.id, "ask": list(e.ask), "keywords": list(e.keywords), "regex": list(e.regex),
             "to": list(e.to), "file": e.file, "line": e.line} for e in kb.entries]
    if json_:
        emit_json(rows)
        return
    table(None, ["id", "keywords", "ask", "to"],
          [[r["id"], "、".join(r["keywords"]), (r["ask"] or [""])[0], ",".join(r["to"])] for r in rows])
    typer.echo(plural(len(rows), "entry", "entries"))


@app.command("test")
def test(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="A question as a resident would write it.")],
    group: Annotated[str | None, typer.Option("--group", metavar="ID",
                                              help="Answer as in this group (default: the first).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Show which entry answers TEXT, its score and the answer.

    \b
    Example:
      broadcaster faq test "巨住证怎么办" --group gulou-hlz-g01
    """
    from broadcaster.errors import InputError, did_you_mean  # start-up time: loaded when first used
    from broadcaster.faq.knowledge import Knowledge  # start-up time: loaded when first used

    a = get_app(ctx)
    groups = a.groups
    if group is not None and group not in groups.by_id:
        raise InputError(f"no group with id {group!r}{did_you_mean(group, groups.by_id, ' (see: groups list)')}")
    target = groups.by_id[group] if group else groups.groups[0]
    knowledge = Knowledge(a)
    d = knowledge.decide(text=text, group_id=target.id, addressed=True, is_bot=False,
                         now=a.now(), use_cooldown=False)
    out = {"entry": d.match.entry.id if d.answer else None, "score": round(d.match.score, 3),
           "answer": d.answer, "via": d.match.via if d.answer else None, "group": target.id}
    if json_:
        emit_json(out)
    elif d.answer:
        typer.echo(f"{out['entry']} (score {out['score']}, {out['via']}) in {target.id}:\n\n{d.answer}")
    else:
        typer.echo(f"no answer (best score {out['score']}): this would be recorded as a miss")


@app.command("misses")
def misses(ctx: typer.Context, since: SinceOpt = "7d", json_: JsonOpt = False) -> None:
    """Questions residents asked that nothing answered, most asked first.

    \b
    Example:
      broadcaster faq misses --since 30d
    """
    from broadcaster.faq.misses import misses as collect  # start-up time: loaded when first used
    from broadcaster.timeparse import parse_duration  # start-up time: loaded when first used

    a = get_app(ctx)
    rows = collect(a, a.now() - parse_duration(since, option="--since"))
    if json_:
        emit_json(rows)
        return
    table(None, ["count", "question", "groups", "last"],
          [[r["count"], r["text"], ",".join(r["groups"]), r["last_at"]] for r in rows])
    typer.echo(plural(len(rows), "unanswered question"))
