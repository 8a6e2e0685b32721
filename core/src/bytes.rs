//! [`Bytes`]: a byte-buffer item that serde encodes as one block of bytes, not byte by byte.

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// An owned byte buffer to send through a queue: prefer it to a plain `Vec<u8>`.
///
/// Serde encodes a `Vec<u8>` as a sequence, one byte at a time; `Bytes` is encoded as one
/// block of bytes (as `serde_bytes` does), which bincode copies in one go. Its encoding is
/// the same length prefix and bytes as a `Vec<u8>`'s in bincode, so a `Queue<Bytes>` and a
/// `Queue<Vec<u8>>` can read each other's items. See `BENCHMARKS.md` for the difference in
/// speed.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// use mpqueue::{Bytes, Queue};
/// let q: Queue<Bytes> = Queue::new(0)?;
/// q.put(Bytes::from(vec![1, 2, 3]))?;
/// let b = q.get()?;
/// assert_eq!(&b[..], &[1, 2, 3]);
/// assert_eq!(b.into_vec(), vec![1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(Vec<u8>);

impl Bytes {
    /// An empty buffer.
    ///
    /// # Examples
    /// ```
    /// assert!(mpqueue::Bytes::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Bytes(Vec::new())
    }

    /// The bytes, as a `Vec<u8>` (no copy).
    ///
    /// # Examples
    /// ```
    /// let v = mpqueue::Bytes::from(&b"abc"[..]).into_vec();
    /// assert_eq!(v, b"abc");
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(s: &[u8]) -> Self {
        Bytes(s.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte buffer")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        // Formats that write bytes as a sequence; the size hint is untrusted, so capped.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            v.push(b);
        }
        Ok(Bytes(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bincode_writes_the_same_bytes_as_for_a_vec() {
        let v: Vec<u8> = (0..=255).collect();
        let a = bincode::serialize(&Bytes::from(v.clone())).unwrap();
        let b = bincode::serialize(&v).unwrap();
        assert_eq!(a, b);
        let back: Bytes = bincode::deserialize(&b).unwrap();
        assert_eq!(back.into_vec(), v);
    }
}
