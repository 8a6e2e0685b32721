//! `SimpleQueue`: `multiprocessing.SimpleQueue` over `mpqueue::SimpleQueue<Bytes>`.

use crate::queue::in_dir;
use crate::{Items, blocking, error, stats};
use mpqueue::{Bytes, GetError, PutError};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use std::os::fd::AsRawFd;

/// An unbounded process-shared FIFO queue with the API of `multiprocessing.SimpleQueue`:
/// `put` writes into the shared queue in the caller (no feeder thread).
///
/// `get`, and `put` while the shared ring is full, check for signals while they wait, so
/// Ctrl-C interrupts them.
#[pyclass(frozen, weakref, module = "mpqueue")]
pub struct SimpleQueue {
    inner: mpqueue::SimpleQueue<Bytes>,
    /// How `stats()` finds the queue's stats file.
    key: stats::Key,
    /// How items travel (`items=`).
    items: Items,
}

impl SimpleQueue {
    /// The simple queue handed over as `stats_path` and `data` (see `queue::_open_handoff`).
    pub(crate) fn from_handoff(
        py: Python<'_>,
        stats_path: &std::path::Path,
        data: std::os::fd::OwnedFd,
        items: Items,
    ) -> PyResult<Py<PyAny>> {
        let inner = py
            .detach(|| mpqueue::SimpleQueue::open_handoff(stats_path, data))
            .map_err(error)?;
        let key = stats::Key::Anonymous;
        Ok(Py::new(py, SimpleQueue { inner, key, items })?.into_any())
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("SimpleQueue is closed")
}

#[pymethods]
impl SimpleQueue {
    #[new]
    #[pyo3(signature = (*, name=None, label=None, capacity_bytes=None, items="pickle"))]
    fn py_new(
        py: Python<'_>,
        name: Option<&str>,
        label: Option<&str>,
        capacity_bytes: Option<usize>,
        items: &str,
    ) -> PyResult<Self> {
        let items = Items::parse(items)?;
        let mut b = mpqueue::Queue::<Bytes>::builder();
        if let Some(n) = name {
            b = b.name(n);
        }
        if let Some(l) = label {
            b = b.label(l);
        }
        if let Some(c) = capacity_bytes {
            b = b.capacity_bytes(c);
        }
        let inner = py
            .detach(|| mpqueue::SimpleQueue::from_builder(b))
            .map_err(error)?;
        let key = match name {
            Some(n) => stats::Key::Named(n.to_owned()),
            None => stats::Key::Anonymous,
        };
        Ok(SimpleQueue { inner, key, items })
    }

    /// Puts `obj` (pickled now), writing it into the shared queue before returning.
    /// While the shared ring is full it waits with the GIL released, checking signals.
    fn put(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = self.items.encode(obj)?;
        let q = &self.inner;
        match blocking(py, || q.put(data)) {
            (Ok(()), _) => Ok(()),
            (Err(PutError::Interrupted(_)), Some(e)) => Err(e),
            (Err(PutError::Closed(_)), _) => Err(closed()),
            (Err(e @ PutError::TooLarge { .. }), _) => Err(PyValueError::new_err(e.to_string())),
            (Err(e), _) => Err(PyOSError::new_err(e.to_string())),
        }
    }

    /// Removes and returns the oldest item, waiting while the queue is empty, with the GIL
    /// released, checking signals (Ctrl-C).
    fn get(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let q = &self.inner;
        match blocking(py, || q.get()) {
            (Ok(data), _) => self.items.decode(py, &data),
            (Err(GetError::Interrupted), Some(e)) => Err(e),
            (Err(GetError::Closed), _) => Err(closed()),
            (Err(e), _) => Err(PyOSError::new_err(e.to_string())),
        }
    }

    /// Whether the queue holds no item.
    fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// Closes the queue in this process.
    fn close(&self) {
        self.inner.close();
    }

    /// The queue's live counters as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats::snapshot(py, self.inner.stats_path())
    }

    /// Opens the named simple queue `name` (in the queue directory `dir`, if given).
    #[classmethod]
    #[pyo3(signature = (name, *, dir=None, items="pickle"))]
    fn open(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        name: &str,
        dir: Option<std::path::PathBuf>,
        items: &str,
    ) -> PyResult<Self> {
        let items = Items::parse(items)?;
        let b = in_dir(mpqueue::Queue::<Bytes>::builder(), dir);
        let inner = py
            .detach(|| mpqueue::SimpleQueue::open_with(b, name))
            .map_err(error)?;
        let key = stats::Key::Named(name.to_owned());
        Ok(SimpleQueue { inner, key, items })
    }

    /// Pickled only while `multiprocessing` starts a process: see `mpqueue._spawn`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let handoff = me
            .inner
            .handoff()
            .map(|h| (h.stats_path.to_path_buf(), h.data.as_raw_fd()));
        let name = match &me.key {
            stats::Key::Named(n) => Some(n.clone()),
            stats::Key::Anonymous => None,
        };
        let no_timeout: Option<f64> = None;
        let dir = me.inner.stats_path().parent().map(|d| d.to_path_buf());
        slf.py()
            .import("mpqueue._spawn")?
            .getattr("reduce")?
            .call1((
                slf,
                "SimpleQueue",
                name,
                dir,
                handoff,
                no_timeout,
                me.items.name(),
            ))
    }
}
