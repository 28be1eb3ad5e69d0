"""The shipped templates on every channel match tests/golden/ (regenerate: make golden)."""

from __future__ import annotations

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
        f"{name}: what residents would receive changed; if intended, run "
        "`python -m tests.golden_regen` (make golden) and review the diff"
    )
