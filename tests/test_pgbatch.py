"""Group commit (broadcaster.store.pgbatch): calls of many threads, one flush each batch."""

from __future__ import annotations

import threading
import time

import pytest

from broadcaster.store.pgbatch import Batch


def run_threads(n, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


def test_every_caller_gets_its_own_answer_and_waiting_callers_share_a_flush():
    flushes = []

    def flush(items):
        flushes.append(list(items))
        time.sleep(0.02)                 # a round trip: callers queue meanwhile
        return [i * 10 for i in items]

    batch = Batch(flush)
    answers = {}

    def call(i):
        for k in range(5):
            answers[(i, k)] = batch.call(i * 100 + k)

    run_threads(16, call)
    assert answers == {(i, k): (i * 100 + k) * 10 for i in range(16) for k in range(5)}
    assert sorted(x for f in flushes for x in f) == sorted(i * 100 + k for i in range(16)
                                                          for k in range(5))
    assert len(flushes) < 80 / 2, "calls waiting together went in one flush"


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_goes_on():
    gate = threading.Event()
    calls = []

    def flush(items):
        calls.append(list(items))
        if len(calls) == 1:
            gate.wait(5)                 # the others queue behind the first flush
            return ["first"]
        if len(calls) == 2:
            raise OSError("connection lost")
        return ["ok"] * len(items)

    batch = Batch(flush, limit=3)
    results = {}

    def call(i):
        try:
            results[i] = batch.call(i)
        except OSError as exc:
            results[i] = str(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not calls:
        time.sleep(0.001)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 6)]
    for t in others:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in [first, *others]:
        t.join(timeout=10)
    assert results[0] == "first"
    assert len(calls[1]) == 3 and all(results[i] == "connection lost" for i in calls[1])
    assert all(results[i] == "ok" for i in calls[2])
    assert sorted(results) == list(range(6))


def test_a_flush_answering_the_wrong_number_of_calls_is_an_error():
    with pytest.raises(RuntimeError, match="0 answers to 1 calls"):
        Batch(lambda items: []).call("x")
