//! Runnable examples of `mpqueue`; see the `examples/` folder:
//!
//! - `demo`: producers and workers in separate processes over two queues, with a summary.
//! - `named`: two unrelated processes meeting on a named queue.
//! - `prometheus`: this process's queues through the `metrics` facade, as Prometheus text.
//! - `readme`: the example of README.md.
//!
//! And one program, `mpqueue-demo` (`src/bin/mpqueue-demo.rs`): the workload that
//! `mpqueue-top --demo` starts and shows, queues with producer and consumer processes that
//! run until stopped.
