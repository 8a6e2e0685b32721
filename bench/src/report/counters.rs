//! What the counters cost: interleaved wall-clock runs with counters on and off, and the
//! instructions per put + get counted by callgrind (counters on and off, with batches, and
//! with the byte-buffer item types).

use super::Sizes;
use super::variants::BATCH;
use crate::items::B64;
use crate::measure::{Fig, Runner};
use crate::mpq;
use crate::shared::Placement;
use std::fmt::Write as _;

/// Wall-clock section: interleaved runs (on, off, on, off, …) with producers on CPU 0 and
/// consumers on CPU 1, so placement and drift affect both sides alike. Returns the cost
/// cell of 1→1 and of 4→4.
pub fn wall_clock(md: &mut String, r: &Runner, n: Sizes) -> anyhow::Result<Vec<String>> {
    eprintln!("counters on vs off");
    writeln!(
        md,
        "\n## Counters on vs off, 64 B items, items/s (interleaved runs, producers on CPU 0, consumers on CPU 1)\n"
    )?;
    writeln!(
        md,
        "| scenario | counters on | counters off | cost |\n|---|---|---|---|"
    )?;
    let mut costs = Vec::new();
    for (p, c) in [(1usize, 1usize), (4, 4)] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..r.reps * 2 {
            on.push(mpq::tput::<B64>(p, c, n.fast, Placement::Cross, true, 0)?);
            off.push(mpq::tput::<B64>(p, c, n.fast, Placement::Cross, false, 0)?);
        }
        // The cost of each on/off pair (they ran back to back), median and range.
        let mut pair_costs: Vec<f64> = on
            .iter()
            .zip(&off)
            .map(|(a, b)| (b - a) / b * 100.0)
            .collect();
        pair_costs.sort_by(f64::total_cmp);
        let cost = format!(
            "{:+.1}% (pairs {:+.1}% … {:+.1}%)",
            pair_costs[pair_costs.len() / 2],
            pair_costs[0],
            pair_costs[pair_costs.len() - 1]
        );
        let (on, off) = (Fig::of(Ok(on)), Fig::of(Ok(off)));
        eprintln!("  {p}→{c}: {} vs {} ({cost})", on.cell(), off.cell());
        writeln!(md, "| {p}→{c} | {} | {} | {cost} |", on.cell(), off.cell())?;
        costs.push(cost);
    }
    Ok(costs)
}

/// What the instruction counts found, for the targets.
pub struct Instructions {
    /// The counters' cost: on against off, per put + get ("n/a" without valgrind).
    pub cost: String,
    /// Per put + get with counters on.
    pub single: Option<f64>,
    /// Per item with `put_many`/`get_many` of `BATCH`, counters on.
    pub batch: Option<f64>,
}

/// Instruction counts, deterministic where wall-clock time on this VM is not: per put +
/// get with counters on and off, per item with batches, and per item of the byte-buffer
/// types.
pub fn instructions(md: &mut String, n: Sizes) -> anyhow::Result<Instructions> {
    eprintln!("counters on vs off, instructions");
    let n_instr: u64 = if n.quick { 10_000 } else { 100_000 };
    let on = count_instructions(n_instr, "on", 1, "array");
    let off = count_instructions(n_instr, "off", 1, "array");
    let batch = count_instructions(n_instr, "on", BATCH, "array");
    let bytes = count_instructions(n_instr, "on", 1, "bytes");
    let vec = count_instructions(n_instr, "on", 1, "vec");
    writeln!(
        md,
        "\nInstructions per put + get of a 64 B item in one process, counted by `valgrind --tool=callgrind target/release/mpqueue-bench instructions N on|off [--batch {BATCH}] [--item array|bytes|vec]` (the count for 2N items minus the count for N, so start-up cancels out; N = {n_instr}; with `--batch`, items go in `put_many` of {BATCH} and come out with `get_many({BATCH})`). Each count includes making the item (`Bytes` and `Vec<u8>` allocate it) and dropping what `get` returns.\n"
    )?;
    writeln!(
        md,
        "| counters | item | calls | instructions per item (put + get) |\n|---|---|---|---|"
    )?;
    let cell = |r: &anyhow::Result<f64>| match r {
        Ok(v) => format!("{v:.1}"),
        Err(e) => format!("n/a ({e})"),
    };
    let array = "`ByteArray<64>`";
    let single = "`put`, `get`";
    let batched = format!("`put_many` of {BATCH}, `get_many({BATCH})`");
    for (counters, item, calls, count) in [
        ("on", array, single, &on),
        ("off", array, single, &off),
        ("on", array, batched.as_str(), &batch),
        ("on", "`mpqueue::Bytes`", single, &bytes),
        ("on", "`Vec<u8>`", single, &vec),
    ] {
        writeln!(md, "| {counters} | {item} | {calls} | {} |", cell(count))?;
    }
    let cost = match (&on, &off) {
        (Ok(on), Ok(off)) => format!("{:+.1}%", (on - off) / off * 100.0),
        _ => "n/a".into(),
    };
    writeln!(
        md,
        "\nThe counters cost {cost} (on against off, `ByteArray<64>` with `put`/`get`)."
    )?;
    Ok(Instructions {
        cost,
        single: on.ok(),
        batch: batch.ok(),
    })
}

/// Instructions per item put and got (`batch` at a time, counters `stats`, items of type
/// `item`): callgrind's count for `2n` items minus its count for `n` (so start-up cancels
/// out), divided by `n`. Runs this program's `instructions` subcommand under valgrind.
fn count_instructions(n: u64, stats: &str, batch: usize, item: &str) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let count = |items: u64| -> anyhow::Result<f64> {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args(["instructions", &items.to_string(), stats])
            .args(["--batch", &batch.to_string(), "--item", item])
            .output()
            .map_err(|e| anyhow::anyhow!("valgrind: {e}"))?;
        anyhow::ensure!(out.status.success(), "valgrind failed: {}", out.status);
        // "==1234== I   refs:      157,370,933"
        let text = String::from_utf8_lossy(&out.stderr);
        let refs = text
            .lines()
            .find_map(|l| l.split_once("I   refs:"))
            .ok_or_else(|| anyhow::anyhow!("no instruction count in valgrind's output"))?
            .1;
        Ok(refs.trim().replace(',', "").parse()?)
    };
    Ok((count(2 * n)? - count(n)?) / n as f64)
}
