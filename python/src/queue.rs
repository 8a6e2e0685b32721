//! `Queue` and `JoinableQueue`: `multiprocessing.Queue` and `JoinableQueue` over
//! `mpqueue::Queue<Bytes>` and `mpqueue::JoinableQueue<Bytes>`.

use crate::{Empty, Full, Items, Patience, blocking, error, patience, reopen, stats};
use mpqueue::{Bytes, GetError, JoinError, PutError};
use pyo3::exceptions::{
    PyAssertionError, PyOSError, PyRuntimeError, PyRuntimeWarning, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The Rust queue of either kind.
pub(crate) enum Inner {
    Plain(mpqueue::Queue<Bytes>),
    Joinable(mpqueue::JoinableQueue<Bytes>),
}

impl Inner {
    fn queue(&self) -> &mpqueue::Queue<Bytes> {
        match self {
            Inner::Plain(q) => q,
            Inner::Joinable(q) => q,
        }
    }
}

/// `b` in the queue directory `dir`, if given.
pub(crate) fn in_dir(
    b: mpqueue::Builder<Bytes>,
    dir: Option<std::path::PathBuf>,
) -> mpqueue::Builder<Bytes> {
    match dir {
        Some(d) => b.dir(d),
        None => b,
    }
}

/// The options shared by `Queue(...)`, `JoinableQueue(...)` and `Queue.open(...)`.
fn builder(
    maxsize: i64,
    label: Option<&str>,
    capacity_bytes: Option<usize>,
    flush_timeout: Option<f64>,
) -> PyResult<mpqueue::Builder<Bytes>> {
    let mut b = mpqueue::Queue::<Bytes>::builder().maxsize(usize::try_from(maxsize).unwrap_or(0));
    if let Some(l) = label {
        b = b.label(l);
    }
    if let Some(c) = capacity_bytes {
        b = b.capacity_bytes(c);
    }
    if let Some(t) = flush_timeout {
        let t = Duration::try_from_secs_f64(t)
            .map_err(|_| PyValueError::new_err("flush_timeout must be a number of seconds >= 0"))?;
        b = b.flush_timeout(Some(t));
    }
    Ok(b)
}

/// A process-shared FIFO queue with the API of `multiprocessing.Queue`.
///
/// `Queue(maxsize=0, *, name=None, label=None, capacity_bytes=None, flush_timeout=None)`:
/// `maxsize <= 0` is unbounded; `name` makes a named queue that other programs open with
/// `Queue.open(name)`; `label` is what `mpqueue-top` shows; `capacity_bytes` sizes the
/// shared ring (default 1 MiB); `flush_timeout` is how long exit waits for a reader
/// (default 10 s) before it drops what is still buffered.
#[pyclass(frozen, weakref, subclass, module = "mpqueue")]
pub struct Queue {
    inner: ManuallyDrop<Inner>,
    /// How `stats()` finds the queue's stats file.
    key: stats::Key,
    /// The process (its fork generation, `mpqueue::process::generation`) that registered
    /// the exit flush (`mpqueue._exit.register_flush`) for this queue; 0: none yet.
    flush_generation: AtomicU64,
    /// The `flush_timeout` it was made or opened with (sent along to spawned children).
    flush_timeout: Option<f64>,
    /// How items travel (`items=`).
    items: Items,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken once, here, and never used again: `self` is being dropped.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        // Dropping the last handle flushes (up to the flush timeout): without the GIL. If the
        // interpreter is shutting down, the closure is dropped unrun, and `inner` with it.
        let _ = Python::try_attach(move |py| py.detach(move || drop(inner)));
    }
}

impl Queue {
    fn new_inner(
        inner: Inner,
        name: Option<&str>,
        flush_timeout: Option<f64>,
        items: Items,
    ) -> Self {
        let key = match name {
            Some(n) => stats::Key::Named(n.to_owned()),
            None => stats::Key::Anonymous,
        };
        Queue {
            inner: ManuallyDrop::new(inner),
            key,
            flush_generation: AtomicU64::new(0),
            flush_timeout,
            items,
        }
    }

    fn q(&self) -> &mpqueue::Queue<Bytes> {
        self.inner.queue()
    }

    /// At the first `put` in each process: registers the exit flush (`util.Finalize`).
    fn register_flush(slf: &Bound<'_, Self>) -> PyResult<()> {
        let generation = mpqueue::process::generation();
        if slf.get().flush_generation.swap(generation, Relaxed) != generation {
            let py = slf.py();
            py.import("mpqueue._exit")?
                .getattr("register_flush")?
                .call1((slf,))?;
        }
        Ok(())
    }

    fn closed_error(slf: &Bound<'_, Self>) -> PyErr {
        let r = slf
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "<mpqueue.Queue>".into());
        PyValueError::new_err(format!("Queue {r} is closed"))
    }

    fn put_error<T>(slf: &Bound<'_, Self>, e: PutError<T>) -> PyErr {
        match e {
            PutError::Full(_) => Full::new_err(()),
            PutError::Closed(_) => Self::closed_error(slf),
            PutError::TooLarge { .. } => PyValueError::new_err(e.to_string()),
            _ => PyOSError::new_err(e.to_string()),
        }
    }

    fn get_error(slf: &Bound<'_, Self>, e: GetError) -> PyErr {
        match e {
            GetError::Empty => Empty::new_err(()),
            GetError::Closed => Self::closed_error(slf),
            _ => PyOSError::new_err(e.to_string()),
        }
    }

    /// Gets with the GIL released: one call of the queue, which checks for signals every
    /// [`SLICE`](crate::SLICE) while it waits (see [`crate::blocking`]).
    fn get_with<R: Send>(
        slf: &Bound<'_, Self>,
        block: bool,
        timeout: Option<f64>,
        call: impl FnOnce(&mpqueue::Queue<Bytes>, Patience) -> Result<R, GetError> + Send,
    ) -> PyResult<R> {
        let q = slf.get().q();
        let wait = patience(block, timeout)?;
        match blocking(slf.py(), || call(q, wait)) {
            (Ok(v), _) => Ok(v),
            (Err(GetError::Interrupted), Some(e)) => Err(e),
            (Err(e), _) => Err(Self::get_error(slf, e)),
        }
    }

    /// Puts as `get_with` gets.
    fn put_with<T: Send>(
        slf: &Bound<'_, Self>,
        item: T,
        block: bool,
        timeout: Option<f64>,
        call: impl FnOnce(&mpqueue::Queue<Bytes>, T, Patience) -> Result<(), PutError<T>> + Send,
    ) -> PyResult<()> {
        let q = slf.get().q();
        let wait = patience(block, timeout)?;
        Self::register_flush(slf)?;
        match blocking(slf.py(), || call(q, item, wait)) {
            (Ok(()), _) => Ok(()),
            (Err(PutError::Interrupted(_)), Some(e)) => Err(e),
            (Err(e), _) => Err(Self::put_error(slf, e)),
        }
    }
}

#[pymethods]
impl Queue {
    #[new]
    #[pyo3(signature = (maxsize=0, *, name=None, label=None, capacity_bytes=None, flush_timeout=None, items="pickle"))]
    fn py_new(
        py: Python<'_>,
        maxsize: i64,
        name: Option<&str>,
        label: Option<&str>,
        capacity_bytes: Option<usize>,
        flush_timeout: Option<f64>,
        items: &str,
    ) -> PyResult<Self> {
        let items = Items::parse(items)?;
        let mut b = builder(maxsize, label, capacity_bytes, flush_timeout)?;
        if let Some(n) = name {
            b = b.name(n);
        }
        let q = py.detach(|| b.create()).map_err(error)?;
        Ok(Self::new_inner(Inner::Plain(q), name, flush_timeout, items))
    }

    /// Opens the named queue `name` (made by `Queue(name=...)` here or in another program).
    /// `dir` is the queue directory (default: `$MPQUEUE_DIR`, else `/dev/shm/mpqueue-UID`).
    /// `JoinableQueue.open` opens it as a joinable queue.
    #[classmethod]
    #[pyo3(signature = (name, *, flush_timeout=None, dir=None, items="pickle"))]
    fn open(
        cls: &Bound<'_, pyo3::types::PyType>,
        py: Python<'_>,
        name: &str,
        flush_timeout: Option<f64>,
        dir: Option<std::path::PathBuf>,
        items: &str,
    ) -> PyResult<Py<PyAny>> {
        let items = Items::parse(items)?;
        let b = in_dir(builder(0, None, None, flush_timeout)?, dir);
        if cls.is_subclass_of::<JoinableQueue>()? {
            let q = py
                .detach(|| mpqueue::JoinableQueue::open_with(b, name))
                .map_err(error)?;
            return Ok(JoinableQueue::wrap(py, q, Some(name), flush_timeout, items)?.into_any());
        }
        let q = py.detach(|| b.open(name)).map_err(error)?;
        let q = Self::new_inner(Inner::Plain(q), Some(name), flush_timeout, items);
        Ok(Py::new(py, q)?.into_any())
    }

    /// Puts `obj` (pickled now), waiting while the queue is full.
    #[pyo3(signature = (obj, block=true, timeout=None))]
    fn put(
        slf: &Bound<'_, Self>,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        if slf.get().q().is_closed() {
            return Err(Self::closed_error(slf));
        }
        let data = slf.get().items.encode(obj)?;
        Self::put_with(slf, data, block, timeout, |q, item, wait| match wait {
            Patience::Never => q.put_nowait(item),
            Patience::For(t) => q.put_timeout(item, t),
            Patience::Forever => q.put(item),
        })
    }

    /// `put(obj, False)`.
    fn put_nowait(slf: &Bound<'_, Self>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::put(slf, obj, false, None)
    }

    /// Puts every object of `objs`, in order, or none of them (`queue.Full`).
    #[pyo3(signature = (objs, block=true, timeout=None))]
    fn put_many(
        slf: &Bound<'_, Self>,
        objs: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        if slf.get().q().is_closed() {
            return Err(Self::closed_error(slf));
        }
        let items = objs
            .try_iter()?
            .map(|o| slf.get().items.encode(&o?))
            .collect::<PyResult<Vec<_>>>()?;
        let maxsize = slf.get().q().maxsize();
        if maxsize > 0 && items.len() > maxsize {
            // All or nothing: such a batch would never fit, and waiting would be for ever.
            return Err(PyValueError::new_err(format!(
                "put_many of {} items into a queue of maxsize {maxsize}: it can never fit",
                items.len()
            )));
        }
        Self::put_with(slf, items, block, timeout, |q, items, wait| match wait {
            Patience::Never => q.put_many_nowait(items),
            Patience::For(t) => q.put_many_timeout(items, t),
            Patience::Forever => q.put_many(items),
        })
    }

    /// Removes and returns the oldest item, waiting while the queue is empty.
    #[pyo3(signature = (block=true, timeout=None))]
    fn get(slf: &Bound<'_, Self>, block: bool, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let data = Self::get_with(slf, block, timeout, |q, wait| match wait {
            Patience::Never => q.get_nowait(),
            Patience::For(t) => q.get_timeout(t),
            Patience::Forever => q.get(),
        })?;
        slf.get().items.decode(slf.py(), &data)
    }

    /// `get(False)`.
    fn get_nowait(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        Self::get(slf, false, None)
    }

    /// Returns a list of 1 to `max_messages_to_get` items, waiting while the queue is empty.
    #[pyo3(signature = (block=true, timeout=None, max_messages_to_get=1_000_000_000))]
    fn get_many<'py>(
        slf: &Bound<'py, Self>,
        block: bool,
        timeout: Option<f64>,
        max_messages_to_get: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        if max_messages_to_get == 0 {
            return Err(PyValueError::new_err(
                "max_messages_to_get must be at least 1",
            ));
        }
        let items = Self::get_with(slf, block, timeout, |q, wait| match wait {
            Patience::Never => q.get_many_nowait(max_messages_to_get),
            Patience::For(t) => q.get_many_timeout(max_messages_to_get, t),
            Patience::Forever => q.get_many(max_messages_to_get),
        })?;
        let py = slf.py();
        let objs = items
            .iter()
            .map(|b| slf.get().items.decode(py, b))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, objs)
    }

    /// The number of items in the queue (put and not yet got, in any process).
    fn qsize(&self) -> usize {
        self.q().qsize()
    }

    /// Whether the queue holds no item (`qsize() == 0`).
    fn empty(&self) -> bool {
        self.q().empty()
    }

    /// Whether the queue holds `maxsize` items.
    fn full(&self) -> bool {
        self.q().full()
    }

    /// The queue's `maxsize` (0: unbounded).
    #[getter]
    fn maxsize(&self) -> usize {
        self.q().maxsize()
    }

    /// The queue's name (named queues) or label.
    #[getter]
    fn name(&self) -> &str {
        self.q().name()
    }

    /// Closes the queue in this process; the buffered items are still flushed.
    fn close(&self) {
        self.q().close();
    }

    /// Waits until this process's buffered items are in the shared queue (after `close`).
    fn join_thread(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let q = slf.get().q();
        match py.detach(|| q.join_thread()) {
            Ok(()) => Ok(()),
            Err(JoinError::NotClosed) => Err(PyAssertionError::new_err(format!(
                "Queue {} not closed",
                slf.repr()?
            ))),
            Err(e) => {
                let msg = std::ffi::CString::new(e.to_string()).unwrap_or_default();
                PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 1)
            }
        }
    }

    /// Lets this process exit without flushing its buffered items.
    fn cancel_join_thread(&self) {
        self.q().cancel_join_thread();
    }

    /// The exit flush (`util.Finalize` at priority -5): close, then wait for the feeder.
    fn _exit_flush(&self, py: Python<'_>) {
        let q = self.q();
        py.detach(|| {
            q.close();
            let _ = q.join_thread();
        });
    }

    /// The queue's live counters (the snapshot `mpqueue-top` shows) as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats::snapshot(py, self.q().stats_path())
    }

    fn __repr__(&self) -> String {
        format!(
            "<mpqueue.Queue {:?} maxsize={}>",
            self.q().name(),
            self.q().maxsize()
        )
    }

    /// Pickled only while `multiprocessing` starts a process (`spawn`, `forkserver`): see
    /// `mpqueue._spawn`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let kind = match &*me.inner {
            Inner::Plain(_) => "Queue",
            Inner::Joinable(_) => "JoinableQueue",
        };
        let handoff = me
            .q()
            .handoff()
            .map(|h| (h.stats_path.to_path_buf(), h.data.as_raw_fd()));
        let name = match &me.key {
            stats::Key::Named(n) => Some(n.clone()),
            stats::Key::Anonymous => None,
        };
        let dir = me.q().stats_path().parent().map(|d| d.to_path_buf());
        slf.py()
            .import("mpqueue._spawn")?
            .getattr("reduce")?
            .call1((
                slf,
                kind,
                name,
                dir,
                handoff,
                me.flush_timeout,
                me.items.name(),
            ))
    }
}

/// A `Queue` whose items are tasks: `task_done()` marks one done, `join()` waits for all.
#[pyclass(frozen, extends = Queue, module = "mpqueue")]
pub struct JoinableQueue {}

impl JoinableQueue {
    /// A Python `JoinableQueue` around `q`.
    fn wrap(
        py: Python<'_>,
        q: mpqueue::JoinableQueue<Bytes>,
        name: Option<&str>,
        flush_timeout: Option<f64>,
        items: Items,
    ) -> PyResult<Py<Self>> {
        let base = Queue::new_inner(Inner::Joinable(q), name, flush_timeout, items);
        Py::new(
            py,
            PyClassInitializer::from(base).add_subclass(JoinableQueue {}),
        )
    }

    fn joinable<'a>(slf: &'a Bound<'_, Self>) -> PyResult<&'a mpqueue::JoinableQueue<Bytes>> {
        match &*slf.as_super().get().inner {
            Inner::Joinable(j) => Ok(j),
            Inner::Plain(_) => Err(PyRuntimeError::new_err("not a JoinableQueue")),
        }
    }
}

#[pymethods]
impl JoinableQueue {
    #[new]
    #[pyo3(signature = (maxsize=0, *, name=None, label=None, capacity_bytes=None, flush_timeout=None, items="pickle"))]
    fn py_new(
        py: Python<'_>,
        maxsize: i64,
        name: Option<&str>,
        label: Option<&str>,
        capacity_bytes: Option<usize>,
        flush_timeout: Option<f64>,
        items: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let items = Items::parse(items)?;
        let mut b = builder(maxsize, label, capacity_bytes, flush_timeout)?;
        if let Some(n) = name {
            b = b.name(n);
        }
        let q = py
            .detach(|| mpqueue::JoinableQueue::from_builder(b))
            .map_err(error)?;
        Ok(PyClassInitializer::from(Queue::new_inner(
            Inner::Joinable(q),
            name,
            flush_timeout,
            items,
        ))
        .add_subclass(JoinableQueue {}))
    }

    /// Marks one item this process got as done.
    fn task_done(slf: &Bound<'_, Self>) -> PyResult<()> {
        match Self::joinable(slf)?.task_done() {
            Ok(()) => Ok(()),
            Err(mpqueue::TaskDoneError::TooMany) => {
                Err(PyValueError::new_err("task_done() called too many times"))
            }
            Err(e) => Err(PyOSError::new_err(e.to_string())),
        }
    }

    /// Waits until every item put has been marked done.
    fn join(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let j = Self::joinable(slf)?;
        while !py.detach(|| j.join_timeout(crate::SLICE)) {
            py.check_signals()?;
        }
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let q = slf.as_super().get().q();
        format!(
            "<mpqueue.JoinableQueue {:?} maxsize={}>",
            q.name(),
            q.maxsize()
        )
    }
}

/// Attaches to an anonymous queue of `kind` (`"Queue"`, `"JoinableQueue"` or
/// `"SimpleQueue"`) handed over by a parent (see `mpqueue._spawn`): the path of its stats
/// file and a descriptor of its data segment (copied: the caller still closes `fd`).
#[pyfunction]
#[pyo3(signature = (kind, stats_path, fd, flush_timeout=None, items="pickle"))]
pub(crate) fn _open_handoff(
    py: Python<'_>,
    kind: &str,
    stats_path: std::path::PathBuf,
    fd: i32,
    flush_timeout: Option<f64>,
    items: &str,
) -> PyResult<Py<PyAny>> {
    let items = Items::parse(items)?;
    let b = builder(0, None, None, flush_timeout)?;
    let data = reopen(fd)?;
    match kind {
        "Queue" => {
            let q = py
                .detach(|| b.open_handoff(&stats_path, data))
                .map_err(error)?;
            let q = Queue::new_inner(Inner::Plain(q), None, flush_timeout, items);
            Ok(Py::new(py, q)?.into_any())
        }
        "JoinableQueue" => {
            let q = py
                .detach(|| mpqueue::JoinableQueue::open_handoff(b, &stats_path, data))
                .map_err(error)?;
            Ok(JoinableQueue::wrap(py, q, None, flush_timeout, items)?.into_any())
        }
        "SimpleQueue" => crate::simple::SimpleQueue::from_handoff(py, &stats_path, data, items),
        _ => Err(PyValueError::new_err(format!("no queue kind {kind:?}"))),
    }
}
