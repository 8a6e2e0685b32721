"""Exit flushing: what CPython's queues do with ``multiprocessing.util.Finalize``.

At the first ``put`` in each process the native queue calls :func:`register_flush`, which
registers a finalizer at exit priority -5 (after the children are joined, like CPython's
``_finalize_join``). It runs in ``multiprocessing``'s exit handling, in the main process
(through ``atexit``) and in ``multiprocessing`` children (which skip ``atexit``): it closes
the queue and waits until this process's buffered items are in the shared queue, at most
the queue's flush timeout without a reader making progress. The finalizer holds the queue
weakly: a queue that was collected earlier flushed when it was dropped.
"""

import weakref
from multiprocessing import util


def _flush(ref):
    q = ref()
    if q is not None:
        q._exit_flush()


def register_flush(q):
    util.Finalize(q, _flush, args=(weakref.ref(q),), exitpriority=-5)
