//! The 1 MiB items table: MB/s from one process to another, mpqueue against every peer and
//! a raw pipe with a 1 MiB buffer.

use super::{Sizes, Versus};
use crate::measure::Runner;
use crate::{ipc, limits, mpq, python};
use std::fmt::Write as _;

/// Measures and writes the table; returns the medians of mpqueue and of the raw pipe.
pub fn write(md: &mut String, r: &Runner, n: Sizes) -> anyhow::Result<Versus> {
    eprintln!("1 MiB items");
    let py_args = || ["big".to_string(), n.big_py.to_string()];
    let big = [
        ("mpqueue (4 MiB ring)", r.fig("mpqueue", || mpq::big(n.big))),
        (
            "Python multiprocessing.Queue",
            r.fig("mp.Queue", || python::figure("mpq", &py_args())),
        ),
        (
            "faster-fifo",
            r.fig("faster-fifo", || python::figure("ff", &py_args())),
        ),
        ("ipc-channel", r.fig("ipc-channel", || ipc::big(n.big / 2))),
        (
            "raw pipe, 1 MiB pipe buffer (F_SETPIPE_SZ)",
            r.fig("raw pipe", || limits::pipe_big(n.big)),
        ),
    ];
    writeln!(
        md,
        "\n## 1 MiB items, MB/s (1e6 bytes), one producer process → one consumer process\n"
    )?;
    writeln!(md, "| peer | MB/s |\n|---|---|")?;
    for (label, f) in &big {
        writeln!(md, "| {label} | {} |", f.cell())?;
    }
    Ok(Versus {
        mpqueue: big[0].1.med(),
        pipe: big[4].1.med(),
    })
}
