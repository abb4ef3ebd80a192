//! The primitives every store encoding is built from: little-endian integers, strict booleans,
//! length-prefixed byte strings and counted lists.

use crate::store::error::CodecError;

/// Where encoded bytes go: a growable buffer, a caller's fixed buffer, a length counter, or a
/// hashing stream (snapshots). Writing cannot fail here; a sink that can (fixed buffer, I/O)
/// remembers its first failure for the caller to collect.
pub(in crate::store) trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.put(&v.to_le_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// A list or string length. Everything the store holds is far below 4 GiB per item and per
    /// list (keys and values are bounded by [`crate::store::StoreLimits`] in `u32`).
    fn len(&mut self, len: usize) {
        self.u32(u32::try_from(len).expect("store lengths are bounded far below u32::MAX"));
    }

    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.put(v);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes an encoding would take, without writing them.
#[derive(Debug, Default)]
pub(in crate::store) struct LenCounter(pub usize);

impl Sink for LenCounter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Writes into a caller's fixed buffer (a registered transport slab); `written` keeps counting past
/// the end so the caller learns how much room was needed.
#[derive(Debug)]
pub(in crate::store) struct SliceSink<'a> {
    pub buf: &'a mut [u8],
    pub written: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.written + bytes.len();
        if end <= self.buf.len() {
            self.buf[self.written..end].copy_from_slice(bytes);
        }
        self.written = end;
    }
}

/// A bounds-checked cursor over received bytes: every read says what it was reading, so a
/// truncated or oversize field yields a precise [`CodecError`].
#[derive(Debug)]
pub(in crate::store) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if n > self.buf.len() {
            return Err(CodecError::Truncated {
                what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let bytes = self.take(N, what)?;
        Ok(bytes.try_into().expect("take returned exactly N bytes"))
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            got => Err(CodecError::InvalidBool { what, got }),
        }
    }

    /// A length-prefixed byte string of at most `max` bytes; the length is checked against `max`
    /// and against the bytes present before anything is allocated.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, CodecError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(CodecError::TooLong { what, len, max });
        }
        Ok(self.take(len, what)?.to_vec())
    }

    /// A list length of at most `max` entries. Callers push entries one by one (never reserve
    /// `count` up front), so a lying count costs nothing before the bytes run out.
    pub fn count(&mut self, what: &'static str, max: usize) -> Result<usize, CodecError> {
        let count = self.u32(what)? as usize;
        if count > max {
            return Err(CodecError::TooMany { what, count, max });
        }
        Ok(count)
    }

    /// Fails unless every byte was consumed: the encoding is canonical, so a valid message has
    /// exactly one byte sequence.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes {
                count: self.buf.len(),
            })
        }
    }
}
