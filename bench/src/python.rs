//! The Python peers (multiprocessing.Queue, faster-fifo), run by bench/py/pybench.py.

use anyhow::Context;
use std::process::Command;

fn python() -> &'static str {
    if std::path::Path::new(".venv/bin/python").exists() {
        ".venv/bin/python"
    } else {
        "python3"
    }
}

/// Runs one scenario for `peer`; returns the numbers it printed.
pub fn run(peer: &str, args: &[String]) -> anyhow::Result<Vec<f64>> {
    let out = Command::new(python())
        .arg("bench/py/pybench.py")
        .arg(peer)
        .args(args)
        .output()
        .context("running python3")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed");
        anyhow::bail!("{}", last.trim());
    }
    String::from_utf8(out.stdout)?
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .with_context(|| format!("bad number {t:?} from pybench"))
        })
        .collect()
}

/// Runs one scenario for `peer` that prints one figure, and returns it.
pub fn figure(peer: &str, args: &[String]) -> anyhow::Result<f64> {
    run(peer, args)?
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no output"))
}
