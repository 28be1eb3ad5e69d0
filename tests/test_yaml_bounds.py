"""Hostile YAML: alias bombs and deep nesting are refused with file:line, in milliseconds.

Every YAML file is read through ``config/yamlfile.py``; the bounds hold for
groups.yaml, feeds/, schedules/, tickets.yaml, faq/ and ``--data`` files.
The crash-sized inputs run in a subprocess with its address space capped,
so a regression fails the test instead of taking the test run down.
"""

from __future__ import annotations

import ast
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broadcaster.config.yamlfile import MAX_ALIAS_VALUES, MAX_DEPTH, load_yaml, parse_yaml
from broadcaster.errors import ConfigError
from tests.conftest import REPO, cli, write_groups

GROUPS = """
defaults: {timezone: Asia/Shanghai}
groups:
  - id: g01
    name: 第1网格群
    tags: [street:ninghai-road]
    channel: {type: file, path: out}
"""


def laughs(levels: int, key: str = "lol") -> str:
    """The billion-laughs file: each level an anchored list of nine aliases of the one before."""
    lines = [f'{key}0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{key}{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested(levels: int) -> str:
    return "deep: " + "[" * levels + "]" * levels + "\n"


def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_bound(tmp_path):
    for levels, line in ((6, 6), (9, 6)):   # 9**5 values by line 6 already
        path = tmp_path / "groups.yaml"
        path.write_text(laughs(levels))
        t0 = time.process_time()
        with pytest.raises(ConfigError) as exc:
            load_yaml(path)
        assert time.process_time() - t0 < 2.0     # was 18 s (6 levels) and > 5 GB (9 levels)
        [problem] = exc.value.problems
        assert problem.line == line
        assert "refused" in problem.message and "alias" in problem.message
        assert str(problem).startswith(f"{path}:{line}: ") or f"groups.yaml:{line}:" in str(problem)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 900, 50_000])
def test_deep_nesting_is_refused_with_its_line(tmp_path, levels):
    path = tmp_path / "feed.yaml"
    path.write_text("ok: 1\n" + nested(levels))
    with pytest.raises(ConfigError) as exc:
        load_yaml(path)
    [problem] = exc.value.problems
    assert problem.line == 2
    assert "nest" in problem.message   # "refused: nested more than 64 levels deep"


def test_block_nesting_is_refused_too(tmp_path):
    text = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n"
    with pytest.raises(ConfigError) as exc:
        parse_yaml(text, "schedules/deep.yaml")
    assert str(exc.value) == f"schedules/deep.yaml:{MAX_DEPTH + 1}: refused: nested more than {MAX_DEPTH} levels deep"


def test_ordinary_aliases_and_nesting_still_load(tmp_path):
    """An anchor reused a few times (quiet hours shared by groups) is fine, and so is the limit."""
    text = ("qh: &qh {start: '22:00', end: '07:00'}\n"
            "groups:\n" + "".join(f"  - {{id: g{i}, quiet_hours: *qh}}\n" for i in range(2000))
            + nested(MAX_DEPTH - 1))
    data = parse_yaml(text, "groups.yaml")
    assert data["groups"][1999]["quiet_hours"] == {"start": "22:00", "end": "07:00"}


def test_the_alias_bound_counts_expanded_values():
    # 9 aliases of a 10,000-value anchor: 90,000 values added, within the bound
    big = "a: &big [" + ",".join(["1"] * 9_999) + "]\n"
    fine = big + "b: [" + ",".join(["*big"] * 9) + "]\n"
    assert len(parse_yaml(fine, "x.yaml")["b"]) == 9
    over = big + "b: [" + ",".join(["*big"] * (MAX_ALIAS_VALUES // 10_000 + 1)) + "]\n"
    with pytest.raises(ConfigError, match=r"x\.yaml:2: refused: .*aliases"):
        parse_yaml(over, "x.yaml")


def test_every_yaml_reader_goes_through_yamlfile():
    """No module but config/yamlfile.py (and timezone.py's event-only time zone peek) parses YAML."""
    allowed = {"broadcaster/config/yamlfile.py": None, "broadcaster/config/timezone.py": {"parse"}}
    loaders = {"load", "safe_load", "load_all", "safe_load_all", "full_load", "unsafe_load",
               "compose", "compose_all", "parse"}
    for path in sorted((REPO / "broadcaster").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "yaml" and node.attr in loaders):
                ok = allowed.get(rel, set())
                assert ok is None or node.attr in ok, f"{rel}: yaml.{node.attr} bypasses yamlfile"


# -- each place a user's YAML is read, through the CLI -----------------------------------------

PLACES = {
    "feeds": "feeds/bomb.yaml",
    "schedules": "schedules/bomb.yaml",
    "tickets": "tickets.yaml",
    "faq": "faq/bomb.yaml",
    "groups": "groups.yaml",
}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("bomb", ["laughs6", "nest900"])
def test_check_names_the_file_and_line_for_every_place(root, place, bomb):
    write_groups(root, GROUPS)
    (root / "faq").mkdir()
    target = root / PLACES[place]
    target.write_text(laughs(6) if bomb == "laughs6" else "# deep\n" + nested(900), encoding="utf-8")
    result = cli(root, "check", "--json")
    assert result.code == 1
    problems = result.json()["error"]["problems"]
    line = 6 if bomb == "laughs6" else 2
    hit = [p for p in problems if p["file"].endswith(PLACES[place]) and p["line"] == line]
    assert hit, problems
    assert "refused" in hit[0]["message"]


def test_preview_data_files_are_bounded_too(root):
    write_groups(root, GROUPS)
    data = root / "data.yaml"
    data.write_text(laughs(9))
    result = cli(root, "templates", "preview", "weather", "--data", str(data))
    assert result.code == 1
    assert f"{data}:6: refused" in result.err
    deep = root / "data.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = cli(root, "templates", "preview", "weather", "--data", str(deep))
    assert result.code == 1
    assert "nested too deeply" in result.err


def _capped(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``cmd`` with 2 GB of address space and 60 s of CPU at most."""
    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))

    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120,
                          preexec_fn=limits, check=False)


WRAPPER = """
import resource, sys, time
from broadcaster.cli import main
t0 = time.process_time()
try:
    main(sys.argv[1:])
finally:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"BOUNDS {time.process_time() - t0:.3f} {usage.ru_maxrss}", file=sys.stderr)
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", ["laughs9", "nest50000"])
def test_the_crash_sized_inputs_in_a_subprocess(root, case):
    """9 levels of laughs passed 5 GB; 50,000 levels of nesting crashed the process."""
    write_groups(root, GROUPS)
    (root / "feeds" / "bomb.yaml").write_text(laughs(9) if case == "laughs9" else nested(50_000))
    (root / "schedules" / "bomb.yaml").write_text(nested(50_000) if case == "laughs9" else laughs(9))
    proc = _capped([sys.executable, "-c", WRAPPER, "--root", str(root), "check", "--json"], REPO)
    assert proc.returncode == 1, proc.stderr[-2000:]
    problems = json.loads(proc.stdout)["error"]["problems"]
    found = {Path(p["file"]).parent.name: (p["line"], p["message"]) for p in problems
             if Path(p["file"]).name == "bomb.yaml"}
    laughs_in, deep_in = ("feeds", "schedules") if case == "laughs9" else ("schedules", "feeds")
    assert found[laughs_in][0] == 6 and "alias" in found[laughs_in][1]
    assert found[deep_in][0] == 1 and "nest" in found[deep_in][1]
    cpu, rss_kb = proc.stderr.rsplit("BOUNDS ", 1)[1].split()
    assert float(cpu) < 20          # check of the whole root, imports included
    assert int(rss_kb) < 400_000    # well under the 1.26 GB of six levels before
