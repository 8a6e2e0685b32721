"""Sending a queue to a ``spawn`` or ``forkserver`` child, the way CPython sends its pipes.

A queue is pickled only while ``multiprocessing`` starts a process
(``context.assert_spawning``, as CPython's queues check): a named queue as its name, an
anonymous one as the name of its stats file and its data segment's file descriptor, which
``multiprocessing`` hands to the child (``reduction.DupFd``: kept open across ``exec``
under ``spawn``, sent over the server's socket under ``forkserver``). The child attaches
to the queue with them, in a stats slot of its own, a moment after ``start()`` returns.
The last process to leave a queue removes it, and a ``Process`` forgets its arguments in
``start()``, so the process being started holds on to the queue (through its ``Popen``,
which lives as long as the ``Process`` object or until ``close()``): the parent may drop
its own.
"""

import os
from multiprocessing import context, reduction

from . import _mpqueue


def reduce(q, kind, name, queue_dir, handoff, flush_timeout, items):
    """``__reduce__`` of the native queues."""
    context.assert_spawning(q)
    popen = context.get_spawning_popen()
    popen.__dict__.setdefault("_mpqueue_keep", []).append(q)
    if name is not None:
        # The directory goes along: a forkserver child has the server's environment.
        return (_open_named, (kind, name, str(queue_dir), flush_timeout, items))
    stats_path, fd = handoff
    return (_open_handoff, (kind, str(stats_path), reduction.DupFd(fd), flush_timeout, items))


def _open_named(kind, name, queue_dir, flush_timeout, items):
    cls = getattr(_mpqueue, kind)
    if kind == "SimpleQueue":
        return cls.open(name, dir=queue_dir, items=items)
    return cls.open(name, flush_timeout=flush_timeout, dir=queue_dir, items=items)


def _open_handoff(kind, stats_path, dupfd, flush_timeout, items):
    fd = dupfd.detach()
    try:
        return _mpqueue._open_handoff(kind, stats_path, fd, flush_timeout, items)
    finally:
        os.close(fd)
