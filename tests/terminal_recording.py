"""A terminal recording: ``announce`` -> ``run-once`` -> ``report`` on the shipped demo, typed
into a real 80-column terminal (tmux) and captured as the screen shows it.

``python -m tests.terminal_recording`` writes ``docs/terminal-80.txt`` (the README links
it); ``tests/test_terminal_recording.py`` makes a fresh one and checks that it reads cleanly.
The id ``report`` is given is copied from what ``announce`` printed on the screen, as a
person would copy it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "terminal-80.txt"
COLUMNS, LINES = 80, 60
PROMPT = "$ "
ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")
TEXT = "明天宁海路停水"


class Terminal:
    """A detached tmux session of ``COLUMNS`` x ``LINES`` running a plain bash."""

    def __init__(self, cwd: Path):
        self.name = f"bc-rec-{os.getpid()}"
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "PS1": PROMPT, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        subprocess.run(["tmux", "-u", "new-session", "-d", "-s", self.name, "-x", str(COLUMNS),
                        "-y", str(LINES), "-c", str(cwd), "bash --norc --noprofile"],
                       env=env, check=True)
        self.type(f"export PS1='{PROMPT}' PATH={env['PATH']} && clear")
        subprocess.run(["tmux", "clear-history", "-t", self.name], check=True)

    def screen(self) -> str:
        # without -J: a line the terminal wrapped shows as two, as the eye sees it
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name, "-S", "-", "-E", "-"],
                              capture_output=True, text=True, check=True).stdout

    def prompts(self) -> tuple[int, bool]:
        """How many prompt lines the screen shows, and whether it ends at a bare prompt
        (tmux drops trailing blanks: a waiting prompt reads ``$``)."""
        lines = self.screen().rstrip("\n").splitlines()
        count = sum(1 for text in lines if text == PROMPT.rstrip() or text.startswith(PROMPT))
        return count, bool(lines) and lines[-1] == PROMPT.rstrip()

    def type(self, line: str, *, timeout: float = 60) -> None:
        """Type ``line`` and Enter, and wait for the next prompt."""
        before, _ = self.prompts()
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", line], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            count, waiting = self.prompts()
            if waiting and (count > before or line.endswith("clear")):
                return
            time.sleep(0.1)
        raise TimeoutError(f"no prompt after {line!r}:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


def demo_root(into: Path, schedules: tuple[str, ...] = ()) -> Path:
    """A copy of the shipped demo's groups, templates and feeds in ``into``, with only the
    named ``schedules/`` files (none: nothing fires by itself)."""
    root = into / "demo"
    root.mkdir()
    for name in ("groups.yaml", "templates", "feeds"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "schedules").mkdir()
    for name in schedules:
        shutil.copy(REPO / "schedules" / name, root / "schedules" / name)
    return root


def record() -> str:
    """The screen after announce, run-once and report, as plain text (trailing blanks cut)."""
    with tempfile.TemporaryDirectory() as tmp:
        term = Terminal(demo_root(Path(tmp)))
        try:
            term.type(f"broadcaster announce '{TEXT}' --to community:huilinlvzhou --urgent")
            shown = ID.findall(term.screen())
            if not shown:
                raise RuntimeError("announce printed no id:\n" + term.screen())
            term.type("broadcaster run-once")
            term.type(f"broadcaster report {shown[-1]}")
            text = term.screen()
        finally:
            term.close()
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and lines[-1] in ("", PROMPT.rstrip()):
        lines.pop()
    return "\n".join(lines) + "\n"


def main() -> int:
    if shutil.which("tmux") is None:
        print("needs tmux (apt-get install tmux)", file=sys.stderr)
        return 1
    OUT.write_text(record(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
