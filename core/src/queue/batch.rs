//! Batches: `put_many` and `get_many`, each taking the channel's lock once for many items.

use super::Queue;
use super::core::Core;
use super::items::{DECODE_BUF, ENCODE_BUF, deadline_after, with_scratch};
use crate::codec::{self, EncodeError};
use crate::error::{GetError, PutError};
use crate::sys;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

impl Core {
    /// Puts the items whose encodings end at `ends` in `bytes`: all or none of them take
    /// capacity, then each is counted and enqueued as `put_frame` does with one.
    fn put_frames<T>(
        self: &Arc<Self>,
        items: Vec<T>,
        bytes: &[u8],
        ends: &[usize],
        deadline: Option<u64>,
    ) -> Result<(), PutError<Vec<T>>> {
        let (local, items) = self.put_local(items, deadline)?;
        let n = ends.len() as u64;
        let bounded = self.opts.maxsize > 0;
        // More items than the queue holds can never fit at once.
        if bounded && n > self.opts.maxsize {
            return Err(PutError::Full(items));
        }
        if bounded && let Err(why) = self.reserve(local, n, deadline) {
            return Err(why.with(items));
        }
        drop(items);
        let counters = self.counters(local);
        let mut start = 0;
        let frames: Vec<(&[u8], _)> = ends
            .iter()
            .map(|&end| {
                let frame = &bytes[start..end];
                start = end;
                (frame, counters.accepted(frame.len(), bounded))
            })
            .collect();
        self.enqueue_many(local, &frames);
        Ok(())
    }
}

impl<T: Serialize> Queue<T> {
    fn put_many_deadline(
        &self,
        items: Vec<T>,
        deadline: Option<u64>,
    ) -> Result<(), PutError<Vec<T>>> {
        if items.is_empty() {
            return Ok(());
        }
        let max = self.core().opts.max_item;
        with_scratch(&ENCODE_BUF, |bytes| {
            bytes.clear();
            let mut ends = Vec::with_capacity(items.len());
            for item in &items {
                match codec::encode_append(item, max, bytes) {
                    Ok(()) => ends.push(bytes.len()),
                    Err(EncodeError::TooLarge(size)) => {
                        let max = max as usize;
                        return Err(PutError::TooLarge {
                            item: items,
                            size,
                            max,
                        });
                    }
                    Err(EncodeError::Failed(reason)) => {
                        return Err(PutError::Encode {
                            item: items,
                            reason,
                        });
                    }
                }
            }
            self.handle.core.put_frames(items, bytes, &ends, deadline)
        })
    }

    /// Puts all of `items`, in order, or none of them: on a bounded queue it waits until
    /// there is room for every one (a batch larger than `maxsize` is `Full` at once).
    /// Items go into the ring under one hold of the write lock, and count one by one.
    ///
    /// # Errors
    /// As [`put`](Self::put), with every item given back; [`PutError::TooLarge`] and
    /// [`PutError::Encode`] describe the first item that could not be encoded.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(0)?;
    /// q.put_many(vec![1, 2, 3])?;
    /// assert_eq!(q.get_many(10)?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>> {
        self.put_many_deadline(items, None)
    }

    /// [`put_many`](Self::put_many), waiting at most `timeout` for room for all of them.
    ///
    /// # Errors
    /// [`PutError::Full`] with every item if there was no room for all of them in time; as
    /// for [`put_many`](Self::put_many).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::Queue::<u32>::new(3)?;
    /// q.put(0)?;
    /// let e = q.put_many_timeout(vec![1, 2, 3], Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(e.into_inner(), [1, 2, 3]); // two places left: none of the three went in
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many_timeout(
        &self,
        items: Vec<T>,
        timeout: Duration,
    ) -> Result<(), PutError<Vec<T>>> {
        self.put_many_deadline(items, Some(deadline_after(timeout)))
    }

    /// [`put_many`](Self::put_many) only if there is room for all of them now.
    ///
    /// # Errors
    /// [`PutError::Full`] with every item; as for [`put_many`](Self::put_many).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(2)?;
    /// assert!(q.put_many_nowait(vec![1, 2, 3]).unwrap_err().is_full());
    /// q.put_many_nowait(vec![1, 2])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many_nowait(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>> {
        self.put_many_deadline(items, Some(0))
    }
}

impl<T: DeserializeOwned> Queue<T> {
    fn get_many_deadline(
        &self,
        max: usize,
        deadline: Option<u64>,
        nowait: bool,
    ) -> Result<Vec<T>, GetError> {
        let core = self.core();
        let max = max.max(1);
        // Room for the whole batch at once (growing it costs ~60 instructions per item),
        // up to a bound: `max` may be far more than will come.
        let mut out = Vec::with_capacity(max.min(4096));
        let mut failed = None;
        let mut take = |bytes: &[u8]| match codec::decode::<T>(bytes, core.opts.max_item) {
            Ok(item) => {
                out.push(item);
                out.len() < max
            }
            Err(e) => {
                failed = Some(GetError::Decode {
                    len: bytes.len(),
                    reason: e.to_string(),
                });
                false
            }
        };
        with_scratch(&DECODE_BUF, |bytes| {
            core.get_frame(deadline, nowait, bytes, Some(&mut take))
        })?;
        let Some(e) = failed else {
            return Ok(out);
        };
        if let Some(l) = core.current_local() {
            core.counters(l).decode_error();
            if !out.is_empty() {
                // The items before the bad one come now, its error with the next call.
                l.defer(e);
                return Ok(out);
            }
        }
        Err(e)
    }

    /// Waits for an item, then takes it and every item after it that is in the channel
    /// now, up to `max` (at least one), under one hold of the read lock; in order.
    ///
    /// # Errors
    /// As [`get`](Self::get). An item that cannot be decoded ends the batch: if it is the
    /// first, the call returns [`GetError::Decode`]; otherwise the call returns the items
    /// before it, and the next `get` or `get_many` of this process returns the error.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(0)?;
    /// for i in 0..5 {
    ///     q.put(i)?;
    /// }
    /// assert_eq!(q.get_many(3)?, [0, 1, 2]);
    /// assert_eq!(q.get_many(3)?, [3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&self, max: usize) -> Result<Vec<T>, GetError> {
        self.get_many_deadline(max, None, false)
    }

    /// [`get_many`](Self::get_many), waiting at most `timeout` for the first item.
    ///
    /// # Errors
    /// [`GetError::Empty`] if nothing came in time; as for [`get_many`](Self::get_many).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::Queue::<u32>::new(0)?;
    /// let e = q.get_many_timeout(8, Duration::from_millis(10)).unwrap_err();
    /// assert!(e.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_timeout(&self, max: usize, timeout: Duration) -> Result<Vec<T>, GetError> {
        self.get_many_deadline(max, Some(deadline_after(timeout)), false)
    }

    /// [`get_many`](Self::get_many) only if an item is in the channel now.
    ///
    /// # Errors
    /// [`GetError::Empty`]; as for [`get_many`](Self::get_many).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(0)?;
    /// assert!(q.get_many_nowait(8).unwrap_err().is_empty());
    /// q.put_many(vec![1, 2])?;
    /// assert_eq!(q.get_many_nowait(8)?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_nowait(&self, max: usize) -> Result<Vec<T>, GetError> {
        self.get_many_deadline(max, Some(sys::mono_now()), true)
    }
}
