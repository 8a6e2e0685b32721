"""mpqueue: a drop-in ``multiprocessing.Queue`` over shared memory.

``Queue``, ``JoinableQueue`` and ``SimpleQueue`` have the methods, arguments and
exceptions of ``multiprocessing``'s (``queue.Full``/``queue.Empty`` are the standard
library's), plus ``put_many``/``get_many`` batches and ``stats()``. Items are pickled with
the highest protocol in the caller, so an unpicklable item raises in ``put``.

Queues reach child processes under every start method: by inheritance under ``fork``
(and ``os.fork()``), pickled while the process starts under ``spawn`` and ``forkserver``
(see ``mpqueue._spawn``).
"""

from queue import Empty, Full

from ._mpqueue import (
    DEFAULT_CAPACITY_BYTES,
    DEFAULT_FLUSH_TIMEOUT,
    JoinableQueue,
    Queue,
    SimpleQueue,
)

__all__ = [
    "DEFAULT_CAPACITY_BYTES",
    "DEFAULT_FLUSH_TIMEOUT",
    "Empty",
    "Full",
    "JoinableQueue",
    "Queue",
    "SimpleQueue",
]
