"""CPython's queue tests, ported: `_TestQueue`, `_TestJoinableQueue` (`test_task_done`) and
`TestSimpleQueue` from `Lib/test/_test_multiprocessing.py` (3.11-3.14), run against
`mpqueue` under the `fork`, `spawn` and `forkserver` start methods (the `ctx` fixture).

Each test keeps CPython's setup and assertions. Where mpqueue deliberately differs, the
test asserts mpqueue's behaviour and says so; the differences:

- `test_put`/`test_get`: no `sleep(DELTA)` before checking `empty()`/`full()`: an item
  counts from the moment `put` returns (CPython's may still sit in the feeder).
- `test_queue_feeder_donot_stop_onexc`: an unpicklable item raises in `put` (it is pickled
  in the caller) instead of being dropped by the feeder with a traceback; the next item
  and a bounded queue's capacity are unaffected, as CPython's test requires.
- `test_queue_feeder_on_queue_feeder_error`: there is no `_on_queue_feeder_error` hook,
  since the error reaches the caller of `put` with the item.
- `test_closed_queue_empty_exceptions`: `empty()` keeps answering after `close()` (CPython
  raises `OSError` once the pipe is closed): the shared counts stay readable.
- `TestSimpleQueue.test_empty_exceptions`: likewise for `SimpleQueue.empty()`.
- `TestSimpleQueue.test_close`: there are no `_reader`/`_writer` pipes to check; a closed
  `SimpleQueue` refuses `put` and `get` with `ValueError`.
- Timings use CPython's `TIMEOUT1..3 = 0.1` and are checked as lower bounds only, as
  CPython does with `CHECK_TIMINGS = False` (no upper bounds: the machine may be slow).
"""

import importlib
import os
import sys
import time

import pytest

import mpqueue
from conftest import join_or_kill

DELTA = 0.1
TIMEOUT1 = TIMEOUT2 = TIMEOUT3 = 0.1
SHORT_TIMEOUT = 30


def _assert_takes_at_least(seconds, f, *args, **kwargs):
    t = time.monotonic()
    f(*args, **kwargs)
    assert time.monotonic() - t >= seconds - 0.01


# _TestQueue.test_put


def _put_child(queue, child_can_start, parent_can_continue):
    child_can_start.wait()
    for _ in range(6):
        queue.get()
    parent_can_continue.set()


def test_put(ctx):
    queue = mpqueue.Queue(maxsize=6)
    child_can_start, parent_can_continue = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_put_child, args=(queue, child_can_start, parent_can_continue))
    proc.daemon = True
    proc.start()
    assert queue.empty() and not queue.full()
    queue.put(1)
    queue.put(2, True)
    queue.put(3, True, None)
    queue.put(4, False)
    queue.put(5, False, None)
    queue.put_nowait(6)
    # CPython sleeps DELTA here ("the values may be in buffer but not yet in pipe").
    assert not queue.empty() and queue.full()
    for call in [
        lambda: queue.put(7, False),
        lambda: queue.put(7, False, None),
        lambda: queue.put_nowait(7),
        lambda: queue.put(7, False, TIMEOUT2),
    ]:
        with pytest.raises(mpqueue.Full):
            call()
    with pytest.raises(mpqueue.Full):
        _assert_takes_at_least(TIMEOUT1, queue.put, 7, True, TIMEOUT1)
    with pytest.raises(mpqueue.Full):
        _assert_takes_at_least(TIMEOUT3, queue.put, 7, True, timeout=TIMEOUT3)
    child_can_start.set()
    assert parent_can_continue.wait(SHORT_TIMEOUT)
    assert queue.empty() and not queue.full()
    assert join_or_kill(proc, SHORT_TIMEOUT) == 0
    queue.close()
    queue.join_thread()


# _TestQueue.test_get


def _get_child(queue, child_can_start, parent_can_continue):
    child_can_start.wait()
    for i in range(1, 6):
        queue.put(i)
    parent_can_continue.set()


def test_get(ctx):
    queue = mpqueue.Queue()
    child_can_start, parent_can_continue = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_get_child, args=(queue, child_can_start, parent_can_continue))
    proc.daemon = True
    proc.start()
    assert queue.empty()
    child_can_start.set()
    assert parent_can_continue.wait(SHORT_TIMEOUT)
    # 3.14 polls until not empty; 3.11-3.13 sleep DELTA. The child's items are counted
    # once its puts returned: the queue is not empty now.
    assert not queue.empty()
    assert queue.get_nowait() == 1
    assert queue.get(True, None) == 2
    assert queue.get(True) == 3
    assert queue.get(timeout=1) == 4
    assert queue.get() == 5
    assert queue.empty()
    for call in [
        lambda: queue.get(False),
        lambda: queue.get(False, None),
        lambda: queue.get_nowait(),
        lambda: queue.get(False, TIMEOUT2),
    ]:
        with pytest.raises(mpqueue.Empty):
            call()
    with pytest.raises(mpqueue.Empty):
        _assert_takes_at_least(TIMEOUT1, queue.get, True, TIMEOUT1)
    with pytest.raises(mpqueue.Empty):
        _assert_takes_at_least(TIMEOUT3, queue.get, timeout=TIMEOUT3)
    assert join_or_kill(proc, SHORT_TIMEOUT) == 0
    queue.close()
    queue.join_thread()


# _TestQueue.test_fork


def _fork_child(queue):
    for i in range(10, 20):
        queue.put(i)
    # CPython's comment: "note that at this point the items may only be buffered, so the
    # process cannot shutdown until the feeder thread has finished pushing items onto the
    # pipe." Returning here relies on the exit flush.


def test_fork(ctx):
    queue = mpqueue.Queue()
    for i in range(10):
        queue.put(i)
    time.sleep(DELTA)  # as CPython: the parent's feeder has started (not a synchronisation)
    proc = ctx.Process(target=_fork_child, args=(queue,))
    proc.daemon = True
    proc.start()
    assert [queue.get(timeout=SHORT_TIMEOUT) for _ in range(20)] == list(range(20))
    with pytest.raises(mpqueue.Empty):
        queue.get(False)
    assert join_or_kill(proc, SHORT_TIMEOUT) == 0
    queue.close()
    queue.join_thread()


# _TestQueue.test_qsize


def test_qsize():
    q = mpqueue.Queue()
    assert q.qsize() == 0  # works everywhere: never NotImplementedError
    q.put(1)
    assert q.qsize() == 1
    q.put(5)
    assert q.qsize() == 2
    q.get()
    assert q.qsize() == 1
    q.get()
    assert q.qsize() == 0
    q.close()
    q.join_thread()


# _TestQueue.test_task_done


def _task_done_worker(q):
    for _ in iter(q.get, None):
        time.sleep(DELTA)
        q.task_done()


def test_task_done(ctx):
    queue = mpqueue.JoinableQueue()
    workers = [ctx.Process(target=_task_done_worker, args=(queue,)) for _ in range(4)]
    for p in workers:
        p.daemon = True
        p.start()
    for i in range(10):
        queue.put(i)
    queue.join()
    assert queue.stats()["unfinished"] == 0
    for _ in workers:
        queue.put(None)
    for p in workers:
        assert join_or_kill(p, SHORT_TIMEOUT) == 0
    queue.close()
    queue.join_thread()


# _TestQueue.test_no_import_lock_contention (bpo-22853)


def test_no_import_lock_contention(tmp_path, monkeypatch):
    module_name = "imported_by_an_agent"
    (tmp_path / f"{module_name}.py").write_text(
        "import mpqueue\n"
        "q = mpqueue.Queue()\n"
        "q.put('knock knock')\n"
        "q.get(timeout=3)\n"
        "q.close()\n"
        "del q\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module(module_name)
    except mpqueue.Empty:
        pytest.fail("Probable regression on import lock contention")
    finally:
        sys.modules.pop(module_name, None)


# _TestQueue.test_timeout


def test_timeout():
    q = mpqueue.Queue()
    start = time.monotonic()
    with pytest.raises(mpqueue.Empty):
        q.get(True, 0.200)
    # CPython's bound (bpo-30317): at least 100 ms.
    assert time.monotonic() - start >= 0.100


# _TestQueue.test_queue_feeder_donot_stop_onexc (bpo-30414, bpo-33078)


class NotSerializable:
    def __reduce__(self):
        raise AttributeError


def test_queue_feeder_donot_stop_onexc():
    q = mpqueue.Queue()
    # Different: the pickling error is raised by put itself.
    with pytest.raises(AttributeError):
        q.put(NotSerializable())
    q.put(True)
    assert q.get(timeout=SHORT_TIMEOUT) is True
    q.close()
    q.join_thread()

    q = mpqueue.Queue(maxsize=1)
    with pytest.raises(AttributeError):
        q.put(NotSerializable())
    q.put(True)  # the failed item took no capacity: this does not block
    assert q.qsize() == 1
    assert q.get(timeout=SHORT_TIMEOUT) is True
    assert q.empty()
    q.close()
    q.join_thread()


# _TestQueue.test_queue_feeder_on_queue_feeder_error (bpo-30006)


def test_queue_feeder_error_reaches_the_caller_with_the_item():
    # Different: no _on_queue_feeder_error hook; the caller of put gets the error and
    # keeps the item, and the queue keeps working.
    class Marked(NotSerializable):
        reduce_was_called = False

        def __reduce__(self):
            self.reduce_was_called = True
            raise AttributeError

    q = mpqueue.Queue()
    obj = Marked()
    with pytest.raises(AttributeError):
        q.put(obj)
    assert obj.reduce_was_called
    q.put(True)
    assert q.get(timeout=SHORT_TIMEOUT) is True


# _TestQueue.test_closed_queue_put_get_exceptions


def test_closed_queue_put_get_exceptions():
    for q in mpqueue.Queue(), mpqueue.JoinableQueue():
        q.close()
        with pytest.raises(ValueError, match="is closed"):
            q.put("foo")
        with pytest.raises(ValueError, match="is closed"):
            q.get()


# _TestQueue.test_closed_queue_empty_exceptions (gh-120012)


def test_closed_queue_empty_exceptions():
    for q in mpqueue.Queue(), mpqueue.JoinableQueue():
        q.close()  # this is a no-op since the feeder thread is None
        q.join_thread()  # this is also a no-op
        assert q.empty()

    for q in mpqueue.Queue(), mpqueue.JoinableQueue():
        q.put("foo")
        q.close()
        q.join_thread()
        # Different: CPython raises OSError("is closed"); the counts stay readable.
        assert not q.empty()


# TestSimpleQueue.test_empty


def _simple_empty_child(queue, child_can_start, parent_can_continue):
    child_can_start.wait()
    # issue 30301, could fail under spawn and forkserver
    try:
        queue.put(queue.empty())
        queue.put(queue.empty())
    finally:
        parent_can_continue.set()


def test_simple_queue_empty(ctx):
    queue = mpqueue.SimpleQueue()
    child_can_start, parent_can_continue = ctx.Event(), ctx.Event()
    proc = ctx.Process(
        target=_simple_empty_child, args=(queue, child_can_start, parent_can_continue)
    )
    proc.daemon = True
    proc.start()
    assert queue.empty()
    child_can_start.set()
    assert parent_can_continue.wait(SHORT_TIMEOUT)
    assert not queue.empty()
    assert queue.get() is True
    assert queue.get() is False
    assert queue.empty()
    assert join_or_kill(proc, SHORT_TIMEOUT) == 0


# TestSimpleQueue.test_empty_exceptions and test_close


def test_simple_queue_close():
    queue = mpqueue.SimpleQueue()
    queue.close()
    # Different: empty() keeps answering (CPython: OSError "is closed").
    assert queue.empty()
    # close() is idempotent (CPython's test_close), and a closed queue refuses both ends.
    queue.close()
    with pytest.raises(ValueError, match="closed"):
        queue.put(1)
    with pytest.raises(ValueError, match="closed"):
        queue.get()


# _TestProcess.test_lose_target_ref / test_process: a child's item outlives the child


def _put_five(q):
    q.put(5)


def test_lose_target_ref(ctx):
    q = mpqueue.Queue()
    p = ctx.Process(target=_put_five, args=(q,))
    p.start()
    assert join_or_kill(p, SHORT_TIMEOUT) == 0
    assert q.get(timeout=SHORT_TIMEOUT) == 5


# test_nested_startmethod (gh-108520): a queue passed on to a grandchild


def _grandchild(q):
    q.put(1)


def _child_with_grandchild(q, method):
    import multiprocessing

    q.put(2)
    p = multiprocessing.get_context(method).Process(target=_grandchild, args=(q,))
    p.start()
    p.join()


def test_nested_startmethod(ctx):
    q = mpqueue.Queue()
    p = ctx.Process(target=_child_with_grandchild, args=(q, ctx.get_start_method()))
    p.start()
    assert join_or_kill(p, SHORT_TIMEOUT) == 0
    got = []
    while not q.empty():
        got.append(q.get())
    assert set(got) == {1, 2}

