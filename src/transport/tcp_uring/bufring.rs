//! The provided-buffer ring a multishot receive picks its buffers from.
//!
//! The ring's entries point at slabs taken from the shard's [`BufferPool`] at start-up, so the
//! receive buffers live in the same registered region as everything else; the kernel picks one per
//! completion and reports its id in the CQE flags. After the bytes are copied out (see `reader`)
//! the entry is put back at the tail, published once per poll with one release store.

use crate::transport::{Buf, BufferPool, PoolError};
use io_uring::types::BufRingEntry;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

pub(super) struct BufRing {
    entries: NonNull<BufRingEntry>,
    map_len_bytes: usize,
    count: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    /// The slabs lent to the kernel, indexed by buffer id. Held for the ring's lifetime.
    slabs: Box<[Buf]>,
    len_bytes: u32,
}

impl BufRing {
    /// Maps a ring of `count` entries (a power of two, at most 32768) and fills it with slabs from
    /// `pool`.
    pub fn new(pool: &BufferPool, count: u16) -> Result<Self, PoolError> {
        assert!(
            count.is_power_of_two() && count <= 1 << 15,
            "buffer ring size {count} must be a power of two <= 32768"
        );
        let map_len_bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: anonymous mapping, result checked; page alignment is what the kernel requires.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(PoolError::Map {
                len_bytes: map_len_bytes,
                errno,
            });
        }
        let entries =
            NonNull::new(ptr.cast::<BufRingEntry>()).expect("mmap never returns null on success");
        let slabs: Box<[Buf]> = (0..count).map(|_| pool.take()).collect::<Result<_, _>>()?;
        let len_bytes = u32::try_from(pool.slab_bytes()).expect("slabs are at most 16 MiB");
        let mut ring = Self {
            entries,
            map_len_bytes,
            count,
            tail: 0,
            slabs,
            len_bytes,
        };
        for bid in 0..count {
            ring.give_back(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Ring base address and entry count, for `register_buf_ring_with_flags`.
    pub fn registration(&self) -> (u64, u16) {
        (self.entries.as_ptr() as u64, self.count)
    }

    /// The first `len_bytes` of buffer `bid`, as filled by a receive completion.
    pub fn bytes(&self, bid: u16, len_bytes: usize) -> &[u8] {
        let slab = &self.slabs[usize::from(bid)];
        debug_assert!(len_bytes <= slab.capacity());
        // SAFETY: the slab is owned by this ring and the kernel wrote `len_bytes` into it before
        // posting the completion we are handling; it will not write again until `give_back`.
        unsafe { std::slice::from_raw_parts(slab_ptr(slab), len_bytes.min(slab.capacity())) }
    }

    /// Returns buffer `bid` to the kernel (visible after the next [`BufRing::publish`]).
    pub fn give_back(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        let addr = slab_ptr(&self.slabs[usize::from(bid)]) as u64;
        // SAFETY: slot < count, inside the mapping; the kernel only reads entries below the
        // published tail, and this slot is beyond it until `publish`.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.len_bytes);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes every entry given back since the last call.
    pub fn publish(&mut self) {
        // SAFETY: the tail field lives in the first entry of our live mapping; the kernel reads it
        // with acquire semantics, which pairs with this release store.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

fn slab_ptr(slab: &Buf) -> *const u8 {
    slab.as_ptr()
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours; the ring owning this BufRing was dropped first or the
        // registration is being torn down with it (see `TcpUring`'s field order).
        let rc = unsafe { libc::munmap(self.entries.as_ptr().cast(), self.map_len_bytes) };
        debug_assert_eq!(rc, 0, "munmap of the buffer ring failed");
    }
}
