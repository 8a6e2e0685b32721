//! The queue family table: batches, `JoinableQueue` and byte-buffer item types, 64 B items,
//! next to single `put`/`get` of a fixed 64-byte array, with faster-fifo's `get_many`
//! where it has the same thing. Measured in rounds, like the throughput table, so that
//! the targets' ratios compare figures of the same round.

use super::Sizes;
use crate::items::B64;
use crate::measure::{Cell, Fig, Rows, Runner};
use crate::shared::Placement;
use crate::{mpq, python, variants};
use std::fmt::Write as _;

/// Items per `put_many` and most items per `get_many`, in this table and in the
/// instruction count.
pub const BATCH: usize = 256;

/// The rows' labels, which the targets look up (they name `BATCH`).
pub const SINGLE_1: &str = "1→1, `put`/`get`, `ByteArray<64>`";
pub const BATCH_1: &str = "1→1, `put_many`/`get_many(256)`, `ByteArray<64>`";
pub const SINGLE_4: &str = "4→4, `put`/`get`, `ByteArray<64>`";
pub const BATCH_4: &str = "4→4, `put_many`/`get_many(256)`, `ByteArray<64>`";
pub const BYTES: &str = "1→1, `put`/`get`, `mpqueue::Bytes`";
pub const VEC: &str = "1→1, `put`/`get`, `Vec<u8>`";
pub const JOINABLE: &str = "1→1, `JoinableQueue`, `get` + `task_done` per item, `ByteArray<64>`";

/// Measures the table, in rounds (see `Runner::table`).
pub fn measure(r: &Runner, n: Sizes) -> Rows {
    eprintln!("queue family: batches, item types, JoinableQueue");
    let (fast, py) = (n.fast, n.py);
    // Batches move items several times faster: more of them, so a run lasts as long.
    let many = n.fast * 4;
    let ff = move |p: usize, batch: usize| -> Cell {
        let args: Vec<String> = [
            "tput",
            &p.to_string(),
            &p.to_string(),
            "64",
            &py.to_string(),
        ]
        .into_iter()
        .map(String::from)
        .chain(["--batch".into(), batch.to_string()])
        .collect();
        Ok(Box::new(move || python::figure("ff", &args)))
    };
    let table: Vec<(String, Vec<Cell>)> = vec![
        (
            SINGLE_1.into(),
            vec![
                Ok(Box::new(move || {
                    mpq::tput::<B64>(1, 1, fast, Placement::Free, true, 0)
                })),
                ff(1, 1),
            ],
        ),
        (
            BATCH_1.into(),
            vec![
                Ok(Box::new(move || {
                    variants::batched::<B64>(1, 1, many, BATCH)
                })),
                ff(1, BATCH),
            ],
        ),
        (
            SINGLE_4.into(),
            vec![
                Ok(Box::new(move || {
                    mpq::tput::<B64>(4, 4, fast, Placement::Free, true, 0)
                })),
                ff(4, 1),
            ],
        ),
        (
            BATCH_4.into(),
            vec![
                Ok(Box::new(move || {
                    variants::batched::<B64>(4, 4, many, BATCH)
                })),
                ff(4, BATCH),
            ],
        ),
        (
            BYTES.into(),
            vec![
                Ok(Box::new(move || {
                    mpq::tput::<mpqueue::Bytes>(1, 1, fast, Placement::Free, true, 0)
                })),
                Err("-"),
            ],
        ),
        (
            VEC.into(),
            vec![
                Ok(Box::new(move || {
                    mpq::tput::<Vec<u8>>(1, 1, fast, Placement::Free, true, 0)
                })),
                Err("-"),
            ],
        ),
        (
            JOINABLE.into(),
            vec![
                Ok(Box::new(move || variants::joinable::<B64>(1, 1, fast))),
                Err("-"),
            ],
        ),
    ];
    r.table(&table)
}

/// Writes the measured table.
pub fn write(md: &mut String, rows: &Rows) -> anyhow::Result<()> {
    writeln!(
        md,
        "\n## The queue family: batches, item types and `JoinableQueue`, 64 B items, items/s\n"
    )?;
    writeln!(
        md,
        "Measured in rounds like the table above (unpinned, counters on). `ByteArray<64>` is `serde_bytes::ByteArray<64>`, a fixed array encoded as one block; `mpqueue::Bytes` and `Vec<u8>` are allocated per item, as a user's buffer is. faster-fifo's batch rows use its `put_many` and `get_many(max_messages_to_get=256)`; Python items are `bytes` of 64.\n"
    )?;
    writeln!(md, "| scenario | mpqueue | faster-fifo |\n|---|---|---|")?;
    for (label, figs) in rows {
        writeln!(
            md,
            "| {label} | {} |",
            figs.iter().map(Fig::cell).collect::<Vec<_>>().join(" | ")
        )?;
    }
    Ok(())
}
