//! The throughput table: items/s for each producers→consumers shape and item size, mpqueue
//! against every peer and the machine's limits, plus the maxsize 1 row.

use super::Sizes;
use crate::items::{B8, B64};
use crate::measure::{Cell, Fig, Rows, Runner};
use crate::shared::Placement;
use crate::{ipc, limits, mpq, python};
use std::fmt::Write as _;

/// Measures the table, in rounds (see `Runner::table`).
pub fn measure(r: &Runner, n: Sizes) -> Rows {
    eprintln!("throughput");
    let mut table: Vec<(String, Vec<Cell>)> = Vec::new();
    for (p, c) in [(1usize, 1usize), (4, 4), (1, 4)] {
        for size in [8usize, 64] {
            table.push((format!("{p}→{c}, {size} B"), cells(p, c, size, n)));
        }
    }
    table.push(bounded(n));
    r.table(&table)
}

/// One row's cells, in the table's column order: mpqueue, multiprocessing.Queue,
/// faster-fifo, ipc-channel, raw pipe, shm ring.
fn cells(p: usize, c: usize, size: usize, n: Sizes) -> Vec<Cell> {
    let (n_fast, n_py, n_ring) = (n.fast, n.py, n.ring);
    let py_args = move || -> Vec<String> {
        ["tput".to_string(), p.to_string(), c.to_string()]
            .into_iter()
            .chain([size.to_string(), n_py.to_string()])
            .collect()
    };
    let one_to_one = (p, c) == (1, 1);
    vec![
        Ok(Box::new(move || match size {
            8 => mpq::tput::<B8>(p, c, n_fast, Placement::Free, true, 0),
            _ => mpq::tput::<B64>(p, c, n_fast, Placement::Free, true, 0),
        })),
        Ok(Box::new(move || python::figure("mpq", &py_args()))),
        Ok(Box::new(move || python::figure("ff", &py_args()))),
        match (one_to_one, size) {
            (true, 64) => Ok(Box::new(move || ipc::tput(n_py * 2))),
            (true, _) => Err("64 B only"),
            _ => Err("1 receiver only"),
        },
        if one_to_one {
            Ok(Box::new(move || {
                limits::pipe_tput(n_fast / 2, size, Placement::Free)
            }))
        } else {
            Err("1→1 only")
        },
        if one_to_one {
            Ok(Box::new(move || {
                limits::shm_ring(n_ring, size, Placement::Free)
            }))
        } else {
            Err("1→1 only")
        },
    ]
}

/// The maxsize 1 row: every put waits for the get before it.
fn bounded(n: Sizes) -> (String, Vec<Cell>) {
    let n_fast = n.fast;
    let bounded_py: Vec<String> = ["tput", "1", "1", "64", &(n.py / 2).to_string()]
        .into_iter()
        .chain(["--maxsize", "1"])
        .map(String::from)
        .collect();
    (
        "1→1, 64 B, maxsize 1".into(),
        vec![
            Ok(Box::new(move || {
                mpq::tput::<B64>(1, 1, n_fast / 4, Placement::Free, true, 1)
            })),
            Ok(Box::new(move || python::figure("mpq", &bounded_py))),
            Err("bounded by bytes, not items"),
            Err("unbounded only"),
            Err("-"),
            Err("-"),
        ],
    )
}

/// Writes the measured table.
pub fn write(md: &mut String, rows: &Rows) -> anyhow::Result<()> {
    writeln!(
        md,
        "## Throughput, items/s (producer processes → consumer processes)\n"
    )?;
    writeln!(
        md,
        "| scenario | mpqueue | Python multiprocessing.Queue | faster-fifo | ipc-channel | raw pipe (1 write/frame) | shm SPSC ring (limit) |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for (label, figs) in rows {
        writeln!(
            md,
            "| {label} | {} |",
            figs.iter().map(Fig::cell).collect::<Vec<_>>().join(" | ")
        )?;
    }
    Ok(())
}
