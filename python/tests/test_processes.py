"""Processes: Ctrl-C in a blocked call, exit flushing, JoinableQueue and SimpleQueue
across children, os.fork(), Pool initializers, and mpqueue-top seeing a Python queue."""

import gc
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import mpqueue
from conftest import join_or_kill

ROOT = Path(__file__).resolve().parents[2]


def _blocked(op, ready, report):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    q = mpqueue.Queue(1)
    j = mpqueue.JoinableQueue()
    s = mpqueue.SimpleQueue(capacity_bytes=4096)
    if op == "simple-put":
        s.put(b"x" * 3000)  # the ring is full for the next one
    if op == "put":
        q.put(0)
    if op == "join":
        j.put(0)
    ready.put(os.getpid())
    t = time.monotonic()
    try:
        if op == "get":
            q.get()
        elif op == "simple-get":
            s.get()
        elif op == "simple-put":
            s.put(b"y" * 3000)
        elif op == "put":
            q.put(1)
        else:
            j.join()
    except KeyboardInterrupt:
        report.put(("KeyboardInterrupt", time.monotonic() - t))
        return
    report.put(("returned", time.monotonic() - t))


@pytest.mark.parametrize("op", ["get", "simple-get", "put", "simple-put", "join"])
def test_ctrl_c_interrupts_a_blocked_call(ctx, op):
    ready, report = mpqueue.Queue(), mpqueue.Queue()
    p = ctx.Process(target=_blocked, args=(op, ready, report))
    p.start()
    assert ready.get(timeout=10) == p.pid
    time.sleep(0.3)  # it is blocked now
    sent = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    what, blocked_for = report.get(timeout=10)
    delay = time.monotonic() - sent
    assert what == "KeyboardInterrupt"
    assert blocked_for >= 0.25
    assert delay < 2.0, f"KeyboardInterrupt came {delay:.2f} s after SIGINT"
    assert join_or_kill(p, 10) == 0


def _put_and_exit(q, size):
    q.put(b"x" * size)


def test_exit_does_not_hang_when_nobody_reads(ctx):
    # CPython's most reported queue bug: a child puts 1 MB and exits while nobody reads; its
    # feeder blocks on the full pipe and the child never exits (p.join() hangs).
    q = mpqueue.Queue()
    p = ctx.Process(target=_put_and_exit, args=(q, 1_000_000))
    t = time.monotonic()
    p.start()
    assert join_or_kill(p, mpqueue.DEFAULT_FLUSH_TIMEOUT + 10) == 0
    assert time.monotonic() - t < mpqueue.DEFAULT_FLUSH_TIMEOUT + 5
    assert q.get(timeout=10) == b"x" * 1_000_000  # delivered, not lost


def test_cpython_queue_hangs_in_the_same_scenario():
    # The contrast: multiprocessing.Queue's child is still stuck in its exit flush long
    # after mpqueue's would have exited (it never exits while nobody reads).
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    q = fork.Queue()
    p = fork.Process(target=_put_and_exit, args=(q, 1_000_000))
    p.start()
    p.join(3)
    stuck = p.is_alive()
    if stuck:
        p.kill()
        p.join(10)
    assert stuck, "multiprocessing.Queue's child exited: CPython fixed the bug?"


def test_exit_gives_up_after_the_flush_timeout(ctx):
    # More than the ring holds and nobody reads: the child waits the flush timeout, drops
    # the rest (counted as lost) and exits.
    q = mpqueue.Queue(capacity_bytes=64 * 1024, flush_timeout=1.0)
    p = ctx.Process(target=_put_and_exit, args=(q, 4_000_000))
    t = time.monotonic()
    p.start()
    assert join_or_kill(p, 20) == 0
    took = time.monotonic() - t
    assert 0.9 <= took < 10, took
    assert q.stats()["lost"] == 1
    with pytest.raises(mpqueue.Empty):
        q.get(timeout=0.2)


def _worker(jobs, results):
    while True:
        item = jobs.get(timeout=10)
        if item is None:
            jobs.task_done()
            return
        results.put(item * item)
        jobs.task_done()


def test_joinable_queue_with_workers(ctx):
    jobs, results = mpqueue.JoinableQueue(), mpqueue.Queue()
    workers = [ctx.Process(target=_worker, args=(jobs, results)) for _ in range(3)]
    for w in workers:
        w.start()
    for i in range(30):
        jobs.put(i)
    for _ in workers:
        jobs.put(None)
    jobs.join()
    assert jobs.qsize() == 0 and jobs.stats()["unfinished"] == 0
    assert sorted(results.get(timeout=10) for _ in range(30)) == sorted(i * i for i in range(30))
    for w in workers:
        assert join_or_kill(w, 10) == 0


def _simple_child(q, out):
    out.put(q.empty())
    q.put(("from", os.getpid()))


def test_simple_queue_across_fork_process(ctx):
    q, out = mpqueue.SimpleQueue(), mpqueue.SimpleQueue()
    q.put(1)
    p = ctx.Process(target=_simple_child, args=(q, out))
    p.start()
    assert out.get() is False
    assert join_or_kill(p, 10) == 0
    assert q.get() == 1
    assert q.get() == ("from", p.pid)
    assert q.empty()
    assert q.stats()["puts"] == 2
    q.close()
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.put(2)
    with pytest.raises(ValueError, match="closed"):
        q.get()


def wait_pid(pid, timeout):
    """The exit code of the os.fork() child `pid`; kills it and fails if it runs past `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"forked child {pid} did not exit within {timeout} s")
        time.sleep(0.01)


def test_bare_os_fork():
    q = mpqueue.Queue()
    q.put("parent-before")
    pid = os.fork()
    if pid == 0:  # the child: no multiprocessing machinery, so flush by hand
        code = 1
        try:
            q.put("child")
            q.close()
            q.join_thread()
            code = 0
        finally:
            os._exit(code)
    q.put("parent-after")
    assert wait_pid(pid, 10) == 0
    got = sorted(q.get(timeout=5) for _ in range(3))
    assert got == ["child", "parent-after", "parent-before"]


_pool_queue = None


def _pool_init(q):
    global _pool_queue
    _pool_queue = q


def _pool_task(x):
    _pool_queue.put((os.getpid(), x))
    return x


def test_pool_initializer_argument(ctx):
    q = mpqueue.Queue()
    with ctx.Pool(2, initializer=_pool_init, initargs=(q,)) as pool:
        assert sorted(pool.map(_pool_task, range(20))) == list(range(20))
        pool.close()
        pool.join()
    assert sorted(x for _, x in (q.get(timeout=10) for _ in range(20))) == list(range(20))


def _top_child(q):
    q.put_many(["c1", "c2", "c3"])


def test_mpqueue_top_json_shows_the_python_queue(ctx, queue_dir):
    top = Path(os.environ.get("MPQUEUE_TOP", ROOT / "target" / "debug" / "mpqueue-top"))
    assert top.is_file(), f"{top} is missing: run `cargo build -p mpqueue-top` first"
    q = mpqueue.Queue(100, label="pytest-top")
    q.put_many(list(range(5)))
    p = ctx.Process(target=_top_child, args=(q,))
    p.start()
    assert join_or_kill(p, 10) == 0
    assert [q.get(timeout=5) for _ in range(2)] == [0, 1]
    out = subprocess.run([str(top), "--json", "--dir", str(queue_dir)], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    mine = [x for x in json.loads(out)["queues"] if x["name"] == "pytest-top"]
    assert len(mine) == 1, out
    x = mine[0]
    assert (x["maxsize"], x["puts"], x["gets"], x["size"], x["lost"]) == (100, 8, 2, 6, 0)
    assert x["created_by"] == os.getpid()
    s = q.stats()
    assert (s["id"], s["puts"], s["gets"], s["size"]) == (x["id"], 8, 2, 6)


def test_os_fork_while_the_feeder_runs():
    # A ring smaller than what the parent puts: most items wait in the parent's buffer and
    # its feeder thread is running when it forks. The child must not send them again.
    q = mpqueue.Queue(capacity_bytes=16 * 1024)
    items = [i.to_bytes(2, "big") * 2048 for i in range(20)]  # 4 KiB each
    for item in items:
        q.put(item)
    assert q.stats()["buffered_items"] > 0
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            q.put(b"child")
            q.close()
            q.join_thread()  # waits for the parent to read
            code = 0
        finally:
            os._exit(code)
    got = [q.get(timeout=10) for _ in range(21)]
    with pytest.raises(mpqueue.Empty):
        q.get(timeout=0.3)
    assert [g for g in got if g != b"child"] == items  # each once, in order
    assert got.count(b"child") == 1
    assert wait_pid(pid, 10) == 0


def _consume_for_ever(q, ready):
    ready.put(os.getpid())
    while True:
        q.get()
        time.sleep(0.005)  # slow: the parent gets the rest


def test_a_consumer_killed_mid_get_does_not_wedge_the_queue(ctx):
    # CPython: a consumer SIGKILLed while it holds the read lock leaves it locked for ever.
    q, ready = mpqueue.Queue(), mpqueue.Queue()
    p = ctx.Process(target=_consume_for_ever, args=(q, ready))
    p.start()
    assert ready.get(timeout=10) == p.pid
    n = 200  # the consumer takes >= 1 s for all of them; it is killed after 0.3 s
    killer = threading.Timer(0.3, p.kill)
    killer.start()
    for i in range(n):
        q.put((i, b"x" * 65536))
    killer.join()
    assert join_or_kill(p, 10) == -signal.SIGKILL
    last, got = -1, []
    while last != n - 1:
        i, _ = q.get(timeout=20)  # Empty here would mean the queue is wedged
        got.append(i)
        last = i
    assert got == sorted(got) and len(set(got)) == len(got)  # FIFO, nothing twice
    assert q.qsize() == 0
    q.put("after")
    assert q.get(timeout=10) == "after"


def _named_child(q, j, s, report):
    report.put((type(q).__name__, type(j).__name__, type(s).__name__))
    q.put(("q", os.getpid()))
    item = j.get(timeout=30)
    j.task_done()
    s.put(item)


def test_named_queues_reach_a_child_by_name(ctx):
    # Under spawn and forkserver a named queue travels as its name and directory (a
    # forkserver child has the server's environment, whose MPQUEUE_DIR may differ).
    q = mpqueue.Queue(name="pytest-child-q")
    j = mpqueue.JoinableQueue(name="pytest-child-j")
    s = mpqueue.SimpleQueue(name="pytest-child-s")
    report = mpqueue.Queue()
    p = ctx.Process(target=_named_child, args=(q, j, s, report))
    p.start()
    j.put("job")
    assert report.get(timeout=30) == ("Queue", "JoinableQueue", "SimpleQueue")
    assert q.get(timeout=30) == ("q", p.pid)
    assert join_or_kill(p, 30) == 0
    assert s.get() == "job"
    assert j.stats()["unfinished"] == 0


def _attached(q, go):
    q.put(os.getpid())  # a forked child takes its slot at its first call
    go.get(timeout=30)


def test_a_child_attaches_in_a_slot_of_its_own(ctx):
    q, go = mpqueue.Queue(label="pytest-slots"), mpqueue.Queue()
    p = ctx.Process(target=_attached, args=(q, go))
    p.start()
    assert q.get(timeout=30) == p.pid
    pids = {proc["pid"] for proc in q.stats()["processes"]}
    assert {os.getpid(), p.pid} <= pids
    go.put("go")
    assert join_or_kill(p, 30) == 0


def test_a_rust_program_shares_a_named_queue_of_bytes():
    # examples/examples/bytes_peer.rs: reverses each item from the first queue onto the
    # second, until an empty item. items="bytes" is the wire format of Rust's Queue<Bytes>.
    exe = ROOT / "target" / "debug" / "examples" / "bytes_peer"
    to_rust = mpqueue.Queue(name="pytest-to-rust", items="bytes")
    from_rust = mpqueue.Queue(name="pytest-from-rust", items="bytes")
    rust = subprocess.Popen([str(exe), "pytest-to-rust", "pytest-from-rust"])
    try:
        assert from_rust.get(timeout=30) == b"ready from Rust"
        items = [b"hello", bytes(range(256)), b"x" * 100_000 + b"y", bytearray(b"mutable")]
        to_rust.put_many(items)
        for item in items:
            assert from_rust.get(timeout=30) == bytes(item)[::-1]
        to_rust.put(b"")
        assert rust.wait(timeout=30) == 0
    finally:
        if rust.poll() is None:
            rust.kill()
            rust.wait()
    with pytest.raises(TypeError, match="bytes or bytearray"):
        to_rust.put("text")
    with pytest.raises(ValueError, match="items must be"):
        mpqueue.Queue(items="json")


def _attach_and_report(q, report):
    q.put("mine")
    report.put((type(q).__name__, q.get(timeout=30)))


def test_the_parent_may_drop_the_queue_once_the_child_is_started(ctx):
    # CPython's Process forgets its arguments in start(); the queue must still be there
    # when a spawn or forkserver child attaches to it, a moment later.
    q, report = mpqueue.Queue(), mpqueue.Queue()
    p = ctx.Process(target=_attach_and_report, args=(q, report))
    p.start()
    del q
    gc.collect()
    assert report.get(timeout=30) == ("Queue", "mine")
    assert join_or_kill(p, 30) == 0
