"""Sending a queue to a ``spawn`` or ``forkserver`` child, the way CPython sends its pipes.

A queue is pickled only while ``multiprocessing`` starts a process
(``context.assert_spawning``, as CPython's queues check): a named queue as its name, an
anonymous one as the name of its stats file and its data segment's file descriptor, which
``multiprocessing`` hands to the child (``reduction.DupFd``: kept open across ``exec``
under ``spawn``, sent over the server's socket under ``forkserver``). The child attaches
to the queue with them, in a stats slot of its own. The parent must still have the queue
when the child starts (the last process to leave a queue removes it): a ``Process`` keeps
its arguments until it is joined.
"""

import os
from multiprocessing import context, reduction

from . import _mpqueue


def reduce(q, kind, name, queue_dir, handoff, flush_timeout, items):
    """``__reduce__`` of the native queues."""
    context.assert_spawning(q)
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
