"""Content benchmark: one news run over 100 feeds × 50 items, one weather run for 2,000
groups at 40 distinct locations, on loopback servers. Prints time and HTTP requests
(target: one request per feed / per location).

    python -m benchmarks.bench_content
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from benchmarks import as_installed

REPO = Path(__file__).resolve().parent.parent
FEEDS, ITEMS = 100, 50
GROUPS, LOCATIONS = 2000, 40


class _Server:
    def __init__(self):
        self.requests = 0
        self.round = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with lock:
                    outer.requests += 1
                parts = urlsplit(self.path)
                if parts.path.startswith("/feed/"):
                    body = outer.feed(int(parts.path.rsplit("/", 1)[1].split(".")[0]))
                else:
                    q = parse_qs(parts.query)
                    body = outer.forecast(float(q["latitude"][0]))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def feed(self, n: int) -> bytes:
        items = "".join(
            f"<item><title>第{n}号来源 新闻{self.round}-{i}</title>"
            f"<link>https://news.example/{n}/{self.round}/{i}</link>"
            f"<guid>{n}-{self.round}-{i}</guid>"
            f"<pubDate>Sun, 22 Nov 2026 0{i % 10}:00:00 +0800</pubDate>"
            f"<description>&lt;p&gt;鼓楼区街道动态摘要 {i}&lt;/p&gt;</description></item>"
            for i in range(ITEMS)
        )
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                f"<title>来源{n}</title>{items}</channel></rss>").encode()

    def forecast(self, lat: float) -> bytes:
        return json.dumps({
            "current": {"temperature_2m": 9.5, "weather_code": 2},
            "daily": {"time": ["2026-11-22", "2026-11-23", "2026-11-24"],
                      "weather_code": [2, 61, 3], "temperature_2m_max": [15, 12, 10],
                      "temperature_2m_min": [6, 8, 4],
                      "precipitation_probability_max": [10, 70, 20]},
        }).encode()

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _project(root: Path, url: str) -> None:
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "feeds").mkdir()
    (root / "schedules").mkdir()
    lines = ["groups:"]
    for i in range(GROUPS):
        lat = 31.9 + (i % LOCATIONS) / 100
        lines.append(f"  - {{id: g{i:04d}, name: 网格群{i}, tags: [street:s{i % 20}], "
                     f"channel: {{type: file, path: out}}, "
                     f"location: {{name: 点位{i % LOCATIONS}, lat: {lat:.2f}, lon: 118.78}}}}")
    (root / "groups.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    news = ["news:"] + [
        f"  - {{id: f{n:03d}, url: '{url}/feed/{n}.xml', to: [street:s{n % 20}]}}"
        for n in range(FEEDS)
    ]
    (root / "feeds" / "news.yaml").write_text("\n".join(news) + "\n", encoding="utf-8")
    (root / "feeds" / "weather.yaml").write_text(
        f"weather: {{provider: open-meteo, base_url: '{url}', alerts: true}}\n", encoding="utf-8")
    (root / "schedules" / "bench.yaml").write_text(
        "jobs:\n"
        "  - {id: news, cron: '0 8 * * *', content: news, to: [all], options: {max_items: 5}}\n"
        "  - {id: weather, cron: '0 7 * * *', content: weather, to: [all]}\n",
        encoding="utf-8")


def main() -> None:
    from broadcaster.app import App
    from broadcaster.schedule.scheduler import run_job

    with tempfile.TemporaryDirectory() as tmp, _Server() as srv:
        root = Path(tmp) / "root"
        root.mkdir()
        _project(root, srv.url)
        app = App(root, Path(tmp) / "state")
        now = datetime.now(app.tz)
        run_job(app, "news", now)                 # first read: the back catalogue is remembered
        srv.round, srv.requests = 1, 0
        t0 = time.perf_counter()
        ids = run_job(app, "news", now)          # every feed now has 50 new items
        news_s = time.perf_counter() - t0
        news_req = srv.requests
        srv.requests = 0
        t0 = time.perf_counter()
        wids = run_job(app, "weather", now)
        weather_s = time.perf_counter() - t0
        print(f"news:    {FEEDS} feeds x {ITEMS} items -> {len(ids)} announcement(s) "
              f"in {news_s:.2f}s, {news_req} HTTP requests (target {FEEDS})")
        print(f"weather: {GROUPS} groups at {LOCATIONS} locations -> {len(wids)} announcement(s) "
              f"in {weather_s:.2f}s, {srv.requests} HTTP requests (target {LOCATIONS})")


if __name__ == "__main__":
    as_installed()
    main()
