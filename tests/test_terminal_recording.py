"""``announce`` -> ``run-once`` -> ``report`` read cleanly in a real 80-column terminal (tmux):
every line fits, each id is whole on one line, no box drawing; and so does the recording
kept in docs/ (``python -m tests.terminal_recording`` makes it)."""

from __future__ import annotations

import shutil

import pytest
from rich.cells import cell_len

from tests.terminal_recording import COLUMNS, ID, OUT, PROMPT, record

BOX = set("│─┃━┏┓┗┛╭╮╰╯┌┐└┘├┤┬┴┼═║╔╗╚╝")


def reads_cleanly(screen: str) -> None:
    lines = screen.splitlines()
    commands = [i for i, line in enumerate(lines) if line.startswith(PROMPT)]
    assert [lines[i].split()[2] for i in commands] == ["announce", "run-once", "report"], screen
    for line in lines:
        assert cell_len(line) <= COLUMNS, line
        # a line of output that fills the width was wrapped by the terminal
        assert line.startswith(PROMPT) or cell_len(line) < COLUMNS, f"wrapped: {line!r}"
    assert not BOX & set(screen), screen
    [ann] = set(ID.findall(screen))
    shown = [line for line in lines if ann in line]
    assert len(shown) == 3, screen      # announce's table, report's command line and its answer
    queued = lines[commands[0] + 1: commands[1]]
    assert queued[0].split() == ["id", "targets", "scheduled", "for", "status"]
    assert queued[1].split()[0] == ann and queued[1].split()[-1] == "queued"
    assert lines[commands[1] + 1].startswith("fired nothing; sent 3, failed 0")
    report = lines[commands[2] + 1:]
    assert report[0] == f"{ann} done"
    assert report[1].strip().startswith("3/3 sent")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")
def test_a_fresh_recording_reads_cleanly_at_80_columns():
    reads_cleanly(record())


def test_the_recording_in_docs_reads_cleanly():
    reads_cleanly(OUT.read_text(encoding="utf-8"))
