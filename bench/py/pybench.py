"""Python side of the benchmarks: prints one figure for one peer and scenario.

usage: pybench.py PEER SCENARIO [--n N]
  PEER: mpq (multiprocessing.Queue), ff (faster-fifo)
  SCENARIO: tput64 (1 producer -> 1 consumer process, 64-byte bytes items): items/s
"""
import argparse
import multiprocessing as mp
import time


def make_queue(peer):
    if peer == "mpq":
        return mp.get_context("fork").Queue()
    if peer == "ff":
        import faster_fifo
        return faster_fifo.Queue(max_size_bytes=64 << 20)
    raise SystemExit(f"unknown peer {peer}")


def producer(q, n, start):
    item = bytes(64)
    start.wait()
    for _ in range(n):
        q.put(item)


def tput64(peer, n):
    ctx = mp.get_context("fork")
    q = make_queue(peer)
    start = ctx.Event()
    p = ctx.Process(target=producer, args=(q, n, start))
    p.start()
    t0 = time.perf_counter()
    start.set()
    for _ in range(n):
        q.get()
    secs = time.perf_counter() - t0
    p.join()
    return n / secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peer")
    ap.add_argument("scenario")
    ap.add_argument("--n", type=int, default=1_000_000)
    a = ap.parse_args()
    if a.scenario == "tput64":
        print(f"{tput64(a.peer, a.n):.1f}")
    else:
        raise SystemExit(f"unknown scenario {a.scenario}")


if __name__ == "__main__":
    main()
