"""broadcaster's benchmarks: ``python -m benchmarks`` runs them all, ``python -m
benchmarks.bench_NAME`` one; each prints ratios measured in one run."""

from __future__ import annotations

import os


def as_installed() -> None:
    """Let the commands a benchmark starts write and use bytecode, as an installed copy
    does (pip compiles it when installing; a checkout writes it on its first run).
    ``PYTHONDONTWRITEBYTECODE``, set by some shells and CI images, would have every
    process compile broadcaster's modules again: 0.04-0.06 s of each ``announce`` and
    ``run-once`` of the fan-out benchmark (measured 2026-12-06)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
