//! Runnable examples of `mpqueue`; see the `examples/` folder:
//!
//! - `demo`: producers and workers in separate processes over two queues, with a summary.
//! - `named`: two unrelated processes meeting on a named queue.
