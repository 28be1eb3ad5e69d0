"""The shipped templates on every channel match tests/golden/ (regenerate: make golden)."""

from __future__ import annotations

import difflib

import pytest

from broadcaster.templating import Templates
from tests.golden_regen import GOLDEN, REPO, dump, golden

TEMPLATES = Templates(REPO)
NAMES = TEMPLATES.names()


def test_every_shipped_template_has_a_golden_file():
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(NAMES), \
        "run `python -m tests.golden_regen` (make golden) and review the diff"


@pytest.mark.parametrize("name", NAMES)
def test_template_matches_its_golden_file(name):
    path = GOLDEN / f"{name}.json"
    assert path.exists(), f"no {path.name}: run `python -m tests.golden_regen`"
    expected = path.read_text(encoding="utf-8")
    actual = dump(golden(TEMPLATES, name))
    assert actual == expected, (
        f"{name}: what residents would receive changed; if intended, run `make golden` "
        "and review `git diff --word-diff tests/golden/` (templates/README.md). Changed:\n"
        + changed_lines(expected, actual)
    )


def changed_lines(expected: str, actual: str, most: int = 40) -> str:
    """The lines of a golden file that differ, as a unified diff (at most ``most`` lines)."""
    diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                     "golden", "now", n=0, lineterm=""))
    return "\n".join(diff[:most] + ([f"... ({len(diff) - most} more lines)"] if len(diff) > most else []))


def test_a_changed_wording_is_shown_as_the_lines_that_differ():
    expected = dump(golden(TEMPLATES, "weather"))
    actual = expected.replace("出门记得带伞", "出门别忘带伞")
    shown = changed_lines(expected, actual)
    assert "别忘带伞" in shown and "记得带伞" in shown
    assert len(shown.splitlines()) <= 41   # one changed line per platform, capped
