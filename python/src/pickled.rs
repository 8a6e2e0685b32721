//! The pickle of a `bytes` object, written and read here instead of by `pickle`: the
//! commonest item costs no call into the interpreter's pickler.
//!
//! [`encode`] writes exactly what `pickle.dumps(b, 4 or 5)` writes (the tests compare
//! them); [`decode`] recognises that form and nothing else, leaving every other pickle to
//! `pickle.loads`.

/// `PROTO`, then the protocol.
const PROTO: u8 = 0x80;
/// `FRAME` and its 8-byte length: what follows up to the end.
const FRAME: u8 = 0x95;
/// `SHORT_BINBYTES`: 1-byte length.
const SHORT_BINBYTES: u8 = b'C';
/// `BINBYTES`: 4-byte length.
const BINBYTES: u8 = b'B';
/// `MEMOIZE` (protocol 4 on).
const MEMOIZE: u8 = 0x94;
/// `STOP`.
const STOP: u8 = b'.';
/// A payload this large is written after the frame, not in it (CPython's
/// `FRAME_SIZE_TARGET`), and the few bytes after it get no frame of their own.
const FRAME_SIZE_TARGET: usize = 64 * 1024;

/// The pickle of the `bytes` object `data` with `protocol` (4 or 5), as `pickle.dumps`
/// writes it; `None` for other protocols or for more than 4 GiB.
pub(crate) fn encode(data: &[u8], protocol: i32) -> Option<Vec<u8>> {
    let proto = u8::try_from(protocol)
        .ok()
        .filter(|p| (4..=5).contains(p))?;
    let mut head = Vec::with_capacity(5);
    match u8::try_from(data.len()) {
        Ok(n) => head.extend([SHORT_BINBYTES, n]),
        Err(_) => {
            head.push(BINBYTES);
            head.extend(u32::try_from(data.len()).ok()?.to_le_bytes());
        }
    }
    let mut out = Vec::with_capacity(data.len() + 20);
    out.extend([PROTO, proto]);
    if data.len() < FRAME_SIZE_TARGET {
        let framed = head.len() + data.len() + 2;
        out.push(FRAME);
        out.extend((framed as u64).to_le_bytes());
    }
    out.extend(head);
    out.extend(data);
    out.extend([MEMOIZE, STOP]);
    Some(out)
}

/// The bytes pickled in `p`, if `p` is a pickle that [`encode`] writes.
pub(crate) fn decode(p: &[u8]) -> Option<&[u8]> {
    let rest = match p {
        [PROTO, 4 | 5, rest @ ..] => rest,
        _ => return None,
    };
    // An optional frame, whose length must be that of the rest.
    let rest = match rest {
        [FRAME, rest @ ..] => {
            let (len, rest) = rest.split_first_chunk::<8>()?;
            (u64::from_le_bytes(*len) == rest.len() as u64).then_some(rest)?
        }
        _ => rest,
    };
    let (len, rest) = match rest {
        [SHORT_BINBYTES, n, rest @ ..] => (usize::from(*n), rest),
        [BINBYTES, rest @ ..] => {
            let (n, rest) = rest.split_first_chunk::<4>()?;
            (usize::try_from(u32::from_le_bytes(*n)).ok()?, rest)
        }
        _ => return None,
    };
    match rest.split_at_checked(len)? {
        (data, [MEMOIZE, STOP]) => Some(data),
        _ => None,
    }
}
