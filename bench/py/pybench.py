"""Python side of the benchmarks: prints the figures of one peer in one scenario.

usage:
  pybench.py PEER tput PRODUCERS CONSUMERS SIZE N [--maxsize M] [--pin same|cross] [--batch B]
                                                  [--item bytes|dict]
  pybench.py PEER big N
  pybench.py PEER pingpong N [--pin same|cross]
PEER: mpq (multiprocessing.Queue, fork), ff (faster-fifo) or mpqueue (this project's Python
package, from .venv).
--batch B (faster-fifo and mpqueue) moves items with put_many of B and
get_many(max_messages_to_get=B).
--item dict sends a small dict (an id, a name, three floats) instead of SIZE bytes.
tput prints items/s; big prints MB/s (1e6 bytes); pingpong prints median and p99 in us.
Timing and stop rule match the Rust side: the clock starts when every process is released
together, stops when the last consumer is done; each producer ends with one stop marker per
consumer and each consumer stops after one marker per producer.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import time

ctx = mp.get_context("fork")


def make_queue(peer, maxsize=0):
    if peer == "mpq":
        return ctx.Queue(maxsize)
    if peer == "ff":
        import faster_fifo

        return faster_fifo.Queue(max_size_bytes=256 << 20)
    if peer == "mpqueue":
        import mpqueue

        return mpqueue.Queue(maxsize)
    raise SystemExit(f"unknown peer {peer}")


def make_item(kind, size):
    if kind == "dict":
        return {"id": 123456, "name": "sensor-7", "values": [0.5, 1.25, 2.75]}
    return bytes(size)


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def cpus(placement):
    return {"same": (0, 0), "cross": (0, 1)}.get(placement, (None, None))


def producer(q, n, consumers, item, ready, go, cpu, batch):
    pin(cpu)
    ready.release()
    go.wait()
    if batch > 1:
        full, rest = divmod(n, batch)
        chunk = [item] * batch
        for _ in range(full):
            q.put_many(chunk)
        if rest:
            q.put_many([item] * rest)
        q.put_many([None] * consumers)
        return
    for _ in range(n):
        q.put(item)
    for _ in range(consumers):
        q.put(None)


def consumer(q, producers, ready, go, done, cpu, batch):
    pin(cpu)
    ready.release()
    go.wait()
    got = stops = 0
    if batch > 1:
        while stops < producers:
            for x in q.get_many(max_messages_to_get=batch):
                if x is None:
                    stops += 1
                else:
                    got += 1
        # A batch can hold stop markers meant for another consumer: hand them back.
        for _ in range(stops - producers):
            q.put(None)
    else:
        while stops < producers:
            if q.get() is None:
                stops += 1
            else:
                got += 1
    done.put((time.monotonic(), got))


def tput(peer, p, c, size, n, maxsize, placement, batch=1, kind="bytes"):
    if batch > 1 and peer == "mpq":
        raise SystemExit(f"{peer} has no batch API")
    q = make_queue(peer, maxsize)
    item = make_item(kind, size)
    ready, go, done = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    pc, cc = cpus(placement)
    per = n // p
    procs = [
        ctx.Process(target=producer, args=(q, per, c, item, ready, go, pc, batch)) for _ in range(p)
    ]
    procs += [
        ctx.Process(target=consumer, args=(q, p, ready, go, done, cc, batch)) for _ in range(c)
    ]
    for pr in procs:
        pr.start()
    for _ in procs:
        ready.acquire()
    t0 = time.monotonic()
    go.set()
    results = [done.get() for _ in range(c)]
    for pr in procs:
        pr.join()
    got = sum(r[1] for r in results)
    assert got == per * p, (got, per * p)
    return got / (max(r[0] for r in results) - t0)


def big(peer, n):
    return tput(peer, 1, 1, 1 << 20, n, 0, None) * (1 << 20) / 1e6


def echo(a, b, n, cpu):
    pin(cpu)
    for _ in range(n):
        b.put(a.get())


def pingpong(peer, n, placement):
    a, b = make_queue(peer), make_queue(peer)
    pc, cc = cpus(placement)
    child = ctx.Process(target=echo, args=(a, b, n + 1000, cc))
    child.start()
    pin(pc)
    item = bytes(64)
    rtts = []
    for i in range(n + 1000):
        t = time.perf_counter()
        a.put(item)
        b.get()
        if i >= 1000:
            rtts.append((time.perf_counter() - t) * 1e6)
    child.join()
    rtts.sort()
    return statistics.median(rtts), rtts[int(len(rtts) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peer")
    ap.add_argument("scenario")
    ap.add_argument("args", nargs="*", type=int)
    ap.add_argument("--maxsize", type=int, default=0)
    ap.add_argument("--pin", default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--item", choices=["bytes", "dict"], default="bytes")
    a = ap.parse_args()
    if a.scenario == "tput":
        p, c, size, n = a.args
        print(f"{tput(a.peer, p, c, size, n, a.maxsize, a.pin, a.batch, a.item):.1f}")
    elif a.scenario == "big":
        print(f"{big(a.peer, a.args[0]):.1f}")
    elif a.scenario == "pingpong":
        med, p99 = pingpong(a.peer, a.args[0], a.pin)
        print(f"{med:.2f} {p99:.2f}")
    else:
        raise SystemExit(f"unknown scenario {a.scenario}")


if __name__ == "__main__":
    main()
