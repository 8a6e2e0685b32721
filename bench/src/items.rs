//! The items moved in the benchmarks, with fixed encoded sizes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An item the scenarios can make.
pub trait Item: Serialize + DeserializeOwned + Send + 'static {
    /// A fresh item.
    fn make() -> Self;
}

/// 8 bytes of payload, as a byte string (serde_bytes: one copy, like Python's `bytes`).
#[derive(Serialize, Deserialize, Clone)]
pub struct B8(pub serde_bytes::ByteArray<8>);

/// 64 bytes of payload, as a byte string.
#[derive(Serialize, Deserialize, Clone)]
pub struct B64(pub serde_bytes::ByteArray<64>);

/// 1 MiB of bytes, encoded as one byte string (serde_bytes) plus its length.
#[derive(Serialize, Deserialize, Clone)]
pub struct Big(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl Item for B8 {
    fn make() -> Self {
        B8(serde_bytes::ByteArray::new([7; 8]))
    }
}

impl Item for B64 {
    fn make() -> Self {
        B64(serde_bytes::ByteArray::new([7; 64]))
    }
}

impl Item for Big {
    fn make() -> Self {
        Big(vec![5; 1 << 20])
    }
}

/// An item or the end of a producer's stream.
#[derive(Serialize, Deserialize)]
pub enum Msg<T> {
    /// A payload.
    Item(T),
    /// No more from this producer.
    Stop,
}

/// 64 bytes as mpqueue's byte buffer (encoded as one block, like `B64`, but allocated).
impl Item for mpqueue::Bytes {
    fn make() -> Self {
        mpqueue::Bytes::from(vec![7; 64])
    }
}

/// 64 bytes as a plain `Vec<u8>` (serde encodes it byte by byte).
impl Item for Vec<u8> {
    fn make() -> Self {
        vec![7; 64]
    }
}
