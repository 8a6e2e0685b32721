"""Every test gets its own queue directory ($MPQUEUE_DIR), inherited by its children, so
tests never see each other's queues (nor the machine's)."""

import os

import pytest


@pytest.fixture(autouse=True)
def queue_dir(tmp_path, monkeypatch):
    d = tmp_path / "queues"
    d.mkdir()
    monkeypatch.setenv("MPQUEUE_DIR", str(d))
    return d


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def ctx(request):
    """Each process test runs under every start method: queues reach `fork` children by
    inheritance and `spawn`/`forkserver` children pickled (see `mpqueue._spawn`)."""
    import multiprocessing

    return multiprocessing.get_context(request.param)


def join_or_kill(p, timeout):
    """Joins `p` within `timeout` seconds; kills it and fails the test if it is still alive."""
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join(5)
        pytest.fail(f"child {p.pid} still alive after {timeout} s")
    return p.exitcode


os.environ.setdefault("PYTHONFAULTHANDLER", "1")
