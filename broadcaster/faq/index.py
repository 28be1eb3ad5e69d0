"""Finding the entry a resident's question is about.

In this order:

1. **keywords and regexes win**: an entry whose keyword is in the message
   (literally, or spelled the same in pinyin with at least half its characters
   right: 巨住证 finds 居住证) or whose regex matches is the answer, score 1.0;
   of several, the longest keyword;
2. **similar questions**: BM25 (bm25s) over words, character bigrams and
   pinyin bigrams ranks the entries; the best few are scored by how much of the
   question they cover (IDF-weighted pinyin bigrams, so a typo costs little)
   and by fuzzy similarity (rapidfuzz) to their example questions. The best
   answers if its score reaches the threshold and clearly beats the runner-up
   (a wrong answer is worse than none).

The index (segmented entries, vocabulary) is built once per content of faq/ and
kept in ``<state>/cache`` (``faq-index-<digest>.json``): loading it takes a
fraction of a second; building it loads jieba's full dictionary.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broadcaster.faq import text as T
from broadcaster.faq.entries import Entry, KnowledgeBase

ALGO = 5                 # bump when features or the cache layout change
CANDIDATES = 8
MARGIN = 0.08            # the best must beat the runner-up by this much (below a sure score)
SURE = 0.85
W_COVER, W_FUZZY = 0.7, 0.3
UNKNOWN_WEIGHT = 0.5      # a word the knowledge base never uses says less than a rare one it does


@dataclass(frozen=True)
class Match:
    entry: Entry | None
    score: float
    via: str          # keyword | regex | similar | none

    def as_json(self) -> dict:
        return {"entry": self.entry.id if self.entry else None, "score": round(self.score, 3),
                "via": self.via}


NO_MATCH = Match(None, 0.0, "none")


class Index:
    def __init__(self, kb: KnowledgeBase, data: dict, cache_dir: Path, speller: T.Speller):
        import bm25s  # start-up time: loaded when first used

        self.kb = kb
        self.entries = kb.entries
        self.speller = speller
        self.segmenter = T.Segmenter(data["vocab"], cache_dir)
        docs: list[list[str]] = data["docs"]
        self.doc_sets = [frozenset(d) for d in docs]
        self.asks = data["asks"]
        self.bm25 = bm25s.BM25()
        self.bm25.index(docs or [["-"]], show_progress=False)
        df = Counter(f for s in self.doc_sets for f in s)
        n = max(1, len(docs))
        self.idf = {f: math.log(1 + (n - c + 0.5) / (c + 0.5)) for f, c in df.items()}
        self.idf_unknown = UNKNOWN_WEIGHT * math.log(1 + (n + 0.5) / 0.5)
        self.keywords: dict[str, list[tuple[tuple[str, ...], str, int]]] = {}
        for i, entry in enumerate(self.entries):
            for kw in entry.keywords:
                norm = T.compact(kw)
                if not norm:
                    continue
                syl = tuple(speller.syllables(norm))
                head = syl[0] + (syl[1] if len(syl) > 1 else "")
                self.keywords.setdefault(head, []).append((syl, norm, i))
        self.regexes = [(re.compile(p), i) for i, e in enumerate(self.entries) for p in e.regex]

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, kb: KnowledgeBase, cache_dir: Path) -> Index:
        speller = T.Speller.cached(cache_dir)
        path = cache_dir / f"faq-index-{ALGO}-{kb.digest[:24]}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = build(kb, speller, cache_dir)
            T._write(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        return cls(kb, data, cache_dir, speller)

    # -- matching ------------------------------------------------------------------------
    def match(self, text: str, allowed: Callable[[Entry], bool] = lambda e: True) -> Match:
        text = text[:2000]
        hit = self._keyword(text, allowed)
        if hit is not None:
            return hit
        ranked = self.rank(text, allowed)
        if not ranked:
            return NO_MATCH
        best_score, best = ranked[0]
        second = ranked[1][0] if len(ranked) > 1 else 0.0
        if best_score < SURE and best_score - second < MARGIN:
            return Match(None, best_score, "none")  # two entries fit about as well: ask again
        return Match(self.entries[best], best_score, "similar")

    def rank(self, text: str, allowed: Callable[[Entry], bool]) -> list[tuple[float, int]]:
        """(score, entry index) of the best candidates, best first."""
        import numpy as np  # start-up time: loaded when first used

        feats = T.features(text, self.segmenter, self.speller)
        if not feats or not self.entries:
            return []
        scores = self.bm25.get_scores(feats)
        k = min(CANDIDATES, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        qset = set(feats)
        spelled = self._spelled(text)
        out = []
        for i in top:
            i = int(i)
            if scores[i] <= 0 or not allowed(self.entries[i]):
                continue
            out.append((self._score(qset, i, spelled), i))
        out.sort(reverse=True)
        return out

    def _score(self, qset: set[str], i: int, spelled: str) -> float:
        from rapidfuzz import fuzz  # start-up time: loaded when first used

        doc = self.doc_sets[i]
        pin = [f for f in qset if f.startswith("p:")] or [f for f in qset if f.startswith("w:")]
        total = sum(self.idf.get(f, self.idf_unknown) for f in pin)
        covered = sum(self.idf[f] for f in pin if f in doc)
        cover = covered / total if total else 0.0
        fuzzy = max((fuzz.token_sort_ratio(spelled, a) for a in self.asks[i]), default=0) / 100
        return W_COVER * cover + W_FUZZY * fuzzy

    def _spelled(self, text: str) -> str:
        _, chunks = self.segmenter.chunks(text)
        return " ".join(self.speller.spell(c) for c in chunks)

    def _keyword(self, text: str, allowed: Callable[[Entry], bool]) -> Match | None:
        norm = T.compact(text)
        syl = self.speller.syllables(norm)
        best: tuple[int, int] | None = None     # (length, entry index)
        for pos in range(len(syl)):
            heads = {syl[pos] + (syl[pos + 1] if pos + 1 < len(syl) else ""), syl[pos]}
            for head in heads:
                for kw_syl, kw, i in self.keywords.get(head, ()):
                    n = len(kw_syl)
                    if tuple(syl[pos:pos + n]) != kw_syl:
                        continue
                    same = sum(a == b for a, b in zip(norm[pos:pos + n], kw, strict=False))
                    if same * 2 < n or (n == 1 and same != 1):
                        continue
                    if (best is None or n > best[0]) and allowed(self.entries[i]):
                        best = (n, i)
        if best is not None:
            return Match(self.entries[best[1]], 1.0, "keyword")
        for pattern, i in self.regexes:
            if pattern.search(T.normalize(text)) and allowed(self.entries[i]):
                return Match(self.entries[i], 1.0, "regex")
        return None


def build(kb: KnowledgeBase, speller: T.Speller, cache_dir: Path) -> dict:
    """Segment every entry (jieba's full dictionary finds the words) and spell its questions."""
    texts = [t for e in kb.entries for t in (*e.ask, *e.keywords)]
    vocab = T.full_cut(texts) | {T.compact(k) for e in kb.entries for k in e.keywords if T.compact(k)}
    segmenter = T.Segmenter(vocab, cache_dir)
    docs, asks = [], []
    for e in kb.entries:
        feats: list[str] = []
        for q in e.ask:
            feats.extend(T.features(q, segmenter, speller))
        for k in e.keywords:
            feats.extend(T.features(k, segmenter, speller) * 2)
        docs.append(feats)
        spelled = []
        for q in (*e.ask, *e.keywords):
            _, chunks = segmenter.chunks(q)
            spelled.append(" ".join(speller.spell(c) for c in chunks))
        asks.append(spelled)
    return {"algo": ALGO, "digest": kb.digest, "vocab": sorted(vocab), "docs": docs, "asks": asks}
