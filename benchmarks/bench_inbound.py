"""Inbound server benchmark: signed resident messages at a steady rate, every one acknowledged
and answered, on loopback only and bounded in count and time.

``serve`` runs as its own process (as in production); the platform simulator and
the load generator share this one. RATE generic-bridge messages per second for
SECONDS seconds go to GROUPS groups in turn (each group asks every GROUPS/RATE
seconds, beyond its faq cooldown), each a question the shipped faq/ answers.
Reported: acknowledgement latency (request to HTTP 200) p50/p99 and how many
took over 1 s; answer latency (request to the answer arriving at the group's
robot) p50/p99; answered/sent.

    python -m benchmarks.bench_inbound            # BENCH_INBOUND_SECONDS=10 for a short run
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from benchmarks import as_installed

REPO = Path(__file__).resolve().parent.parent
RATE = int(os.environ.get("BENCH_INBOUND_RATE", "200"))
SECONDS = int(os.environ.get("BENCH_INBOUND_SECONDS", "30"))
GROUPS = 2000
SECRET = "bench-bridge-secret-0123456789"
QUESTIONS = ["居住证怎么办理", "社保证明在哪开", "市民卡丢了怎么补", "老年卡怎么办", "垃圾分类怎么分",
             "办事大厅几点上班", "医保怎么交", "养老金认证怎么做", "新生儿落户要什么", "独生子女证明在哪开",
             "出租登记怎么办", "电动车充电桩在哪", "狗证在哪办", "家庭医生怎么签约", "停水了找谁"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _root(tmp: Path, sim) -> Path:
    root = tmp / "root"
    root.mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "faq", root / "faq")
    groups = []
    for i in range(GROUPS):
        robot = sim.add_robot("webhook", f"g{i:04d}", limits=[])
        groups.append({"id": f"g{i:04d}", "name": f"第{i}网格群", "tags": ["kind:grid"],
                       "channel": robot.config(), "chats": [f"generic:c{i:04d}"]})
    config = {"defaults": {"faq": {"threshold": 0.45, "cooldown": "1s"}},
              "inbound": {"generic": {"secret": SECRET}}, "groups": groups}
    (root / "groups.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return root


def _sign(body: bytes, ts: str) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def run() -> dict:
    from tests.simulator import PlatformSimulator

    sim = PlatformSimulator(enforce_rate_limits=False).start()
    tmp = Path(tempfile.mkdtemp())
    root = _root(tmp, sim)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), "faq", "test", "居住证"],
                   check=True, capture_output=True, env=env)   # warm the index cache, as a deploy would
    port = _free_port()
    server = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root), "serve",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "serve.log", "wb"))  # noqa: SIM115 - closed with the process
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).text == "ok":
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not start")
            time.sleep(0.1)
        return _load(url, sim, tmp)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _load(url: str, sim, tmp: Path) -> dict:
    local = threading.local()
    sent: dict[str, list[float]] = {}      # group -> send times, in order
    acks: list[float] = []
    failures = []
    lock = threading.Lock()

    def send(n: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        group = f"g{n % GROUPS:04d}"
        body = json.dumps({"chat": f"c{n % GROUPS:04d}", "message_id": f"m{n}", "mentioned": True,
                           "sender": {"id": f"u{n}", "name": "居民"},
                           "text": QUESTIONS[n % len(QUESTIONS)]}, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        start = time.time()
        try:
            r = session.post(f"{url}/inbound/generic", data=body, timeout=10,
                             headers={"X-Broadcaster-Timestamp": ts, "X-Broadcaster-Signature": _sign(body, ts)})
            ok = r.status_code == 200
        except requests.RequestException as exc:
            ok, r = False, exc
        took = time.time() - start
        with lock:
            if ok:
                acks.append(took)
                sent.setdefault(group, []).append(start)
            else:
                failures.append(str(r))

    total = RATE * SECONDS
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for n in range(total):
            delay = began + n / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, n)
    load_seconds = time.monotonic() - began
    deadline = time.monotonic() + 60
    while sim.stats()["total"] < len(acks) and time.monotonic() < deadline:
        time.sleep(0.2)
    answers = []
    for robot in sim.robots:
        times = sorted(m.at for m in robot.messages)
        for asked, got in zip(sorted(sent.get(robot.key, [])), times, strict=False):
            answers.append(got - asked)
    acks.sort()
    answers.sort()

    def pct(xs, p):
        return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")

    return {"sent": total, "acked": len(acks), "failed": len(failures), "load_s": load_seconds,
            "ack_p50": statistics.median(acks) if acks else float("nan"), "ack_p99": pct(acks, 0.99),
            "ack_over_1s": sum(1 for a in acks if a > 1.0), "answered": len(answers),
            "answer_p50": statistics.median(answers) if answers else float("nan"),
            "answer_p99": pct(answers, 0.99), "answer_max": answers[-1] if answers else float("nan")}


def main() -> None:
    r = run()
    print(f"inbound server, {RATE} signed messages/s for {SECONDS} s ({r['sent']} messages, "
          f"{GROUPS} groups; sending took {r['load_s']:.1f} s): acknowledged {r['acked']} "
          f"(failed {r['failed']}), ack p50 {r['ack_p50'] * 1000:.0f} ms, p99 {r['ack_p99'] * 1000:.0f} ms, "
          f"{r['ack_over_1s']} over 1 s; answered {r['answered']}/{r['sent']}, answer p50 "
          f"{r['answer_p50']:.2f} s, p99 {r['answer_p99']:.2f} s, max {r['answer_max']:.2f} s")


if __name__ == "__main__":
    as_installed()
    main()
