"""The knowledge base the bot answers residents from (``<root>/faq``).

- ``entries``: the YAML files and answer files, validated (``file:line``);
- ``text``: normalisation, jieba segmentation, pinyin spelling;
- ``index``: matching (keywords and regexes first, then BM25 + coverage + fuzzy);
- ``knowledge``: ``Knowledge(app)``: scope, threshold, cooldown, rendered answers;
- ``misses``: addressed questions nothing answered, grouped for staff.

Nothing here is imported by ``run-once`` or ``announce``: jieba, bm25s,
rapidfuzz and the pinyin table load only where questions are matched.
"""
