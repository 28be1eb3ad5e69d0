"""The benchmarks' lean WeCom stand-in answers what the WeCom channel takes as sent."""

from __future__ import annotations

import subprocess
import sys

import requests

from broadcaster import channels
from tests.conftest import REPO


def test_the_lean_responder_answers_wecom_sends_on_kept_alive_connections():
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.responder", "--latency-ms", "5"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip()
        cls = channels.get("wecom")
        ch = cls(cls.Config.model_validate(
            {"type": "wecom", "url": f"{base}/cgi-bin/webhook/send?key=k1"}), "g1",
            timeout=(2.0, 5.0))
        results = [ch.send(part) for part in ch.render("停水通知 " * 700, title="通知")]
        assert len(results) == 3 and all(r.outcome == "sent" for r in results), results
        assert requests.get(f"{base}/count", timeout=5).text == "3"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
