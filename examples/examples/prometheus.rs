//! Reports this process's queues through the `metrics` facade (mpqueue feature `metrics`)
//! into a `metrics-exporter-prometheus` recorder, and prints what it would serve.
//!
//! `cargo run -p mpqueue-examples --example prometheus`

use metrics_exporter_prometheus::PrometheusBuilder;
use mpqueue::{Queue, process};

fn main() -> anyhow::Result<()> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    let q: Queue<String> = Queue::builder()
        .label("example-jobs")
        .maxsize(10)
        .create()?;
    let child = process::fork(|| {
        for i in 0..25 {
            q.put(format!("job {i}")).unwrap();
        }
        0
    })?;
    for _ in 0..20 {
        q.get()?;
    }
    anyhow::ensure!(child.join()? == 0);
    mpqueue::metrics::report();
    let text = handle.render();
    print!("{text}");
    anyhow::ensure!(text.contains("mpqueue_puts_total{queue=\"example-jobs\""));
    Ok(())
}
