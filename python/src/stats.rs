//! `q.stats()`: the queue's observe snapshot (what `mpqueue-top` shows) as a dict.

use pyo3::exceptions::PyLookupError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::Path;
use std::time::Duration;

/// Whether a queue has a name (what a spawned child opens it by).
pub(crate) enum Key {
    /// A named queue.
    Named(String),
    /// An anonymous queue.
    Anonymous,
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// The snapshot of the queue whose stats file is `stats_path`.
fn find(stats_path: &Path) -> Result<mpqueue::observe::Snapshot, String> {
    let dir = stats_path.parent().ok_or("the queue has no directory")?;
    let refs = mpqueue::observe::list_in(dir).map_err(|e| e.to_string())?;
    match refs.iter().find(|r| r.path() == stats_path) {
        Some(r) => r.snapshot().map_err(|e| e.to_string()),
        None => Err("the queue's stats file was not found (stats off?)".into()),
    }
}

/// The snapshot of the queue whose stats file is `stats_path`, as a dict.
pub(crate) fn snapshot<'py>(py: Python<'py>, stats_path: &Path) -> PyResult<Bound<'py, PyDict>> {
    let s = py
        .detach(|| find(stats_path))
        .map_err(PyLookupError::new_err)?;
    let d = PyDict::new(py);
    d.set_item("name", &s.name)?;
    d.set_item("id", &s.id)?;
    d.set_item("named", s.named)?;
    d.set_item("maxsize", s.maxsize)?;
    d.set_item("size", s.size)?;
    d.set_item("puts", s.puts)?;
    d.set_item("gets", s.gets)?;
    d.set_item("bytes_put", s.bytes_put)?;
    d.set_item("bytes_got", s.bytes_got)?;
    d.set_item("full_events", s.full_events)?;
    d.set_item("empty_events", s.empty_events)?;
    d.set_item("put_timeouts", s.put_timeouts)?;
    d.set_item("get_timeouts", s.get_timeouts)?;
    d.set_item("decode_errors", s.decode_errors)?;
    d.set_item("lost", s.lost)?;
    d.set_item("lock_recoveries", s.lock_recoveries)?;
    d.set_item("frames_discarded", s.frames_discarded)?;
    d.set_item("oldest_age", secs(s.oldest_age))?;
    d.set_item("last_get_age", secs(s.last_get_age))?;
    d.set_item("last_put_age", secs(s.last_put_age))?;
    d.set_item("buffered_items", s.buffered_items)?;
    d.set_item("unfinished", s.unfinished)?;
    d.set_item("tasks_abandoned", s.tasks_abandoned)?;
    d.set_item("created_by", s.created_by)?;
    d.set_item("ring_capacity", s.ring_capacity)?;
    d.set_item("alive", s.alive)?;
    d.set_item("health", s.health().as_str())?;
    let procs = s
        .processes
        .iter()
        .map(|p| {
            let e = PyDict::new(py);
            e.set_item("pid", p.pid)?;
            e.set_item("alive", p.alive)?;
            e.set_item("role", p.role.as_str())?;
            e.set_item("puts", p.puts)?;
            e.set_item("gets", p.gets)?;
            e.set_item("buffered_items", p.buffered_items)?;
            e.set_item("buffered_bytes", p.buffered_bytes)?;
            Ok(e)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("processes", procs)?;
    Ok(d)
}
