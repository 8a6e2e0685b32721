//! The targets table: the project's goals as ratios within this run, from the figures of
//! the sections before it.

use super::Versus;
use super::counters::Instructions;
use super::variants::{BATCH_1, BATCH_4, BYTES, JOINABLE, SINGLE_1, VEC};
use crate::measure::{Fig, Rows};
use std::fmt::Write as _;

/// What the targets are computed from.
pub struct Findings<'a> {
    /// The throughput table.
    pub rows: &'a Rows,
    /// Ping-pong medians on the same CPU and across CPUs.
    pub rtt_same: Versus,
    pub rtt_cross: Versus,
    /// Ping-pong p99s across CPUs, of mpqueue and (in `pipe`) iceoryx2.
    pub rtt_cross_p99: Versus,
    /// The CPU share of an idle blocked `get`.
    pub idle_cpu: Option<f64>,
    /// 1 MiB items, MB/s.
    pub big: Versus,
    /// The queue family table (batches, item types, `JoinableQueue`).
    pub variants: &'a Rows,
    /// Instructions per put + get, per batched item, and the counters' cost.
    pub instructions: Instructions,
    /// The counters' wall-clock cost, 1→1 then 4→4.
    pub wall: Vec<String>,
}

/// Writes the table.
pub fn write(md: &mut String, f: &Findings) -> anyhow::Result<()> {
    writeln!(md, "\n## Targets (ratios within this run)\n")?;
    writeln!(
        md,
        "Throughput ratios are the median of the ratios round by round (the two figures of a round ran in the same pass over the table, seconds apart), with their range.\n"
    )?;
    writeln!(md, "| target | wanted | measured |\n|---|---|---|")?;
    for (target, wanted, measured) in targets(f) {
        writeln!(md, "| {target} | {wanted} | {measured} |")?;
    }
    Ok(())
}

/// Each target: what it compares, the wanted figure, the measured one.
fn targets(f: &Findings) -> Vec<(&'static str, &'static str, String)> {
    fn find<'r>(rows: &'r Rows, row: &str, col: usize) -> Option<&'r Fig> {
        rows.iter().find(|(l, _)| l == row).map(|(_, f)| &f[col])
    }
    let get = |row: &str, col: usize| find(f.rows, row, col);
    let family = |row: &str, col: usize| find(f.variants, row, col);
    let one = "1→1, 64 B";
    let four = "4→4, 64 B";
    let per_item = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1}"));
    vec![
        (
            "1→1 64 B vs Python multiprocessing.Queue",
            "≥ 30×",
            paired(get(one, 0), get(one, 1), "×"),
        ),
        (
            "1→1 64 B vs ipc-channel",
            "> 1×",
            paired(get(one, 0), get(one, 3), "×"),
        ),
        (
            "1→1 64 B vs shm SPSC ring limit",
            "≥ 0.20",
            paired(get(one, 0), get(one, 5), ""),
        ),
        (
            "4→4 64 B vs Python multiprocessing.Queue",
            "≥ 20×",
            paired(get(four, 0), get(four, 1), "×"),
        ),
        (
            "4→4 64 B vs faster-fifo",
            "≥ 20×",
            paired(get(four, 0), get(four, 2), "×"),
        ),
        (
            "4→4 64 B vs mpqueue's own 1→1",
            "≥ 0.50",
            paired(get(four, 0), get(one, 0), ""),
        ),
        (
            "ping-pong median vs raw pipe, same CPU",
            "≤ 1",
            ratio(&f.rtt_same),
        ),
        (
            "ping-pong median vs raw pipe, cross CPU",
            "≤ 1",
            ratio(&f.rtt_cross),
        ),
        (
            "ping-pong p99 cross CPU vs iceoryx2's busy-polling p99, with an idle blocked `get` near 0% CPU",
            "≤ 3×",
            format!(
                "{}× (idle `get`: {})",
                ratio(&f.rtt_cross_p99),
                f.idle_cpu
                    .map_or("n/a".into(), |c| format!("{:.3}% CPU", c * 100.0))
            ),
        ),
        (
            "1 MiB items vs raw pipe (1 MiB buffer)",
            "≥ 0.70",
            ratio(&f.big),
        ),
        (
            "1→1 64 B, batches (`put_many`/`get_many(256)`) vs single `put`/`get`",
            "≥ 2.0×",
            paired(family(BATCH_1, 0), family(SINGLE_1, 0), "×"),
        ),
        (
            "4→4 64 B, batches vs faster-fifo `put_many`/`get_many(256)`",
            "≥ 20×",
            paired(family(BATCH_4, 0), family(BATCH_4, 1), "×"),
        ),
        (
            "1→1 64 B, `Queue<Bytes>` vs `Queue<ByteArray<64>>`",
            "≥ 0.90",
            paired(family(BYTES, 0), family(SINGLE_1, 0), ""),
        ),
        (
            "1→1 64 B, `Queue<Vec<u8>>` vs `Queue<ByteArray<64>>`",
            "reported",
            paired(family(VEC, 0), family(SINGLE_1, 0), ""),
        ),
        (
            "1→1 64 B, `JoinableQueue` with `task_done` per item vs `Queue`",
            "≥ 0.85",
            paired(family(JOINABLE, 0), family(SINGLE_1, 0), ""),
        ),
        (
            "instructions per `put` + `get` of a 64 B item, one process (callgrind)",
            "≤ 1000",
            per_item(f.instructions.single),
        ),
        (
            "instructions per item with `put_many`/`get_many(256)`, one process (callgrind)",
            "≤ 400",
            per_item(f.instructions.batch),
        ),
        (
            "counters on vs off: instructions per put + get (deterministic)",
            "≤ 5%",
            f.instructions.cost.clone(),
        ),
        (
            "counters on vs off: 1→1 64 B wall clock (noisy here)",
            "≤ 5%",
            f.wall[0].clone(),
        ),
        (
            "counters on vs off: 4→4 64 B wall clock (noisy here)",
            "≤ 5%",
            f.wall[1].clone(),
        ),
    ]
}

/// Two cells of the throughput table ran in the same rounds: the median of the ratios
/// round by round (each round's pair saw the same state of the machine), with their range.
/// `unit` follows the median ("×" for speed-ups, "" for fractions).
pub(super) fn paired(a: Option<&Fig>, b: Option<&Fig>, unit: &str) -> String {
    match (a, b) {
        (Some(Fig::Val { runs: x, .. }), Some(Fig::Val { runs: y, .. })) if x.len() == y.len() => {
            let mut r: Vec<f64> = x.iter().zip(y).map(|(a, b)| a / b).collect();
            r.sort_by(f64::total_cmp);
            if r.len() == 1 {
                format!("{:.2}{unit}", r[0])
            } else {
                format!(
                    "{:.2}{unit} (rounds {:.2}–{:.2})",
                    r[r.len() / 2],
                    r[0],
                    r[r.len() - 1]
                )
            }
        }
        _ => "n/a".into(),
    }
}

/// mpqueue's figure over the other's.
fn ratio(v: &Versus) -> String {
    match (v.mpqueue, v.pipe) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    }
}
