"""Headless Chromium driven over the DevTools protocol, to look at pages as people do.

``Browser.open(url)`` loads a page at a phone's size and returns a ``Visit``: the
console messages, uncaught exceptions and log errors seen while it loaded,
every URL it requested, a full-page PNG screenshot, and ``evaluate(js)`` for
reading the rendered DOM. Chromium is Debian's ``chromium`` package (``make
test`` installs it when missing); ``find_chromium()`` is None without it.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PHONE = {"width": 412, "height": 915, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}
START_TIMEOUT = 20.0
LOAD_TIMEOUT = 20.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Visit:
    console: list[dict] = field(default_factory=list)      # {"type", "text"}
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    charts: list[dict] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return ([f"console.{c['type']}: {c['text']}" for c in self.console
                 if c["type"] in ("error", "assert", "warning")]
                + self.exceptions + self.log_errors)


class Browser:
    def __init__(self, binary: str):
        self.binary = binary
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             "--disable-background-networking", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = self._port()
        self._ids = itertools.count(1)

    def _port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if marker.exists():
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited at start ({self.proc.returncode})")
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one page ------------------------------------------------------------------
    def open(self, url: str, charts_js: str | None = None, metrics: dict = PHONE) -> Visit:
        import requests
        import websocket

        target = requests.put(f"http://127.0.0.1:{self.port}/json/new?about:blank", timeout=10).json()
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=LOAD_TIMEOUT,
                                         suppress_origin=True)
        visit = Visit()
        try:
            for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
                self._call(ws, visit, method)
            self._call(ws, visit, "Emulation.setDeviceMetricsOverride", metrics)
            self._call(ws, visit, "Page.navigate", {"url": url})
            self._wait_event(ws, visit, "Page.loadEventFired")
            if charts_js:
                visit.charts = self.evaluate(ws, visit, charts_js)
            size = self._call(ws, visit, "Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = self._call(ws, visit, "Page.captureScreenshot",
                              {"format": "png", "captureBeyondViewport": True, "clip": clip})
            visit.screenshot = base64.b64decode(shot["data"])
        finally:
            ws.close()
        return visit

    def evaluate(self, ws, visit: Visit, expression: str):
        answer = self._call(ws, visit, "Runtime.evaluate",
                            {"expression": f"JSON.stringify({expression})", "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"evaluate failed: {answer['exceptionDetails']}")
        return json.loads(answer["result"]["value"])

    def _call(self, ws, visit: Visit, method: str, params: dict | None = None) -> dict:
        msg_id = next(self._ids)
        ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(visit, msg)

    def _wait_event(self, ws, visit: Visit, name: str) -> None:
        deadline = time.monotonic() + LOAD_TIMEOUT
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            self._event(visit, msg)
            if msg.get("method") == name:
                return
        raise TimeoutError(f"no {name} within {LOAD_TIMEOUT} s")

    @staticmethod
    def _event(visit: Visit, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            visit.console.append({"type": params.get("type"), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            visit.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                visit.log_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            visit.requests.append(params.get("request", {}).get("url", ""))

