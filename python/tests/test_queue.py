"""mpqueue.Queue against multiprocessing.Queue's behaviour, with real fork children."""

import os
import pickle
import queue
import threading
import time

import pytest

import mpqueue
from conftest import join_or_kill


def _echo(inq, outq):
    while True:
        item = inq.get(timeout=10)
        if item is None:
            break
        outq.put(("echo", item))
    for i in range(10, 20):
        outq.put(i)


def test_put_get_across_fork_process(ctx):
    inq, outq = mpqueue.Queue(), mpqueue.Queue()
    p = ctx.Process(target=_echo, args=(inq, outq))
    p.start()
    items = [1, "two", {"three": [3.0]}, b"\x00" * 100_000, None]
    for item in items:
        inq.put(item)
    for item in items[:-1]:
        assert outq.get(timeout=10) == ("echo", item)
    assert [outq.get(timeout=10) for _ in range(10)] == list(range(10, 20))
    assert join_or_kill(p, 10) == 0
    assert outq.empty() and outq.qsize() == 0


def test_queue_exceptions_are_the_standard_librarys():
    assert mpqueue.Full is queue.Full
    assert mpqueue.Empty is queue.Empty


def test_full_with_timeouts():
    q = mpqueue.Queue(2)
    assert q.maxsize == 2
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2 and not q.empty()
    for call in (lambda: q.put_nowait(3), lambda: q.put(3, False), lambda: q.put(3, False, 5),
                 lambda: q.put(3, True, -1), lambda: q.put(3, timeout=0)):
        t = time.monotonic()
        with pytest.raises(queue.Full):
            call()
        assert time.monotonic() - t < 1.0
    t = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.3)
    assert 0.25 <= time.monotonic() - t < 5
    assert q.qsize() == 2
    assert q.get() == 1 and q.get() == 2


def test_empty_with_timeouts():
    q = mpqueue.Queue()
    for call in (q.get_nowait, lambda: q.get(False), lambda: q.get(False, 5),
                 lambda: q.get(True, -1), lambda: q.get(timeout=0)):
        t = time.monotonic()
        with pytest.raises(queue.Empty):
            call()
        assert time.monotonic() - t < 1.0
    t = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(True, 0.2)
    assert 0.15 <= time.monotonic() - t < 5
    with pytest.raises(ValueError):
        q.get(timeout=float("nan"))


def test_qsize_empty_full():
    q = mpqueue.Queue()
    assert (q.qsize(), q.empty(), q.full()) == (0, True, False)
    q.put(1)
    assert (q.qsize(), q.empty()) == (1, False)  # counted at once, unlike CPython's empty()
    q.put(2)
    assert q.qsize() == 2
    q.get()
    assert q.qsize() == 1
    q.get()
    assert (q.qsize(), q.empty()) == (0, True)


def test_closed_queue_raises_value_error():
    q = mpqueue.Queue()
    q.put(1)
    q.close()
    q.close()  # twice is fine
    calls = [lambda: q.put(2), lambda: q.put_nowait(2), lambda: q.get(), lambda: q.get_nowait(),
             lambda: q.get(timeout=1), lambda: q.put_many([1]), lambda: q.get_many()]
    for call in calls:
        with pytest.raises(ValueError, match="is closed"):
            call()
    q.join_thread()
    assert q.qsize() == 1  # still readable by others; qsize/empty keep working


def test_join_thread_before_close_asserts():
    q = mpqueue.Queue()
    with pytest.raises(AssertionError, match="not closed"):
        q.join_thread()
    q.cancel_join_thread()
    q.close()
    q.join_thread()


class NotPicklable:
    def __reduce__(self):
        raise AttributeError("no pickling here")


def test_unpicklable_object_raises_in_put():
    q = mpqueue.Queue(1)
    with pytest.raises(AttributeError, match="no pickling here"):
        q.put(NotPicklable())
    with pytest.raises((pickle.PicklingError, AttributeError)):
        q.put(lambda: 0)
    assert q.qsize() == 0 and not q.full()
    q.put(True)  # the queue goes on
    assert q.get(timeout=5) is True


def test_items_are_pickled_at_put():
    q = mpqueue.Queue()
    item = [1]
    q.put(item)
    item.append(2)  # CPython's feeder may pickle after this; mpqueue pickled in put
    assert q.get(timeout=5) == [1]


def test_batches_keep_order_and_are_all_or_nothing():
    q = mpqueue.Queue(5)
    q.put_many([1, 2, 3])
    with pytest.raises(queue.Full):
        q.put_many([4, 5, 6], timeout=0.05)
    assert q.qsize() == 3
    q.put_many(iter([4, 5]))
    assert q.get_many(max_messages_to_get=2) == [1, 2]
    assert q.get_many(timeout=1) == [3, 4, 5]
    with pytest.raises(queue.Empty):
        q.get_many(timeout=0.05)
    with pytest.raises(ValueError):
        q.get_many(max_messages_to_get=0)
    with pytest.raises(ValueError, match="never fit"):
        q.put_many(range(6))  # more than maxsize: it would wait for ever
    with pytest.raises(AttributeError):
        q.put_many([1, NotPicklable()])
    assert q.qsize() == 0


def test_named_queue_open():
    q = mpqueue.Queue(name="pytest-named", label="ignored-for-named")
    other = mpqueue.Queue.open("pytest-named")
    other.put({"x": 1})
    assert q.get(timeout=5) == {"x": 1}
    with pytest.raises(FileNotFoundError):
        mpqueue.Queue.open("pytest-no-such-queue")
    with pytest.raises(FileExistsError):
        mpqueue.Queue(name="pytest-named")
    with pytest.raises(ValueError):
        mpqueue.Queue(name="bad/name")


def test_pickling_outside_process_start_raises():
    # As CPython's queues: only multiprocessing's process start may pickle a queue.
    for q in [mpqueue.Queue(), mpqueue.JoinableQueue(), mpqueue.SimpleQueue()]:
        with pytest.raises(RuntimeError, match="only be shared between processes through inheritance"):
            pickle.dumps(q)
    with pytest.raises(RuntimeError):
        mpqueue.Queue().put(mpqueue.Queue())


def test_stats_counts():
    q = mpqueue.Queue(7, label="pytest-stats")
    q.put_many(list(range(5)))
    q.get()
    s = q.stats()
    assert (s["name"], s["maxsize"], s["puts"], s["gets"], s["size"]) == ("pytest-stats", 7, 5, 1, 4)
    assert s["alive"] and any(p["pid"] == os.getpid() for p in s["processes"])


def test_a_long_wait_is_one_call_in_the_stats():
    # The binding checks for signals while a call waits, but the queue sees one call: one
    # empty (full) event, and a timeout only when the caller's timeout passes.
    q = mpqueue.Queue(1, label="pytest-one-call")
    # The item comes after more than three of the binding's signal-check intervals.
    late = threading.Timer(0.35, q.put, ("late",))
    late.start()
    assert q.get(timeout=30) == "late"
    late.join()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.35)
    q.put("fill")
    with pytest.raises(queue.Full):
        q.put("more", timeout=0.35)
    s = q.stats()
    assert (s["empty_events"], s["get_timeouts"]) == (2, 1)
    assert (s["full_events"], s["put_timeouts"]) == (1, 1)


class _Tagged(bytes):
    pass


def test_bytes_items_are_pickled_as_pickle_pickles_them():
    # `bytes` items are pickled and unpickled without calling pickle (the commonest item);
    # what travels is exactly pickle.dumps(item, HIGHEST_PROTOCOL), and anything else,
    # a subclass of bytes or another protocol's pickle included, goes through pickle.
    q = mpqueue.Queue(name="pytest-pickled")
    raw = mpqueue.Queue.open("pytest-pickled", items="bytes")
    sizes = [0, 1, 64, 255, 256, 65535, 65536, 70000]
    for n in sizes:
        item = bytes(range(256)) * (n // 256) + bytes(n % 256)
        q.put(item)
        assert raw.get(timeout=30) == pickle.dumps(item, pickle.HIGHEST_PROTOCOL), n
    others = [pickle.dumps(b"old", 2), pickle.dumps(b"four", 4), pickle.dumps(_Tagged(b"t")),
              pickle.dumps(bytearray(b"ba")), pickle.dumps("text")]
    for p in others:
        raw.put(p)
        got = q.get(timeout=30)
        assert got == pickle.loads(p) and type(got) is type(pickle.loads(p))
    q.put(_Tagged(b"sub"))
    assert type(q.get(timeout=30)) is _Tagged


def test_stats_are_the_queues_own(tmp_path, monkeypatch):
    # Two anonymous queues with one label, and a queue made in another directory: each
    # queue's stats() are its own.
    a, b = mpqueue.Queue(label="pytest-twin"), mpqueue.Queue(label="pytest-twin")
    b.put_many([1, 2])
    assert (a.stats()["puts"], b.stats()["puts"]) == (0, 2)
    with monkeypatch.context() as m:
        m.setenv("MPQUEUE_DIR", str(tmp_path / "elsewhere"))
        elsewhere = mpqueue.SimpleQueue(name="pytest-elsewhere")
    elsewhere.put("x")
    assert (elsewhere.stats()["name"], elsewhere.stats()["puts"]) == ("pytest-elsewhere", 1)
