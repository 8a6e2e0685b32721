//! `mpqueue._mpqueue`: the native part of the `mpqueue` Python package.
//!
//! Each Python queue holds an `mpqueue` queue of [`mpqueue::Bytes`] (one block on the wire)
//! carrying the item pickled with the highest protocol, or its raw bytes (`Items`). Items
//! are pickled in the caller, so an unpicklable item raises in `put`. Every blocking call releases the GIL and waits in slices
//! of at most 100 ms (`SLICE`), checking for signals between slices, so Ctrl-C raises
//! `KeyboardInterrupt` in a blocked `get`/`put`/`join`.

use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes};
use std::time::Duration;

mod pickled;
mod queue;
mod simple;
mod stats;

pyo3::import_exception!(queue, Empty);
pyo3::import_exception!(queue, Full);

/// The longest a blocking call waits with the GIL released before it checks for signals.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// `(pickle.dumps, pickle.loads, pickle.HIGHEST_PROTOCOL)`, looked up once.
static PICKLE: PyOnceLock<(Py<PyAny>, Py<PyAny>, i32)> = PyOnceLock::new();

fn pickle(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>, i32)> {
    PICKLE.get_or_try_init(py, || {
        let m = py.import("pickle")?;
        Ok((
            m.getattr("dumps")?.unbind(),
            m.getattr("loads")?.unbind(),
            m.getattr("HIGHEST_PROTOCOL")?.extract()?,
        ))
    })
}

/// How a queue's items travel: pickled (any object, the default), or as raw bytes
/// (`items="bytes"`: `bytes` or `bytearray` in, `bytes` out). Either way each item is one
/// `mpqueue::Bytes` on the wire; with raw bytes that is exactly what a Rust
/// `Queue<mpqueue::Bytes>` reads and writes, so Rust and Python programs can share a
/// named queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Items {
    Pickle,
    Bytes,
}

impl Items {
    /// The `items=` argument.
    pub(crate) fn parse(s: &str) -> PyResult<Self> {
        match s {
            "pickle" => Ok(Items::Pickle),
            "bytes" => Ok(Items::Bytes),
            other => Err(PyValueError::new_err(format!(
                "items must be 'pickle' or 'bytes', not {other:?}"
            ))),
        }
    }

    /// The `items=` argument that makes this.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Items::Pickle => "pickle",
            Items::Bytes => "bytes",
        }
    }

    /// `obj` as it goes into the queue: pickled with the highest protocol (an unpicklable
    /// object raises here), or its bytes.
    pub(crate) fn encode(self, obj: &Bound<'_, PyAny>) -> PyResult<mpqueue::Bytes> {
        let py = obj.py();
        match self {
            Items::Pickle => {
                let (dumps, _, protocol) = pickle(py)?;
                // The commonest item, pickled here as `pickle` would (`pickled`).
                if let Ok(b) = obj.cast_exact::<PyBytes>()
                    && let Some(p) = pickled::encode(b.as_bytes(), *protocol)
                {
                    return Ok(mpqueue::Bytes::from(p));
                }
                let data = dumps.bind(py).call1((obj, *protocol))?;
                Ok(mpqueue::Bytes::from(data.cast::<PyBytes>()?.as_bytes()))
            }
            Items::Bytes => {
                if let Ok(b) = obj.cast::<PyBytes>() {
                    Ok(mpqueue::Bytes::from(b.as_bytes()))
                } else if let Ok(b) = obj.cast::<PyByteArray>() {
                    Ok(mpqueue::Bytes::from(b.to_vec()))
                } else {
                    Err(PyTypeError::new_err(format!(
                        "a queue of items='bytes' takes bytes or bytearray, not {}",
                        obj.get_type().name()?
                    )))
                }
            }
        }
    }

    /// An item taken from the queue, unpickled or as `bytes`.
    pub(crate) fn decode(self, py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
        match self {
            Items::Pickle => {
                if let Some(b) = pickled::decode(data) {
                    return Ok(PyBytes::new(py, b).into_any().unbind());
                }
                let (_, loads, _) = pickle(py)?;
                Ok(loads.bind(py).call1((PyBytes::new(py, data),))?.unbind())
            }
            Items::Bytes => Ok(PyBytes::new(py, data).into_any().unbind()),
        }
    }
}

/// How long a blocking call may wait, from its `block` and `timeout` arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Patience {
    /// `block=False` (the timeout is ignored).
    Never,
    /// A timeout (a negative one is 0).
    For(Duration),
    /// `timeout=None`.
    Forever,
}

/// As CPython: `block=False` ignores the timeout, a negative timeout is 0, `None` is for ever.
pub(crate) fn patience(block: bool, timeout: Option<f64>) -> PyResult<Patience> {
    if !block {
        return Ok(Patience::Never);
    }
    match timeout {
        None => Ok(Patience::Forever),
        Some(t) if t.is_nan() => Err(PyValueError::new_err("timeout must not be NaN")),
        Some(t) => {
            Ok(Duration::try_from_secs_f64(t.max(0.0)).map_or(Patience::Forever, Patience::For))
        }
    }
}

/// Runs `call` with the GIL released, as one call of the queue: while it waits, it takes
/// the GIL back every [`SLICE`] to run the signal handlers (`mpqueue::interruptible`),
/// and an exception from one (Ctrl-C's `KeyboardInterrupt`) stops the wait (the call
/// returns its `Interrupted` error) and is returned beside the result.
pub(crate) fn blocking<R: Send>(
    py: Python<'_>,
    call: impl FnOnce() -> R + Send,
) -> (R, Option<PyErr>) {
    py.detach(|| {
        let raised = std::cell::RefCell::new(None);
        // No GIL to take while the interpreter shuts down: go on waiting then.
        let check = || match Python::try_attach(|py| py.check_signals()) {
            Some(Err(e)) => {
                *raised.borrow_mut() = Some(e);
                true
            }
            Some(Ok(())) | None => false,
        };
        let r = mpqueue::interruptible(SLICE, &check, call);
        (r, raised.into_inner())
    })
}

/// A descriptor of our own for the file open as `fd` (a new open of it, read-write, through
/// `/proc/self/fd`: no claim on `fd`, which the caller still closes).
pub(crate) fn reopen(fd: i32) -> PyResult<std::os::fd::OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .map(Into::into)
        .map_err(|e| PyOSError::new_err(format!("reopening descriptor {fd}: {e}")))
}

/// A library error (creating or opening a queue) as the matching Python exception.
pub(crate) fn error(e: mpqueue::Error) -> PyErr {
    let msg = e.to_string();
    match e {
        mpqueue::Error::InvalidName { .. } | mpqueue::Error::InvalidOption { .. } => {
            PyValueError::new_err(msg)
        }
        mpqueue::Error::AlreadyExists { .. } => PyFileExistsError::new_err(msg),
        mpqueue::Error::NotFound { .. } | mpqueue::Error::Removed { .. } => {
            PyFileNotFoundError::new_err(msg)
        }
        mpqueue::Error::PermissionDenied { .. } => PyPermissionError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// The native module; `mpqueue/__init__.py` re-exports it.
#[pymodule]
fn _mpqueue(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<queue::Queue>()?;
    m.add_class::<queue::JoinableQueue>()?;
    m.add_class::<simple::SimpleQueue>()?;
    m.add_function(wrap_pyfunction!(queue::_open_handoff, m)?)?;
    m.add(
        "DEFAULT_FLUSH_TIMEOUT",
        mpqueue::DEFAULT_FLUSH_TIMEOUT.as_secs_f64(),
    )?;
    m.add(
        "DEFAULT_CAPACITY_BYTES",
        mpqueue::DEFAULT_CAPACITY_BYTES as u64,
    )?;
    Ok(())
}
