"""Chinese text as the matcher sees it: normalised, segmented, and spelled in pinyin.

- ``normalize``: NFKC (full-width to half-width), lower case, no @-mentions;
- ``Speller``: character -> toneless pinyin, from pypinyin's table (its first
  reading), kept as one small JSON file so that start-up does not import the
  whole table; homophone typos (巨住证 / 居住证, 拉圾 / 垃圾) spell the same;
- ``Segmenter``: jieba, with a dictionary of the knowledge base's own words
  (found once with jieba's full dictionary when the index is built), so that
  entries and questions are cut the same way and start-up stays fast;
- ``features``: the bag a text is ranked by: words, character bigrams and
  pinyin bigrams (the last ones survive homophone typos).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9]+")
_MENTION = re.compile(r"@\S+\s+|<@[^>]*>")
# Words that say nothing about which question is asked.
_STOPWORDS_TEXT = (
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 啦 咯 喔 噢 是 在 我 你 他 她 们 我们 你们 这 那 这个 那个 有 没 没有 "
    "要 想 请问 问 问下 问一下 一下 请 谢谢 麻烦 帮 帮忙 能 能不能 可以 可不可以 怎么 怎么样 怎样 如何 什么 啥 "
    "哪 哪里 哪儿 哪个 去 到 办 办理 弄 搞 需要 得 还 也 都 就 又 和 跟 与 及 或 个 一个 一 下 多少 几 "
    "现在 今天 家里 自己 知道 告诉 大家 老师 同志 小区 社区 网格员 机器人 上 中 里 为什么 会 吧 呗 咋 咋办 "
    "该 应该 给 让 被 把 对 从 向 着 过 得 地 所以 因为 如果 但是 还是 已经 不 不是 是不是 有没有 "
    "怎么办 怎么弄 怎么搞 咋弄 咋整 在哪 在哪儿 去哪 去哪儿 去哪里 哪里办 哪儿办 要不要 可以吗 行不行 "
    "吗啊 啊啊 谁 找谁 一般 大概 具体 情况 问题 事情 东西 地方 时候 那边 这边 里面 请教 各位"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return _MENTION.sub(" ", text).strip()


def compact(text: str) -> str:
    """Only the letters, digits and Chinese characters of ``text`` (for fuzzy comparison)."""
    return "".join(_RUNS.findall(normalize(text)))


# -- pinyin ------------------------------------------------------------------------

TABLE_VERSION = 2   # bump when the spelling rules change

def _toneless(reading: str) -> str:
    plain = unicodedata.normalize("NFD", reading)
    out = "".join(c for c in plain if not unicodedata.combining(c))
    return fuzzy_syllable(out.replace("ü", "v"))


_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def fuzzy_syllable(syl: str) -> str:
    """A syllable with the sounds many speakers merge merged (模糊音): zh/z, ch/c, sh/s,
    n/l (Nanjing says 南 as "lan"), -ng/-n; typing by ear confuses exactly these."""
    for a, b in _FUZZY_INITIALS:
        if syl.startswith(a):
            syl = b + syl[len(a):]
            break
    for a, b in _FUZZY_FINALS:
        if syl.endswith(a):
            return syl[: -len(a)] + b
    return syl


def build_pinyin_table() -> dict[str, str]:
    """Every character pypinyin knows -> its first reading, toneless (``居`` -> ``ju``)."""
    from pypinyin.pinyin_dict import pinyin_dict  # start-up time: loaded when first used

    return {chr(cp): _toneless(readings.split(",")[0]) for cp, readings in pinyin_dict.items()
            if CJK.match(chr(cp))}


class Speller:
    def __init__(self, table: dict[str, str]):
        self.table = table

    @classmethod
    def cached(cls, cache_dir: Path) -> Speller:
        """The table from ``cache_dir`` (written on first use, keyed by pypinyin's version)."""
        from importlib.metadata import version  # start-up time: loaded when first used

        path = cache_dir / f"pinyin-{TABLE_VERSION}-{version('pypinyin')}.json"
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            table = build_pinyin_table()
            _write(path, json.dumps(table, ensure_ascii=False, separators=(",", ":")))
            return cls(table)

    def syllables(self, text: str) -> list[str]:
        """One syllable per Chinese character (a character it does not know spells itself)."""
        return [self.table.get(c, c) for c in text]

    def spell(self, text: str) -> str:
        return " ".join(self.table.get(c, c) for c in text)


# -- segmentation --------------------------------------------------------------------

def import_jieba():
    """jieba, without the ``pkg_resources`` import it makes only to open its own data files.

    That import alone can take longer than loading the whole index; blocked, jieba
    falls back to plain ``open()`` of the same files.
    """

    if "jieba" in sys.modules:
        return sys.modules["jieba"]
    blocked = "pkg_resources" not in sys.modules
    if blocked:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]
    try:
        import jieba  # start-up time: loaded when first used
    finally:
        if blocked:
            del sys.modules["pkg_resources"]
    return jieba


def full_cut(texts: Iterable[str]) -> set[str]:
    """The words of ``texts`` by jieba's full dictionary (slow to load: used when building)."""
    jieba = import_jieba()

    jieba.setLogLevel(logging.WARNING)
    words: set[str] = set()
    for text in texts:
        for word in jieba.lcut(normalize(text)):
            if len(word) >= 2 and CJK.search(word):
                words.add(word)
    return words


class Segmenter:
    """jieba with the knowledge base's words as its dictionary."""

    def __init__(self, words: Iterable[str], cache_dir: Path):
        jieba = import_jieba()
        jieba.setLogLevel(logging.WARNING)
        vocab = sorted(set(words))
        digest = hashlib.sha256("\n".join(vocab).encode()).hexdigest()[:16]
        path = cache_dir / f"faq-words-{digest}.txt"
        if not path.exists():
            _write(path, "".join(f"{w} {max(3, 1000 // len(w))}\n" for w in vocab) or "的 1\n")
        self.tokenizer = jieba.Tokenizer(dictionary=str(path))
        self.tokenizer.tmp_dir = str(cache_dir)
        self.tokenizer.cache_file = f"jieba-{digest}.cache"
        self.tokenizer.initialize()

    def chunks(self, text: str) -> tuple[list[str], list[str]]:
        """(words, chunks): the words that are not stop words, and the runs of text they form."""
        words: list[str] = []
        chunks: list[str] = []
        for run in _RUNS.findall(normalize(text)):
            if not CJK.match(run):
                words.append(run)
                continue
            chunk = ""
            for w in self.tokenizer.lcut(run, HMM=True):
                if w in STOPWORDS:
                    if chunk:
                        chunks.append(chunk)
                    chunk = ""
                else:
                    words.append(w)
                    chunk += w
            if chunk:
                chunks.append(chunk)
        return words, chunks


def features(text: str, segmenter: Segmenter, speller: Speller) -> list[str]:
    """The bag ``text`` is ranked by (repeats kept: BM25 counts them)."""
    words, chunks = segmenter.chunks(text)
    out = [f"w:{w}" for w in words]
    for chunk in chunks:
        spelled = speller.syllables(chunk)
        out.extend(f"c:{chunk[i:i + 2]}" for i in range(len(chunk) - 1))
        out.extend(f"p:{spelled[i]}{spelled[i + 1]}" for i in range(len(chunk) - 1))
    return out


def _write(path: Path, text: str) -> None:
    from broadcaster.store import StoreError, atomic_write  # start-up time: loaded when first used
    from broadcaster.store.durable import make_dirs  # start-up time: loaded when first used

    try:
        make_dirs(path.parent)
        atomic_write(path, text.encode("utf-8"))
    except (OSError, StoreError):
        pass  # a cache that cannot be written only makes the next start slower
