"""``python -m benchmarks.clock ISO_TIME ARGS…``: the CLI with its clock started at ISO_TIME.

The history benchmark's data is generated once for a fixed day and cached; its
read commands run as if it were that day (the clock still ticks). Only
``App.now`` is moved, which is the clock every read command uses; importing a
time-travel library would cost more start-up time than the commands measured.
"""

from __future__ import annotations

import sys
from datetime import datetime


def main() -> None:
    from broadcaster.app import App
    from broadcaster.cli import main as cli

    offset = datetime.fromisoformat(sys.argv[1]) - datetime.now().astimezone()
    real_now = App.now
    App.now = lambda self: real_now(self) + offset  # type: ignore[method-assign]
    cli(sys.argv[2:])


if __name__ == "__main__":
    main()
