//! Putting and getting items: encoding in the caller (into a per-thread scratch buffer),
//! and the three forms of each blocking call over one deadline-taking path.

use super::Queue;
use crate::codec::{self, EncodeError};
use crate::error::{GetError, PutError};
use crate::sys;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::time::Duration;

thread_local! {
    /// Per-thread buffers for encoding in `put` and receiving in `get`, so the fast path
    /// allocates nothing.
    pub(super) static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    pub(super) static DECODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers above this are not kept between calls.
const SCRATCH_KEEP: usize = (4 << 20) + (64 << 10);

/// Runs `f` with this thread's scratch buffer, taken out for the call (so a `Serialize`
/// impl that itself uses a queue just gets a fresh one) and put back after.
// Inlined: a call here costs ~40 instructions per put or get (moving the closure's large
// `Result` through memory), measured with callgrind.
#[inline(always)]
pub(super) fn with_scratch<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<u8>>>,
    f: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    let taken = key
        .try_with(|c| c.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).ok())
        .ok()
        .flatten();
    let mut buf = taken.unwrap_or_default();
    let r = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEEP {
        let _ = key.try_with(|c| {
            if let Ok(mut b) = c.try_borrow_mut() {
                *b = buf;
            }
        });
    }
    r
}

pub(super) fn deadline_after(timeout: Duration) -> u64 {
    sys::mono_now().saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX))
}

impl<T: Serialize> Queue<T> {
    fn put_deadline(&self, item: T, deadline: Option<u64>) -> Result<(), PutError<T>> {
        let max = self.core().opts.max_item;
        with_scratch(&ENCODE_BUF, |frame| {
            match codec::encode_into(&item, max, frame) {
                Ok(()) => self.handle.core.put_frame(item, frame, deadline),
                Err(EncodeError::TooLarge(size)) => Err(PutError::TooLarge {
                    item,
                    size,
                    max: max as usize,
                }),
                Err(EncodeError::Failed(reason)) => Err(PutError::Encode { item, reason }),
            }
        })
    }

    /// Puts `item`, waiting as long as the queue is full.
    ///
    /// # Errors
    /// [`PutError::Closed`] after [`close`](Self::close); [`PutError::TooLarge`] and
    /// [`PutError::Encode`] if the item cannot be encoded. The item comes back in each.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<String>::new(0)?;
    /// q.put("job".to_string())?;
    /// assert_eq!(q.get()?, "job");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
    }

    /// Puts `item`, waiting at most `timeout` for room (a zero timeout does not wait).
    ///
    /// # Errors
    /// [`PutError::Full`] if the queue was still full at the deadline; as for [`put`](Self::put).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::Queue::<u8>::new(1)?;
    /// q.put_timeout(1, Duration::from_millis(10))?;
    /// let e = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(e.is_full());
    /// assert_eq!(e.into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(deadline_after(timeout)))
    }

    /// Puts `item` only if there is room now.
    ///
    /// # Errors
    /// [`PutError::Full`] if the queue is full; as for [`put`](Self::put).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(1)?;
    /// q.put_nowait(1)?;
    /// assert_eq!(q.put_nowait(2), Err(mpqueue::PutError::Full(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(0))
    }

    /// Alias of [`put_nowait`](Self::put_nowait).
    ///
    /// # Errors
    /// As for [`put_nowait`](Self::put_nowait).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(1)?;
    /// assert_eq!(q.try_put(1), Ok(()));
    /// assert!(q.try_put(2).unwrap_err().is_full());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_nowait(item)
    }
}

impl<T: DeserializeOwned> Queue<T> {
    fn get_deadline(&self, deadline: Option<u64>, nowait: bool) -> Result<T, GetError> {
        let core = self.core();
        with_scratch(&DECODE_BUF, |bytes| {
            core.get_frame(deadline, nowait, bytes, None)?;
            codec::decode(bytes, core.opts.max_item).map_err(|e| {
                if let Some(l) = core.current_local() {
                    core.counters(l).decode_error();
                }
                GetError::Decode {
                    len: bytes.len(),
                    reason: e.to_string(),
                }
            })
        })
    }

    /// Removes and returns the oldest item, waiting as long as the queue is empty.
    ///
    /// # Errors
    /// [`GetError::Closed`] after [`close`](Self::close); [`GetError::Decode`] if the bytes
    /// are not a `T` (that item is gone, the queue goes on); [`GetError::Corrupt`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<(u32, String)>::new(0)?;
    /// q.put((7, "seven".into()))?;
    /// assert_eq!(q.get()?, (7, "seven".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None, false)
    }

    /// Removes and returns the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetError::Empty`] if nothing arrived in time; as for [`get`](Self::get).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Err(mpqueue::GetError::Empty));
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_deadline(Some(deadline_after(timeout)), false)
    }

    /// Removes and returns the oldest item only if one is in the channel now.
    ///
    /// Items still in a feeder buffer (of any process) are not visible yet; if another
    /// process is copying an item out, this waits up to 50 ms for it.
    ///
    /// # Errors
    /// [`GetError::Empty`]; as for [`get`](Self::get).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert!(q.get_nowait().unwrap_err().is_empty());
    /// q.put(3)?;
    /// assert_eq!(q.get_nowait(), Ok(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_deadline(Some(sys::mono_now()), true)
    }

    /// Alias of [`get_nowait`](Self::get_nowait).
    ///
    /// # Errors
    /// As for [`get_nowait`](Self::get_nowait).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert_eq!(q.try_get(), Err(mpqueue::GetError::Empty));
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_nowait()
    }
}
