//! The Python section: the `mpqueue` package driven from Python (`bench/py/pybench.py`, the
//! same loops for every peer) against `multiprocessing.Queue` and faster-fifo, with its own
//! targets.

use super::Sizes;
use super::targets::paired;
use crate::measure::{Cell, Fig, Rows, Runner};
use crate::python;
use std::fmt::Write as _;

const ONE_BYTES: &str = "1→1, 64 B `bytes`";
const ONE_DICT: &str = "1→1, small `dict`";
const FOUR_BYTES: &str = "4→4, 64 B `bytes`";
const FOUR_DICT: &str = "4→4, small `dict`";
/// Columns: multiprocessing.Queue, faster-fifo, mpqueue single, mpqueue batches.
const MP: usize = 0;
const FF: usize = 1;
const SINGLE: usize = 2;
const BATCH: usize = 3;

/// Measures the throughput table (in rounds) and the ping-pong row, and writes the section
/// with its targets.
pub fn write(md: &mut String, r: &Runner, n: Sizes) -> anyhow::Result<()> {
    eprintln!("python package");
    let mut table: Vec<(String, Vec<Cell>)> = Vec::new();
    for (label, p, item) in [
        (ONE_BYTES, 1, "bytes"),
        (ONE_DICT, 1, "dict"),
        (FOUR_BYTES, 4, "bytes"),
        (FOUR_DICT, 4, "dict"),
    ] {
        table.push((label.into(), cells(p, item, n.py)));
    }
    let rows = r.table(&table);
    writeln!(
        md,
        "\n## The Python package (`python/`), driven from Python, items/s\n\n\
         `bench/py/pybench.py` runs the same producer and consumer loops for each queue \
         (fork start method, unpinned, measured in rounds like the tables above); batches \
         are `put_many` of 256 and `get_many(max_messages_to_get=256)`. The small `dict` is \
         `{{\"id\": 123456, \"name\": \"sensor-7\", \"values\": [0.5, 1.25, 2.75]}}`, \
         pickled by every queue.\n"
    )?;
    writeln!(
        md,
        "| scenario | multiprocessing.Queue | faster-fifo | mpqueue `put`/`get` | mpqueue `put_many`/`get_many` |\n|---|---|---|---|---|"
    )?;
    for (label, figs) in &rows {
        let cells: Vec<String> = figs.iter().map(Fig::cell).collect();
        writeln!(md, "| {label} | {} |", cells.join(" | "))?;
    }
    let pingpong = |peer: &str| {
        let v = python::run(peer, &["pingpong".into(), (n.rtt as u64 / 4).to_string()])?;
        anyhow::ensure!(v.len() == 2, "bad pybench output");
        Ok((v[0], v[1]))
    };
    let rtt = [
        r.pair("py mp.Queue", || pingpong("mpq")),
        r.pair("py faster-fifo", || pingpong("ff")),
        r.pair("py mpqueue", || pingpong("mpqueue")),
    ];
    writeln!(
        md,
        "\nPing-pong round trip from Python (64 B `bytes`, unpinned), µs (median / p99): \
         multiprocessing.Queue {}, faster-fifo {}, mpqueue {}.",
        pair_cell(&rtt[0]),
        pair_cell(&rtt[1]),
        pair_cell(&rtt[2]),
    )?;
    targets(md, &rows, &rtt[0].0, &rtt[2].0)
}

/// One row's cells in column order, for `p` producers and `p` consumers of `item`s.
fn cells(p: usize, item: &'static str, n: u64) -> Vec<Cell> {
    let args = move |batch: usize| -> Vec<String> {
        let mut a: Vec<String> = ["tput", &p.to_string(), &p.to_string(), "64", &n.to_string()]
            .map(String::from)
            .to_vec();
        a.extend(["--item".into(), item.into()]);
        if batch > 1 {
            a.extend(["--batch".into(), batch.to_string()]);
        }
        a
    };
    vec![
        Ok(Box::new(move || python::figure("mpq", &args(1)))),
        Ok(Box::new(move || python::figure("ff", &args(1)))),
        Ok(Box::new(move || python::figure("mpqueue", &args(1)))),
        Ok(Box::new(move || python::figure("mpqueue", &args(256)))),
    ]
}

fn pair_cell((median, p99): &(Fig, Fig)) -> String {
    format!("{} / {}", median.cell(), p99.cell())
}

/// The section's targets, as ratios within this run.
fn targets(md: &mut String, rows: &Rows, rtt_mp: &Fig, rtt_mpqueue: &Fig) -> anyhow::Result<()> {
    let get = |row: &str, col: usize| {
        rows.iter()
            .find(|(l, _)| l == row)
            .map(|(_, figs)| &figs[col])
    };
    let rtt = match (rtt_mpqueue.med(), rtt_mp.med()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.3}×", a / b),
        _ => "n/a".into(),
    };
    let rows = [
        (
            "single `put`/`get`, 1→1 64 B `bytes`, vs multiprocessing.Queue",
            "≥ 4×",
            paired(get(ONE_BYTES, SINGLE), get(ONE_BYTES, MP), "×"),
        ),
        (
            "the same vs faster-fifo",
            "≥ 4×",
            paired(get(ONE_BYTES, SINGLE), get(ONE_BYTES, FF), "×"),
        ),
        (
            "`put_many`/`get_many`, 1→1 64 B `bytes`, vs multiprocessing.Queue single items",
            "≥ 10×",
            paired(get(ONE_BYTES, BATCH), get(ONE_BYTES, MP), "×"),
        ),
        (
            "4→4 64 B `bytes` vs multiprocessing.Queue",
            "≥ 4×",
            paired(get(FOUR_BYTES, SINGLE), get(FOUR_BYTES, MP), "×"),
        ),
        (
            "4→4 64 B `bytes` vs faster-fifo",
            "≥ 4×",
            paired(get(FOUR_BYTES, SINGLE), get(FOUR_BYTES, FF), "×"),
        ),
        (
            "4→4 small `dict` vs multiprocessing.Queue",
            "≥ 4×",
            paired(get(FOUR_DICT, SINGLE), get(FOUR_DICT, MP), "×"),
        ),
        (
            "4→4 small `dict` vs faster-fifo",
            "≥ 4×",
            paired(get(FOUR_DICT, SINGLE), get(FOUR_DICT, FF), "×"),
        ),
        ("ping-pong median vs multiprocessing.Queue", "≤ 0.25×", rtt),
    ];
    writeln!(md, "\n| Python target | wanted | measured |\n|---|---|---|")?;
    for (target, wanted, measured) in rows {
        writeln!(md, "| {target} | {wanted} | {measured} |")?;
    }
    Ok(())
}
