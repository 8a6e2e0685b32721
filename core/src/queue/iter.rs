//! Iterating over a queue's items: blocking ([`Queue::iter`]) or draining what is there
//! ([`Queue::try_iter`]), as crossbeam-channel's receivers do.

use super::Queue;
use crate::error::GetError;
use serde::de::DeserializeOwned;

/// The items of a queue as `get` returns them, until the queue is closed in this process.
/// Made by [`Queue::iter`].
#[derive(Debug)]
pub struct Iter<'q, T> {
    queue: &'q Queue<T>,
}

/// The items in a queue now, without waiting. Made by [`Queue::try_iter`].
#[derive(Debug)]
pub struct TryIter<'q, T> {
    queue: &'q Queue<T>,
}

impl<T: DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = Result<T, GetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.queue.get() {
            Err(GetError::Closed) => None,
            r => Some(r),
        }
    }
}

impl<T: DeserializeOwned> Iterator for TryIter<'_, T> {
    type Item = Result<T, GetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.queue.get_nowait() {
            Err(GetError::Closed | GetError::Empty) => None,
            r => Some(r),
        }
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Every item as it comes, waiting for each (as `get`); the iteration ends when the
    /// queue is closed in this process (by [`close`](Self::close), from any thread). An item
    /// that cannot be decoded comes as an `Err`, and the iteration goes on.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(0)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         for i in 1..=3 {
    ///             q.put(i).unwrap();
    ///         }
    ///         while q.qsize() > 0 {
    ///             std::thread::yield_now();
    ///         }
    ///         q.close(); // ends the iteration below
    ///     });
    ///     let got: Vec<u32> = q.iter().map(Result::unwrap).collect();
    ///     assert_eq!(got, [1, 2, 3]);
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
    }

    /// The items in the queue now (as `get_nowait`), without waiting; ends when the queue
    /// is empty or closed. An item that cannot be decoded comes as an `Err`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// let got: Result<Vec<u32>, _> = q.try_iter().collect();
    /// assert_eq!(got?, [1, 2]);
    /// assert!(q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { queue: self }
    }
}
