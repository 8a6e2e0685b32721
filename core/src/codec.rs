//! Item encoding: serde + bincode 1.3 (varint integers, little endian, size limit), in one
//! place so the format can change without touching the queue.

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(limit)
        .reject_trailing_bytes()
}

/// Why an item could not be encoded.
pub(crate) enum EncodeError {
    /// Larger than the limit: its full encoded size.
    TooLarge(usize),
    /// The serializer failed.
    Failed(String),
}

/// Encodes `item` into `out` (cleared first), at most `limit` bytes.
pub(crate) fn encode_into<T: Serialize>(
    item: &T,
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.clear();
    encode_append(item, limit, out)
}

/// Encodes `item` at the end of `out` (what is there stays), at most `limit` bytes.
pub(crate) fn encode_append<T: Serialize>(
    item: &T,
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let r = options(limit).serialize_into(&mut *out, item);
    r.map_err(|e| {
        out.truncate(start);
        match *e {
            bincode::ErrorKind::SizeLimit => EncodeError::TooLarge(
                bincode::DefaultOptions::new()
                    .serialized_size(item)
                    .map_or(usize::MAX, |n| n as usize),
            ),
            other => EncodeError::Failed(other.to_string()),
        }
    })
}

/// Why bytes could not be decoded (turned into text only when it happens: a pointer-sized
/// error keeps the `Result` around a decoded item small).
pub(crate) type DecodeError = bincode::Error;

/// Decodes a `T` that must use every byte of `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], limit: u64) -> Result<T, DecodeError> {
    options(limit).deserialize(bytes)
}
