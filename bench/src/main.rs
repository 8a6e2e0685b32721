//! `mpqueue-bench`: side-by-side benchmarks written to BENCHMARKS.md.
//!
//! This first version measures the 1→1 64-byte scenario for mpqueue (counters on and off)
//! and Python's `multiprocessing.Queue` in the same run; the full suite extends it.

use anyhow::Context;
use clap::Parser;
use mpqueue::{Queue, process};
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Side-by-side benchmarks of mpqueue and its peers")]
struct Args {
    /// Run every scenario briefly (a smoke test; numbers are not meaningful).
    #[arg(long)]
    quick: bool,
    /// Repetitions per scenario (median, min and max are reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: String,
}

fn mpqueue_1to1(n: u64, stats: bool) -> anyhow::Result<f64> {
    let q: Queue<Vec<u8>> = Queue::builder().stats(stats).create()?;
    let start = Instant::now();
    let child = process::fork(|| {
        let item = vec![7u8; 64];
        for _ in 0..n {
            q.put(item.clone()).unwrap();
        }
        0
    })?;
    for _ in 0..n {
        anyhow::ensure!(q.get()?.len() == 64, "bad item");
    }
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(child.join()? == 0, "producer failed");
    Ok(n as f64 / secs)
}

fn python_1to1(n: u64) -> anyhow::Result<f64> {
    let python = if std::path::Path::new(".venv/bin/python").exists() {
        ".venv/bin/python"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .args([
            "bench/py/pybench.py",
            "mpq",
            "tput64",
            "--n",
            &n.to_string(),
        ])
        .output()
        .context("running python")?;
    anyhow::ensure!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (n, reps) = if args.quick {
        (100_000, 1)
    } else {
        (2_000_000, args.reps)
    };
    let mut report = String::new();
    writeln!(report, "# mpqueue benchmarks\n")?;
    writeln!(report, "| scenario | items/s median | min | max |")?;
    writeln!(report, "|---|---|---|---|")?;
    let mut rows = Vec::new();
    for (label, f) in [
        (
            "mpqueue 1→1 64 B, counters on",
            Box::new(|| mpqueue_1to1(n, true)) as Box<dyn Fn() -> anyhow::Result<f64>>,
        ),
        (
            "mpqueue 1→1 64 B, counters off",
            Box::new(|| mpqueue_1to1(n, false)),
        ),
        (
            "Python multiprocessing.Queue 1→1 64 B",
            Box::new(|| python_1to1(n.min(1_000_000))),
        ),
    ] {
        let runs = (0..reps).map(|_| f()).collect::<anyhow::Result<Vec<_>>>()?;
        let (med, min, max) = stats(runs);
        rows.push((label, med));
        writeln!(report, "| {label} | {med:.0} | {min:.0} | {max:.0} |")?;
    }
    if let [(_, on), (_, off), (_, py)] = rows[..] {
        writeln!(
            report,
            "\nmpqueue / Python: {:.1}×; counters cost {:.1}%",
            on / py,
            (off - on) / off * 100.0
        )?;
    }
    std::fs::write(&args.out, &report)?;
    print!("{report}");
    Ok(())
}
