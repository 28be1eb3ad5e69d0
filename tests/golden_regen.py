"""Regenerate tests/golden/: the payloads each shipped template gives on each channel.

Run only on purpose, then review the diff: ``python -m tests.golden_regen`` (``make golden``).
``tests/test_golden.py`` fails whenever a template, a filter or a channel adapter
changes what residents would receive.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"

# A Monday whose festivals of the next twelve months all fall in 2026, a year whose
# statutory days off are published (so the golden files do not depend on guesses).
NOW = datetime(2025, 12, 29, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def golden(templates, name: str) -> dict:
    """What ``templates preview NAME`` shows for the sample group on every channel."""
    from broadcaster.templating.preview import preview

    result = preview(templates, name, now=NOW)
    return {
        "template": name,
        "kind": result.kind,
        "now": result.now.isoformat(),
        "channels": {
            cp.channel: {
                "file": cp.resolution.file.filename,
                "parts": [p.payload for p in cp.parts],
                "sizes": [p.size for p in cp.parts],
                "limit": cp.limit,
            }
            for cp in result.channels
        },
    }


def dump(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"


def main() -> int:
    from broadcaster.templating import Templates

    templates = Templates(REPO)
    GOLDEN.mkdir(exist_ok=True)
    wanted = set()
    for name in templates.names():
        path = GOLDEN / f"{name}.json"
        wanted.add(path)
        text = dump(golden(templates, name))
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    for stale in set(GOLDEN.glob("*.json")) - wanted:
        stale.unlink()
        print(f"removed {stale.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
