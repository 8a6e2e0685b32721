//! The report's opening: title, how it was produced, the machine, and its cache-line round
//! trip before and after the throughput table.

use crate::limits;
use std::fmt::Write as _;

/// Writes the title, the command line, the machine, and the cross-CPU round trip (measured
/// now, after the throughput table, next to `rtt_before`).
pub fn write(md: &mut String, quick: bool, reps: usize, rtt_before: f64) -> anyhow::Result<()> {
    writeln!(md, "# mpqueue benchmarks\n")?;
    writeln!(
        md,
        "Produced by `cargo run --release -p mpqueue-bench -- {}` in one run; every figure is the median of {} runs with [min–max]; the two throughput tables are measured in rounds, each running every cell once. The machine is a shared 2-vCPU VM: compare ratios within this run, not absolute numbers across runs.\n",
        if quick {
            "--quick".to_string()
        } else {
            format!("--reps {reps}")
        },
        reps
    )?;
    writeln!(md, "{}", machine())?;
    writeln!(
        md,
        "- cross-CPU cache-line round trip (two threads pinned to CPUs 0 and 1): {rtt_before:.0} ns before the run, {:.0} ns after. On this VM it is ~65 ns, ~80 ns or ~320 ns depending on where the host puts the two vCPUs, and it changes while the benchmarks run: this is why some figures spread widely.\n",
        limits::line_round_trip_ns()
    )?;
    Ok(())
}

/// CPU, kernel, rustc, Python and faster-fifo versions, and the date, as list items.
fn machine() -> String {
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "- CPU: {} ({} CPUs), kernel {}\n- {} · {} · faster-fifo {}\n- date: {}",
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim(),
        sh("nproc"),
        sh("uname -r"),
        sh("rustc --version"),
        sh("python3 --version"),
        sh(
            "(.venv/bin/python -c 'import importlib.metadata as m; print(m.version(\"faster-fifo\"))' 2>/dev/null) || echo 'not installed'"
        ),
        sh("date -u '+%Y-%m-%d %H:%M UTC'")
    )
}
