"""Knowledge-base benchmark: answer quality on the held-back set, and matching speed at 2,000 entries.

- quality: the shipped faq/ against tests/data/faq_quality.tsv (colloquial questions
  with typos, none of them an entry's own example): top-1 accuracy over the
  answerable ones (target ≥ 90 %) and the share of wrong answers over all (≤ 2 %);
- speed: 2,000 generated entries; building the index (cold), loading it from
  the cache in a fresh process (imports included; target ≤ 1 s), and p50/p99
  of one question (target p99 ≤ 5 ms).

    python -m benchmarks.bench_faq
"""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import as_installed

REPO = Path(__file__).resolve().parent.parent
ENTRIES = 2000
QUESTIONS = 2000

_GROUPS = """\
defaults: {faq: {threshold: 0.45, cooldown: 10m}}
groups:
  - id: g1
    name: 测试网格群
    tags: [kind:grid]
    channel: {type: file, path: out}
"""

_TOPICS_TEXT = ("居住证 社保 医保 市民卡 老年卡 公积金 户口 出生证明 结婚登记 残疾证 低保 廉租房 退役军人 "
           "高龄补贴 养老服务 助餐点 幼儿园 入学 学区 电动车 停车位 物业费 电梯 加装电梯 垃圾分类 "
           "燃气 供暖 自来水 宽带 快递柜 疫苗 体检 核酸 献血 志愿者 党员 图书馆 健身房 游泳馆 "
           "公交卡 地铁 驾驶证 行驶证 护照 港澳通行证 身份证 临时身份证 营业执照 个体户 税务 发票 "
           "违章 噪音 装修 房产证 不动产 租赁 拆迁 安置房 公租房 人才公寓 落户 积分")
_TOPICS = _TOPICS_TEXT.split()
_ACTIONS_TEXT = "怎么办理 在哪里办 需要什么材料 多久能办好 要多少钱 网上能办吗 找谁 几点上班 过期了怎么办 丢了怎么补"
_ACTIONS = _ACTIONS_TEXT.split()
_PLACES = [f"{a}{b}" for a in "鼓楼玄武秦淮建邺栖霞雨花江宁浦口六合溧水高淳" for b in "街道社区"][:30]


def _entries_yaml(n: int, rng: random.Random) -> str:
    lines = []
    for i in range(n):
        topic = _TOPICS[i % len(_TOPICS)]
        place = _PLACES[(i // len(_TOPICS)) % len(_PLACES)]
        acts = rng.sample(_ACTIONS, 3)
        lines.append(f"- id: e{i:04d}")
        lines.append(f"  ask: [{place}{topic}{acts[0]}, {topic}{acts[1]}, {place}的{topic}{acts[2]}]")
        lines.append(f"  keywords: [{place}{topic}{i:04d}]")
        lines.append(f"  answer: 关于{place}{topic}的说明（第{i}条）")
    return "\n".join(lines) + "\n"


def _root(tmp: Path, entries: str | None) -> Path:
    root = tmp / ("gen" if entries else "shipped")
    (root / "faq").mkdir(parents=True)
    (root / "groups.yaml").write_text(_GROUPS, encoding="utf-8")
    shutil.copytree(REPO / "templates", root / "templates")
    if entries is None:
        shutil.copytree(REPO / "faq", root / "faq", dirs_exist_ok=True)
    else:
        (root / "faq" / "generated.yaml").write_text(entries, encoding="utf-8")
    return root


def quality(tmp: Path) -> dict:
    from broadcaster.app import App
    from broadcaster.faq.knowledge import Knowledge

    rows = []
    for line in (REPO / "tests" / "data" / "faq_quality.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            q, want = line.split("\t")
            rows.append((q, None if want == "-" else want))
    k = Knowledge(App(_root(tmp, None)))
    right = wrong = 0
    for q, want in rows:
        got = k.match(q, "g1").entry
        got_id = got.id if got else None
        right += got_id is not None and got_id == want
        wrong += got_id is not None and got_id != want
    answerable = sum(1 for _, w in rows if w)
    return {"questions": len(rows), "answerable": answerable, "top1": right / answerable,
            "wrong_share": wrong / len(rows)}


_LOAD = """
import time, sys
t0 = time.perf_counter()
from broadcaster.app import App
from broadcaster.faq.knowledge import Knowledge
k = Knowledge(App(sys.argv[1]))
k.match("居住证怎么办", "g1")
print(time.perf_counter() - t0)
"""


def speed(tmp: Path) -> dict:
    from broadcaster.app import App
    from broadcaster.faq.knowledge import Knowledge

    rng = random.Random(7)
    root = _root(tmp, _entries_yaml(ENTRIES, rng))
    t = time.perf_counter()
    k = Knowledge(App(root))
    build = time.perf_counter() - t
    loads = [float(subprocess.run([sys.executable, "-c", _LOAD, str(root)], capture_output=True,
                                  text=True, check=True, cwd=REPO).stdout) for _ in range(3)]
    questions = []
    for _ in range(QUESTIONS):
        topic, act, place = rng.choice(_TOPICS), rng.choice(_ACTIONS), rng.choice(_PLACES)
        q = f"请问{place}{topic}{act}啊"
        if rng.random() < 0.3:   # a typo: one character replaced by a random common one
            i = rng.randrange(len(q))
            q = q[:i] + rng.choice("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就") + q[i + 1:]
        questions.append(q)
    times, cpu = [], []
    for q in questions:
        t, c = time.perf_counter(), time.thread_time()
        k.match(q, "g1")
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    times.sort()
    cpu.sort()
    return {"entries": ENTRIES, "build_s": build, "load_s": min(loads), "load_s_max": max(loads),
            "p50_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1],
            "cpu_p99_ms": cpu[int(len(cpu) * 0.99) - 1]}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        q = quality(Path(tmp))
        print(f"faq quality: {q['questions']} held-back questions ({q['answerable']} answerable): "
              f"top-1 {q['top1']:.1%} (target ≥ 90%), wrong answers {q['wrong_share']:.1%} "
              f"of all (target ≤ 2%)")
        s = speed(Path(tmp))
        print(f"faq matching, {s['entries']} entries: index build (cold) {s['build_s']:.2f} s; "
              f"load from cache in a fresh process {s['load_s']:.2f} s (max of 3: "
              f"{s['load_s_max']:.2f} s; target ≤ 1 s); per question p50 {s['p50_ms']:.2f} ms, "
              f"p99 {s['p99_ms']:.2f} ms wall, {s['cpu_p99_ms']:.2f} ms CPU (target p99 ≤ 5 ms)")


if __name__ == "__main__":
    as_installed()
    main()
