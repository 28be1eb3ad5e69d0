"""The selector language: all, id:, tags, AND with commas, OR by repetition, exclusions."""

from __future__ import annotations

import pytest

from broadcaster.config.groups import load_groups
from broadcaster.errors import InputError
from broadcaster.targeting import select
from tests.conftest import write_groups


@pytest.fixture
def config(tmp_path):
    rows = []
    for gid, tags in [
        ("a1", "street:ninghai-road, kind:grid"),
        ("a2", "street:ninghai-road, kind:function"),
        ("b1", "street:huaqiao-road, kind:grid"),
        ("c1", "street:yijiangmen, kind:grid, audience:elderly"),
    ]:
        rows.append(f"  - {{id: {gid}, name: {gid}, tags: [{tags}], channel: {{type: file, path: o}}}}")
    write_groups(tmp_path, "groups:\n" + "\n".join(rows) + "\n")
    return load_groups(tmp_path)


@pytest.mark.parametrize(
    ("to", "exclude", "expected"),
    [
        (["all"], [], ["a1", "a2", "b1", "c1"]),
        (["id:b1"], [], ["b1"]),
        (["kind:grid"], [], ["a1", "b1", "c1"]),
        (["street:ninghai-road,kind:grid"], [], ["a1"]),
        (["street:ninghai-road", "street:huaqiao-road"], [], ["a1", "a2", "b1"]),
        (["all"], ["kind:grid"], ["a2"]),
        (["kind:grid"], ["id:a1", "audience:elderly"], ["b1"]),
    ],
)
def test_select(config, to, exclude, expected):
    assert [g.id for g in select(config, to, exclude)] == expected


def test_unknown_selector_suggests(config):
    with pytest.raises(InputError) as info:
        select(config, ["street:ninghai-raod"])
    assert "street:ninghai-raod" in str(info.value) and "street:ninghai-road" in str(info.value)


def test_and_of_disjoint_terms_is_an_error(config):
    with pytest.raises(InputError, match="not all together"):
        select(config, ["street:huaqiao-road,kind:function"])


def test_empty_term_and_no_target(config):
    with pytest.raises(InputError):
        select(config, ["kind:grid,"])
    with pytest.raises(InputError):
        select(config, [])
